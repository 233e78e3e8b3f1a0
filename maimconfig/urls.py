"""Root URL map: admin, one include per app under /api/v2, ops routes, docs, and JSON 404s."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from core import views as core_views
from core.metrics_export import metrics_view

_public = {"authentication_classes": [], "permission_classes": [AllowAny]}

# Routes are matched in order: the operational routes (probed often, and the benchmarks' baseline) come
# first, so they do not walk every app's URL list.
urlpatterns = [
    re_path(r"^$", core_views.root, name="root"),
    re_path(r"^health/?$", core_views.HealthView.as_view(), name="health"),
    re_path(r"^info/?$", core_views.InfoView.as_view(), name="info"),
    re_path(r"^metrics/?$", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the console's language switcher
    path("api/v2/", include("tenants.urls")),
    path("api/v2/", include("agents.urls")),
    path("api/v2/", include("apikeys.urls")),
    path("api/v2/", include("activity.urls")),
    path("api/v2/", include("plugins.urls")),
    path("api/v2/", include("chat.urls")),
    path("api/v2/", include("audit.urls")),
    path("api/v2/", include("catalogue.urls")),
    path("api/v2/", include("metering.urls")),
    path("api/v1/", include("activity.urls_v1")),
    path("api/v1/", include("plugins.urls_v1")),
    path("v1/", include("chat.urls_openai")),
    re_path(r"^openapi\.json$", SpectacularJSONAPIView.as_view(**_public), name="schema"),
    re_path(r"^docs/?$", SpectacularSwaggerView.as_view(url_name="schema", **_public), name="docs"),
    re_path(r"^redoc/?$", SpectacularRedocView.as_view(url_name="schema", template_name="core/redoc.html", **_public), name="redoc"),
    re_path(r"^(?:api|v1)(?:/.*)?$", csrf_exempt(core_views.api_not_found)),
]

handler400 = "core.views.bad_request"
handler403 = "core.views.permission_denied"
handler404 = "core.views.not_found"
handler500 = "core.views.server_error"
