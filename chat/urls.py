from core.routers import ApiRouter

router = ApiRouter()

urlpatterns = router.urls
