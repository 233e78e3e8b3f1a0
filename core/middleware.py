"""Request-level plumbing: request id, body guard (413/415) and the last-resort JSON error."""

import time
from urllib.parse import urlsplit

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext

from core.context import current_request_var, request_id_from_header, request_id_var, request_started_var
from core.envelope import error_response
from core.errors import ErrorCode
from core.exception_handlers import response_for_unhandled

_GUARDED_PREFIXES = ("/api/", "/v1/")


def _is_guarded(path: str) -> bool:
    return path.startswith(_GUARDED_PREFIXES) or path in ("/api", "/v1")


class _SyncAndAsync:
    """Middleware usable by the sync lane (WSGI) and the async chat lane (`core.lanes`) without a thread hop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)


class RequestContextMiddleware(_SyncAndAsync):
    """Assigns the request id (spec §1.4), starts the clock, and echoes `X-Request-ID` on every answer."""

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        request_id = request_id_from_header(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        # Not reset afterwards: Django logs a failed request after the middleware chain returns, and
        # that line must still carry the id. The next request on this thread sets both again.
        request_id_var.set(request_id)
        request_started_var.set(time.perf_counter())
        # Reset afterwards (unlike the id): a write after the request (a test, a thread reusing the context)
        # must not be attributed to this request's credential by the audit trail.
        request_token = current_request_var.set(request)
        try:
            response = self.get_response(request)
        finally:
            current_request_var.reset(request_token)
        response["X-Request-ID"] = request_id
        return response

    async def _acall(self, request):
        request_id = request_id_from_header(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        request_id_var.set(request_id)
        request_started_var.set(time.perf_counter())
        request_token = current_request_var.set(request)
        try:
            response = await self.get_response(request)
        finally:
            current_request_var.reset(request_token)
        response["X-Request-ID"] = request_id
        return response


class SessionVaryMiddleware:
    """The lean stack's stand-in for `SessionMiddleware` (`core.handlers`), in its place in the chain: a
    request without a cookie has no session, but an answer that looked for one (`session_probed`, set by
    `core.authentication.OperatorSessionAuthentication`) still varies by `Cookie`, as on the full stack."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "session_probed", False):
            patch_vary_headers(response, ("Cookie",))
        return response


_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _from_another_site(request) -> bool:
    """Whether a browser sent the request from another site: an `Origin` naming another host, or
    `Sec-Fetch-Site: cross-site`/`same-site`. Only browsers send these headers; the original's clients
    (`requests`, `curl`, server-side backends) send neither."""
    meta = request.META
    if meta.get("HTTP_SEC_FETCH_SITE", "").strip().lower() in ("cross-site", "same-site"):
        return True
    origin = meta.get("HTTP_ORIGIN", "").strip()
    if not origin:
        return False
    try:
        return urlsplit(origin).netloc.lower() != request.get_host().lower()
    except (ValueError, DisallowedHost):
        return True


def _cross_site_refusal(request):
    """415 for an unsafe credential-less request without a body that a browser could send cross-site
    without a CORS preflight (issue 12, item 5).

    In open mode such a request acts as an operator, for example disabling a key. A browser can send it
    in two ways: an HTML form (it always carries its content type: `application/x-www-form-urlencoded`,
    `multipart/form-data` or `text/plain`), or `fetch` in `no-cors` mode (no content type, but `Origin`
    and `Sec-Fetch-Site` name the other site). So a body-less unsafe request is refused when it carries a
    form content type (`x-www-form-urlencoded`, `multipart/form-data`, `octet-stream`…), or when it comes
    from another site without the JSON content type or an
    `X-Requested-With` header (neither of which a browser sends cross-site without a preflight). A plain
    HTTP client of the original (`requests.delete(url)`, `curl -X POST …/disable`) sends neither marker
    and keeps working (issue 13). A request with an `Authorization` header is preflighted anyway and is
    left alone; a session-cookie request also needs its CSRF token.
    """
    meta = request.META
    if request.method not in _UNSAFE_METHODS or meta.get("HTTP_AUTHORIZATION") or meta.get("HTTP_X_REQUESTED_WITH"):
        return None
    media_type = meta.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if media_type == "application/json":
        return None
    # No content type, or `text/plain`: what a WSGI server such as Django's runserver fills in when the
    # client sent none. A browser sending either cross-site names its site (below).
    if media_type in ("", "text/plain") and not _from_another_site(request):
        return None
    return error_response(request, ErrorCode.UNSUPPORTED_MEDIA_TYPE, gettext(
        "A POST, PUT, PATCH or DELETE without credentials must be sent with Content-Type: application/json "
        "(or an X-Requested-With header), even without a body."))


class ApiBodyGuardMiddleware(_SyncAndAsync):
    """API bodies must be JSON (415) and at most MAIMCONFIG_MAX_BODY_BYTES (413), spec §1.2."""

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        if _is_guarded(request.path):
            refusal = self._check(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)

    async def _acall(self, request):
        # The ASGI handler has read the whole body before the middleware runs: checking it blocks nothing.
        if _is_guarded(request.path):
            refusal = self._check(request)
            if refusal is not None:
                return refusal
        return await self.get_response(request)

    def _check(self, request):
        meta = request.META
        try:
            length = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        chunked = "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower()
        if length <= 0 and not chunked:
            return _cross_site_refusal(request)
        limit = settings.MAIMCONFIG_MAX_BODY_BYTES
        if length > limit:
            return error_response(request, ErrorCode.PAYLOAD_TOO_LARGE,
                                  gettext("The request body must be at most %(limit)s bytes.") % {"limit": limit})
        content_type = meta.get("CONTENT_TYPE", "")
        media_type, _, params = content_type.partition(";")
        if media_type.strip().lower() != "application/json":
            return error_response(request, ErrorCode.UNSUPPORTED_MEDIA_TYPE)
        charset = ""
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset":
                charset = value.strip().strip('"').lower()
        if charset and charset not in ("utf-8", "utf8"):
            return error_response(request, ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                                  "The request body must be UTF-8 encoded JSON.")
        if chunked:
            try:
                body = request.body
            except RequestDataTooBig:
                body = None
            if body is None or len(body) > limit:
                return error_response(request, ErrorCode.PAYLOAD_TOO_LARGE,
                                      gettext("The request body must be at most %(limit)s bytes.") % {"limit": limit})
        return None


class ApiExceptionMiddleware(_SyncAndAsync):
    """Exceptions that escape DRF (or happen in plain Django views) answer JSON, never HTML."""

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        return self.get_response(request)

    async def _acall(self, request):
        return await self.get_response(request)

    def process_exception(self, request, exception):
        if request.path.startswith("/admin/"):
            return None
        return response_for_unhandled(request, exception)
