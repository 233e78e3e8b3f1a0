from django.urls import re_path

from apikeys.views import ApiKeyViewSet, CheckPermissionView, ParseApiKeyView, ValidateApiKeyView
from core.routers import ApiRouter

app_name = "apikeys"

router = ApiRouter()
router.register("api-keys", ApiKeyViewSet, basename="apikey")

urlpatterns = [
    re_path(r"^auth/parse-api-key/?$", ParseApiKeyView.as_view(), name="parse-api-key"),
    re_path(r"^auth/validate-api-key/?$", ValidateApiKeyView.as_view(), name="validate-api-key"),
    re_path(r"^auth/check-permission/?$", CheckPermissionView.as_view(), name="check-permission"),
    *router.urls,
]
