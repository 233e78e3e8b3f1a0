"""Operational routes (spec §13) and the Django-level error views (JSON, never HTML)."""

import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import JsonResponse
from django.utils.translation import gettext
from django.views.csrf import csrf_failure as django_csrf_failure
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import NonAtomicRequestsMixin
from core.envelope import error_response
from core.errors import ErrorCode
from core.exceptions import validation_error
from core.validation import NON_FIELD

SERVICE_DESCRIPTION = (
    "Control plane for MaiMBot: tenants, agents, agent configuration, API keys, heartbeats, plugin "
    "settings, usage log and chat."
)

ENDPOINTS = {
    "tenants": "/api/v2/tenants",
    "agents": "/api/v2/agents",
    "api_keys": "/api/v2/api-keys",
    "auth": "/api/v2/auth",
    "agent_activity": "/api/v2/agent-activity",
    "plugin_settings": "/api/v2/plugin-settings",
    "usage_logs": "/api/v2/usage-logs",
    "chat": "/api/v2/chat",
    "chat_completions": "/v1/chat/completions",
    "models": "/v1/models",
    "system": "/api/v2/system",
    "health": "/health",
    "info": "/info",
    "metrics": "/metrics",
    "docs": "/docs",
    "redoc": "/redoc",
    "openapi": "/openapi.json",
}


class OpsView(NonAtomicRequestsMixin, APIView):
    """Public, not enveloped, credentials ignored; outside ATOMIC_REQUESTS so /health can report a
    database that is down instead of failing to open the request's transaction."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]
    schema = None


class RootView(OpsView):
    def get(self, request):
        return Response({
            "message": "MaiMBot API Server",
            "name": "MaimConfig",
            "version": settings.MAIMCONFIG_VERSION,
            "description": SERVICE_DESCRIPTION,
            "endpoints": ENDPOINTS,
            "features": [
                "Multi-tenant isolation of agents, keys and data",
                "Agent configuration documents with validation and deep merge",
                "Hashed agent API keys with rotation, expiry, permissions and rate limits",
                "Agent heartbeats with TTL",
                "Chat with stored history and an OpenAI-compatible endpoint",
            ],
        })


def check_database() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0] == 1
    except Exception:  # noqa: BLE001 - any failure means unhealthy; no detail is exposed
        return False


def check_cache() -> bool:
    key = f"maimconfig:health:{time.perf_counter_ns()}"
    try:
        cache.set(key, "ok", timeout=5)
        healthy = cache.get(key) == "ok"
        cache.delete(key)
        return healthy
    except Exception:  # noqa: BLE001
        return False


class HealthView(OpsView):
    def get(self, request):
        database, cache_ok = check_database(), check_cache()
        healthy = database and cache_ok
        return Response(
            {
                "status": "healthy" if healthy else "unhealthy",
                "timestamp": round(time.time(), 3),
                "version": settings.MAIMCONFIG_VERSION,
                "services": {
                    "database": "healthy" if database else "unhealthy",
                    "cache": "healthy" if cache_ok else "unhealthy",
                    "api": "healthy",
                },
            },
            status=200 if healthy else 503,
        )


def database_vendor() -> str:
    if connection.vendor == "mysql":
        try:
            return "mariadb" if connection.mysql_is_mariadb else "mysql"
        except Exception:  # noqa: BLE001 - unreachable database: report the configured vendor
            return "mysql"
    return connection.vendor


def cache_kind() -> str:
    backend = settings.CACHES["default"]["BACKEND"].lower()
    return "redis" if "redis" in backend else "locmem"


class InfoView(OpsView):
    def get(self, request):
        return Response({
            "name": "MaiMBot API",
            "description": "MaimConfig control plane for the MaiMBot chatbot platform",
            "version": settings.MAIMCONFIG_VERSION,
            "architecture": {
                "isolation_levels": ["tenant", "agent", "platform"],
                "auth_mode": settings.MAIMCONFIG_AUTH_MODE,
                "database": database_vendor(),
                "cache": cache_kind(),
                # Spec §16: the server-wide switch; a client may still ask per request with a header.
                "legacy_error_status": settings.MAIMCONFIG_LEGACY_ERROR_STATUS,
            },
            "supported_features": [
                "tenants", "agents", "agent_config", "api_keys", "key_verification", "agent_activity",
                "plugin_settings", "usage_log", "chat", "openai_compatible_chat",
            ],
        })


# --- Django-level error views ---------------------------------------------------------------------

def not_found(request, exception=None, *args, **kwargs):
    return error_response(request, ErrorCode.NOT_FOUND)


def bad_request(request, exception=None):
    """Django's 400 (a disallowed `Host`, another suspicious request) as a §1.6 validation error: `error`
    repeats the first entry of `data.errors` as `<path>: <message>` (issue 12, item 11). The header's value is
    not echoed."""
    if isinstance(exception, DisallowedHost):
        message = gettext("The Host header names a host this service does not serve (ALLOWED_HOSTS).")
    else:
        message = gettext("The request is invalid.")
    app_error = validation_error({NON_FIELD: [message]})
    return error_response(request, ErrorCode.VALIDATION_ERROR, app_error.error, data=app_error.data)


def permission_denied(request, exception=None):
    return error_response(request, ErrorCode.PERMISSION_DENIED)


def server_error(request):
    return error_response(request, ErrorCode.INTERNAL_ERROR)


def csrf_failure(request, reason=""):
    if request.path.startswith("/admin/"):
        return django_csrf_failure(request, reason=reason)
    return error_response(request, ErrorCode.PERMISSION_DENIED, "CSRF verification failed.")


def api_not_found(request, *args, **kwargs) -> JsonResponse:
    """Catch-all under /api and /v1: an unknown route answers 404 in the envelope (or OpenAI shape)."""
    return not_found(request)
