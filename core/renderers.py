"""The one renderer of the API: wraps every DRF response body in the envelope (spec §1.3).

A view returns `core.api.ok(...)` (payload + message + tenant id); the exception handler sets the error
attributes. The renderer reads them off the response, so no view ever builds an envelope.
"""

from rest_framework.renderers import JSONRenderer

from core.envelope import build_envelope
from core.errors import ErrorCode

_STATUS_CODES = {
    400: ErrorCode.VALIDATION_ERROR,
    401: ErrorCode.NOT_AUTHENTICATED,
    403: ErrorCode.PERMISSION_DENIED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}


class EnvelopeJSONRenderer(JSONRenderer):
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is None:
            return super().render(data, accepted_media_type, renderer_context)
        code = getattr(response, "api_error_code", None)
        if code is None and response.status_code >= 400:
            # Defensive: a framework-produced error that did not pass the handler.
            fallback = _STATUS_CODES.get(response.status_code, ErrorCode.INTERNAL_ERROR)
            code, data = fallback.value, None
            response.api_message = fallback.spec.message
            response.api_error = fallback.spec.error
        if code is None:
            body = build_envelope(
                success=True,
                message=getattr(response, "api_message", None) or "OK",
                data=data,
                tenant_id=getattr(response, "api_tenant_id", None),
            )
        else:
            body = build_envelope(
                success=False,
                message=response.api_message,
                data=data,
                tenant_id=getattr(response, "api_tenant_id", None),
                error=response.api_error,
                error_code=code,
            )
        return super().render(body, accepted_media_type, renderer_context)
