"""Builds the nine-key envelope (spec §1.3) and the OpenAI error shape (spec §11.5).

The renderer (`core.renderers`) uses `build_envelope` for every DRF response; the middleware and the
Django-level error views use `error_response` for failures that happen outside DRF. Views never call
either directly.
"""

import json
import time
from datetime import datetime, timezone
from typing import Any

from django.http import JsonResponse
from django.utils.translation import gettext

from core.context import request_id_var, request_started_var
from core.errors import ErrorCode

OPENAI_PREFIX = "/v1/"

# The challenge of every 401 (spec §1.5).
WWW_AUTHENTICATE = 'Bearer realm="maimconfig"'

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def _execution_time() -> float:
    started = request_started_var.get()
    return round(time.perf_counter() - started, 4) if started else 0.0


def build_envelope(
    *,
    success: bool,
    message: str,
    data: Any = None,
    tenant_id: str | None = None,
    error: str | None = None,
    error_code: str | None = None,
) -> dict[str, Any]:
    """`message` and `error` are translated here, into the language LocaleMiddleware activated from the
    request (spec §1.3): the catalogue's msgids (core.errors) and any other marked English sentence; lazy
    strings are rendered in that language; text without a translation stays as given."""
    return {
        "success": success,
        "message": _translated(message),
        "data": data,
        "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "request_id": request_id_var.get(),
        "tenant_id": tenant_id,
        "execution_time": _execution_time(),
        "error": _translated(error),
        "error_code": error_code,
    }


def _translated(text: Any) -> Any:
    return gettext(str(text)) if text else text


def openai_error_body(code: str, status: int, error: str, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": error,
            "type": _OPENAI_TYPES.get(status, "server_error"),
            "param": param,
            "code": code,
        }
    }


def is_openai_path(path: str) -> bool:
    return path.startswith(OPENAI_PREFIX)


# Spec §16: the original answered handled errors with HTTP 200 and `success: false`. Clients that test the
# status before reading `success` can ask for that back, server-wide or per request; the real status then
# travels in this response header.
LEGACY_ERRORS_HEADER = "X-MaimConfig-Legacy-Errors"
LEGACY_STATUS_HEADER = "X-MaimConfig-Status"
_LEGACY_ERRORS_META = "HTTP_X_MAIMCONFIG_LEGACY_ERRORS"
_DOMAIN_PREFIXES = ("TENANT_", "AGENT_", "KEY_", "ACTIVITY_", "PLUGIN_")
_DOMAIN_CODES = frozenset({"CHAT_001"})


def is_domain_code(code: str) -> bool:
    """A refusal about the caller's data (the original's own codes), as opposed to a generic failure
    (validation, authentication, permission, limits, upstream, server) that keeps its status (§16)."""
    return code.startswith(_DOMAIN_PREFIXES) or code in _DOMAIN_CODES


def legacy_errors_requested(request) -> bool:
    """`MAIMCONFIG_LEGACY_ERROR_STATUS` on, or the request sends `X-MaimConfig-Legacy-Errors: 1`."""
    from django.conf import settings

    if getattr(settings, "MAIMCONFIG_LEGACY_ERROR_STATUS", False):
        return True
    value = request.META.get(_LEGACY_ERRORS_META, "") if request is not None else ""
    return value.strip().lower() in ("1", "true", "yes", "on")


def apply_legacy_status(request, response, code: str) -> None:
    """The one place of the legacy error status (spec §16), called by both error paths (the DRF exception
    handler and `error_response`): a domain-code error on an enveloped or bare `/api/` route answers 200
    when the client asked for it, with the real status in `X-MaimConfig-Status`. Generic codes, 5xx and
    the OpenAI-compatible `/v1/` routes (which the original never had) keep their status."""
    status = response.status_code
    if status < 400 or status >= 500 or not is_domain_code(code):
        return
    if request is None or is_openai_path(request.path) or not legacy_errors_requested(request):
        return
    response[LEGACY_STATUS_HEADER] = str(status)
    response.status_code = 200


def is_bare_v1_path(path: str) -> bool:
    """`/api/v1/plugins/settings` answers without the envelope, errors included (spec §8.1)."""
    return path.rstrip("/") == "/api/v1/plugins/settings"


def error_response(
    request, code: ErrorCode, error: str | None = None, *, data: Any = None, headers: dict | None = None,
    status: int | None = None, tenant_id: str | None = None, message: str | None = None,
) -> JsonResponse:
    """An error answer built outside DRF (middleware, Django error views). `status`, `tenant_id` and
    `message` default to the catalogue's status, null and the catalogue's message."""
    spec = code.spec
    sentence = error or spec.error
    status = status or spec.status
    if request is not None and is_openai_path(request.path):
        body = openai_error_body(code.value, status, sentence)
    elif request is not None and is_bare_v1_path(request.path):
        body = {"detail": sentence, "error_code": code.value, "request_id": request_id_var.get()}
        if isinstance(data, dict) and "errors" in data:
            body["errors"] = data["errors"]
    else:
        body = build_envelope(success=False, message=message or spec.message, data=data, error=sentence,
                              error_code=code.value, tenant_id=None if status in (401, 403) else tenant_id)
    response = JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})
    for name, value in (headers or {}).items():
        response[name] = value
    if status == 401:
        response["WWW-Authenticate"] = WWW_AUTHENTICATE
    apply_legacy_status(request, response, code.value)
    return response


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
