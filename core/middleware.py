"""Request-level plumbing: request id, body guard (413/415) and the last-resort JSON error."""

import re
import time
from urllib.parse import urlsplit

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from corsheaders.conf import conf as cors_conf
from corsheaders.middleware import CorsMiddleware
from django.conf import settings
from django.conf.urls.i18n import is_language_prefix_patterns_used
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.http.response import ResponseHeaders
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.locale import LocaleMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils import translation
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
        # The id is a well-formed header value (request_id_from_header): stored as Django's header mapping
        # would store it, without its per-header validation (`_store_header`).
        response.headers._store["x-request-id"] = ("X-Request-ID", request_id)
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
            _add_vary(response, "Cookie")
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


# --- The lean stack's versions of Django's and django-cors-headers' middleware (core.handlers) -------------
#
# Every cookie-less API request runs through Security, CORS, Locale, Common and X-Frame-Options middleware,
# and for a small answer they cost more than the view (issue 11: ~70 µs of a ~200 µs trivial request,
# mostly in re-validating constant header values, building `request.headers`, and re-deciding the same
# language for the same Accept-Language). These subclasses give the same answers (same headers, same
# order: `core/tests/test_lean_stack.py` compares them with the full stack's) by doing Django's work once
# where it depends only on the settings, and fall back to their parent's code for everything unusual
# (an `Origin`, a preflight, i18n URL patterns, HTTPS redirects, HSTS, a per-request urlconf, async).
# They read the settings when they are built, as Django's SecurityMiddleware does.


def _stored_header(name: str, value: str) -> tuple[str, str]:
    """The (name, value) pair Django's response header mapping stores for `response[name] = value`,
    validated once (it checks the charset and line breaks of both on every assignment)."""
    headers = ResponseHeaders({})
    headers[name] = value
    return headers._store[name.lower()]


_VARY_DELIMITER = re.compile(r"\s*,\s*")  # django.utils.cache.cc_delim_re


def _add_vary(response, header: str) -> None:
    """`patch_vary_headers(response, (header,))` for one constant header name, writing the value it
    computes straight into the header mapping (the existing value was validated when it was set)."""
    store = response.headers._store
    current = store.get("vary")
    if current is None:
        store["vary"] = ("Vary", header)
        return
    names = _VARY_DELIMITER.split(current[1])
    if header.lower() not in {name.lower() for name in names}:
        names.append(header)
    store["vary"] = ("Vary", "*" if "*" in names else ", ".join(names))


class LeanSecurityMiddleware(SecurityMiddleware):
    """Django's SecurityMiddleware with its constant headers validated once."""

    def __init__(self, get_response):
        super().__init__(get_response)
        defaults = []
        if self.content_type_nosniff:
            defaults.append(_stored_header("X-Content-Type-Options", "nosniff"))
        if self.referrer_policy:
            policy = self.referrer_policy
            defaults.append(_stored_header("Referrer-Policy", ",".join(
                [v.strip() for v in policy.split(",")] if isinstance(policy, str) else policy)))
        if self.cross_origin_opener_policy:
            defaults.append(_stored_header("Cross-Origin-Opener-Policy", self.cross_origin_opener_policy))
        self._defaults = [(pair[0].lower(), pair) for pair in defaults]

    def __call__(self, request):
        if self.async_mode or self.redirect or self.sts_seconds:
            return super().__call__(request)
        response = self.get_response(request)
        store = response.headers._store
        for key, pair in self._defaults:
            if key not in store:
                store[key] = pair
        return response


class LeanCorsMiddleware(CorsMiddleware):
    """django-cors-headers' middleware; a request without `Origin` that is not an `OPTIONS` only gets
    `Vary: origin` (when CORS applies to its path), so that is all this does for one.

    Whether CORS applies (`is_enabled`: `CORS_URLS_REGEX` matches the path, or a receiver of
    `check_request_enabled` says so) is remembered per pattern and path for the pattern's part; the signal
    is still asked for a path the pattern does not match.
    """

    _MAX_REMEMBERED = 4096  # (pattern, path) pairs; paths carry identifiers, so the memory is emptied when full

    def __init__(self, get_response):
        super().__init__(get_response)
        self._matches: dict[tuple, bool] = {}

    def _enabled(self, request) -> bool:
        pattern = cors_conf.CORS_URLS_REGEX
        key = (pattern, request.path_info)
        matched = self._matches.get(key)
        if matched is None:
            matched = bool(re.match(pattern, request.path_info))
            if len(self._matches) >= self._MAX_REMEMBERED:
                self._matches.clear()
            self._matches[key] = matched
        return matched or self.check_signal(request)

    def __call__(self, request):
        if self.async_mode or request.method == "OPTIONS" or "HTTP_ORIGIN" in request.META:
            return super().__call__(request)
        enabled = request._cors_enabled = self._enabled(request)
        response = self.get_response(request)
        if enabled:
            _add_vary(response, "origin")
        return response


class LeanLocaleMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware, remembering the language it chose for a language cookie and
    Accept-Language (a pure function of the two and the settings) instead of parsing them again.

    Without i18n URL patterns (this service has none) the path plays no part: Django's middleware
    activates that language, sets `request.LANGUAGE_CODE`, and adds `Vary: Accept-Language` and the
    active language's `Content-Language` to the answer; so does this one.
    """

    _MAX_REMEMBERED = 512  # distinct (cookie, Accept-Language) pairs; beyond, Django's code decides each time

    def __init__(self, get_response):
        super().__init__(get_response)
        self._languages: dict[tuple, tuple[str, str]] = {}
        self._content_language: dict[str, tuple[str, str]] = {}
        self._patterns_used: bool | None = None

    def _plain(self, request) -> bool:
        if self.async_mode or getattr(request, "urlconf", None) is not None:
            return False
        if self._patterns_used is None:
            self._patterns_used = is_language_prefix_patterns_used(settings.ROOT_URLCONF)[0]
        return not self._patterns_used

    def __call__(self, request):
        if not self._plain(request):
            return super().__call__(request)
        meta = request.META
        cookie = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) if "HTTP_COOKIE" in meta else None
        key = (cookie, meta.get("HTTP_ACCEPT_LANGUAGE", ""))
        chosen = self._languages.get(key)
        if chosen is None:
            language = translation.get_language_from_request(request)
            translation.activate(language)
            chosen = (language, translation.get_language())
            if language and len(self._languages) < self._MAX_REMEMBERED:
                self._languages[key] = chosen
        else:
            translation.activate(chosen[0])
        request.LANGUAGE_CODE = chosen[1]
        response = self.get_response(request)
        _add_vary(response, "Accept-Language")
        store = response.headers._store
        if "content-language" not in store:
            language = translation.get_language()
            pair = self._content_language.get(language)
            if pair is None:
                pair = self._content_language[language] = _stored_header("Content-Language", language)
            store["content-language"] = pair
        return response


class LeanCommonMiddleware(CommonMiddleware):
    """Django's CommonMiddleware for a service without `PREPEND_WWW`, `APPEND_SLASH` or disallowed user
    agents: the `Host` check (`DisallowedHost`: 400) and `Content-Length` on answers that are not
    streamed."""

    _MAX_HOSTS = 64  # distinct accepted `Host` values remembered; beyond, each is checked every time

    def __init__(self, get_response):
        super().__init__(get_response)
        self._plain = not (settings.PREPEND_WWW or settings.APPEND_SLASH or settings.DISALLOWED_USER_AGENTS)
        self._allowed = settings.ALLOWED_HOSTS
        self._good_hosts: set[str] = set()

    def __call__(self, request):
        if self.async_mode or not self._plain:
            return super().__call__(request)
        # The Host check (`DisallowedHost` -> 400) depends on the raw host and ALLOWED_HOSTS only: a host
        # once accepted is accepted again without parsing, while ALLOWED_HOSTS is what it was.
        raw_host = request._get_raw_host()
        if raw_host not in self._good_hosts or settings.ALLOWED_HOSTS is not self._allowed:
            request.get_host()
            if settings.ALLOWED_HOSTS is not self._allowed:
                self._allowed, self._good_hosts = settings.ALLOWED_HOSTS, set()
            if len(self._good_hosts) < self._MAX_HOSTS:
                self._good_hosts.add(raw_host)
        response = self.get_response(request)
        if not response.streaming:
            store = response.headers._store
            if "content-length" not in store:
                store["content-length"] = ("Content-Length", str(len(response.content)))
        return response


class LeanXFrameOptionsMiddleware(XFrameOptionsMiddleware):
    """Django's XFrameOptionsMiddleware with the header's value validated once."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self._pairs: dict[str, tuple[str, str]] = {}

    def __call__(self, request):
        if self.async_mode:
            return super().__call__(request)
        response = self.get_response(request)
        store = response.headers._store
        if "x-frame-options" in store or getattr(response, "xframe_options_exempt", False):
            return response
        value = self.get_xframe_options_value(request, response)
        pair = self._pairs.get(value)
        if pair is None:
            pair = self._pairs[value] = _stored_header("X-Frame-Options", value)
        store["x-frame-options"] = pair
        return response
