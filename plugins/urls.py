from core.routers import ApiRouter
from plugins.views import PluginSettingViewSet

app_name = "plugins"

router = ApiRouter()
router.register("plugin-settings", PluginSettingViewSet, basename="plugin-setting")

urlpatterns = router.urls
