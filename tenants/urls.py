from core.routers import ApiRouter
from tenants.views import TenantViewSet

app_name = "tenants"

router = ApiRouter()
router.register("tenants", TenantViewSet, basename="tenant")

urlpatterns = router.urls
