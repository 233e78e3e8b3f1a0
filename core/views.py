"""Operational routes (spec §13) and the Django-level error views (JSON, never HTML)."""

import functools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import DisallowedHost
from django.db import connection, transaction
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from django.views.csrf import csrf_failure as django_csrf_failure
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core import db_errors
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


def root_document() -> dict:
    return {
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
    }


class RootView(OpsView):
    def get(self, request):
        return Response(root_document())


_root_drf_view = RootView.as_view()


@functools.cache
def root_body() -> bytes:
    """The bytes `RootView` renders for `GET /` (constant: rendered once per process; `core.opslane` sends
    them too)."""
    return JSONRenderer().render(root_document())


@csrf_exempt
@transaction.non_atomic_requests
def root(request):
    """`GET /`: the service's self-description. The document is constant, so `GET`/`HEAD` answer with
    the bytes `RootView` renders, rendered once per process. A plain `GET`/`HEAD` is answered before Django
    by `core.opslane` with the same bytes; this view answers the others (a query string, a cookie…), and
    `GET /?via=django` is the benchmarks' measure of Django's per-request floor (issue 11). Other methods go
    to `RootView` (OPTIONS, 405), which gives the same answer as before."""
    if request.method not in ("GET", "HEAD"):
        return _root_drf_view(request)
    response = HttpResponse(root_body(), content_type="application/json")
    response["Allow"] = ", ".join(root.allowed_methods)
    return response


root.allowed_methods = ("GET", "HEAD", "OPTIONS")  # RootView's (core.fastlane.ResponseShape reads it)


HEALTH_CHECK_SECONDS = 2.0  # spec §13.2: each check has a 2-second limit
_health_executors: dict[str, tuple[int, ThreadPoolExecutor]] = {}
_health_executors_lock = threading.Lock()


def _health_executor(name: str) -> ThreadPoolExecutor:
    """Two threads per check and process (created after gunicorn's fork): a hung dependency can hold them,
    then further checks wait in the queue and report a timeout; nothing else is ever blocked."""
    with _health_executors_lock:
        pid, executor = _health_executors.get(name, (None, None))
        if pid != os.getpid():
            executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"health-{name}")
            _health_executors[name] = (os.getpid(), executor)
        return executor


def _run_check(name: str, check) -> str | None:
    """None when healthy, else the problem: `timeout`, or what the check reports."""
    future = _health_executor(name).submit(check)
    try:
        return future.result(timeout=HEALTH_CHECK_SECONDS)
    except FutureTimeout:
        return "timeout"
    except Exception:  # noqa: BLE001 - any other failure is "unreachable"; no detail is exposed
        return "unreachable"


def check_database() -> str | None:
    """`SELECT 1` on a connection of the check's own thread. None when it answers; else the failure kind
    (`unreachable`, `too_many_connections`, `lock_timeout`, …). A read-only database still answers
    `SELECT 1` (reads are served): it is reported as `read_only` beside a healthy status."""
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "mysql":
                cursor.execute("SELECT 1, @@global.read_only")
                row = cursor.fetchone()
                if row[0] != 1:
                    return "unreachable"
                return "read_only" if row[1] else None
            cursor.execute("SELECT 1")
            return None if cursor.fetchone()[0] == 1 else "unreachable"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy; no detail is exposed
        failure = db_errors.classify(exc)
        return failure.value.removeprefix("database_") if failure is not None else "unreachable"
    finally:
        connection.close()


def check_cache() -> str | None:
    """Write, read back and delete a short-lived key. None when that works, else `unreachable`."""
    key = f"maimconfig:health:{os.getpid()}:{time.perf_counter_ns()}"
    try:
        cache.set(key, "ok", timeout=5)
        healthy = cache.get(key) == "ok"
        cache.delete(key)
        return None if healthy else "unreachable"
    except Exception:  # noqa: BLE001
        return "unreachable"


class HealthView(OpsView):
    """Spec §13.2. `problems` names the dependency that is down or degraded and how (`unreachable`,
    `timeout`, `too_many_connections`, `read_only`, …), without any error text."""

    def get(self, request):
        document = health_document(health_problems())
        return Response(document, status=200 if document["status"] == "healthy" else 503)


def health_problems() -> dict[str, str]:
    """Run both checks (each in its own thread, with its limit): {service: problem} of those that report one."""
    found = (("database", _run_check("database", check_database)), ("cache", _run_check("cache", check_cache)))
    return {name: problem for name, problem in found if problem is not None}


def health_document(problems: dict[str, str]) -> dict:
    """The body of `/health` for these problems (`read_only` is a note: the database still answers)."""
    database = problems.get("database") in (None, "read_only")  # SELECT 1 answered
    cache_ok = "cache" not in problems
    return {
        "status": "healthy" if database and cache_ok else "unhealthy",
        "timestamp": round(time.time(), 3),
        "version": settings.MAIMCONFIG_VERSION,
        "services": {
            "database": "healthy" if database else "unhealthy",
            "cache": "healthy" if cache_ok else "unhealthy",
            "api": "healthy",
        },
        "problems": problems,
    }


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
        return Response(info_document())


def info_document() -> dict:
    """The body of `/info` (spec §13.3; reads the database vendor, so not on the event loop)."""
    return {
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
    }


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
