"""The plumbing every fast-lane handler shares (README "Serving model"): what `core.lanes` fast handlers use
to decide whether a request is theirs and to answer with the bytes and headers Django would send.

A fast handler (`core.lanes.register_fast_handler`) answers a plain request on the event loop without
Django's request cycle, or DECLINES (`Declined`; it sends nothing, consumes nothing) and Django answers.
This module holds the request side (`request_headers`, `common_checks`: the markers that make Django's
middleware treat a request differently, the `Host` check, the HTTPS redirect, the language
LocaleMiddleware would pick) and the response side (`ResponseShape`: the headers the middleware stack adds
to one view's 200 answer, derived once per process from the settings; `render`: the envelope bytes; the
django_prometheus series Django's middleware would record). The handlers themselves live with their
domain: `apikeys.fastlane` (validate, and the key script every keyed route shares), `activity.fastlane`,
`activity.usagelog_fastlane`, `readcache.fastlane`, `core.opslane`.
"""

from __future__ import annotations

import re
import time

from django.conf import settings
from django.utils import translation
from rest_framework.exceptions import ParseError, ValidationError

from core.context import request_id_from_header, request_id_var, request_started_var
from core.http_metrics import add_updates, observation
from core.parsers import loads_strict

MAX_BODY = 4096  # a validate or heartbeat body of the common shape is far smaller; larger ones go to Django


class Declined(Exception):
    """Internal: this request is not the fast lane's (Django answers it)."""


# --- request shape ---------------------------------------------------------------------------------------

def request_headers(scope) -> dict[bytes, bytes]:
    """Lower-case header name -> value (repeated headers joined with a comma, as the WSGI environ does)."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in found:
            found[name] = found[name] + b"," + value
        else:
            found[name] = value
    return found


_DECLINE_HEADERS = (b"cookie", b"origin", b"sec-fetch-site", b"transfer-encoding")
_JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8",
                         b"application/json;charset=utf-8", b"application/json; charset=UTF-8",
                         b"application/json;charset=UTF-8"})

_languages: dict[bytes, str] = {}


def language_for(accept: bytes | None) -> str:
    """The language LocaleMiddleware activates for this `Accept-Language` (no cookie, no path prefix)."""
    if not accept:
        return settings.LANGUAGE_CODE
    found = _languages.get(accept)
    if found is None:
        class _Probe:
            COOKIES: dict = {}
            META = {"HTTP_ACCEPT_LANGUAGE": accept.decode("latin-1")}
            path_info = "/"

        found = translation.get_language_from_request(_Probe(), check_path=False)
        if len(_languages) > 512:
            _languages.clear()
        _languages[accept] = found
    return found


def is_secure(scope, headers: dict[bytes, bytes]) -> bool:
    """`HttpRequest.is_secure()` for this scope (SECURE_PROXY_SSL_HEADER honoured)."""
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        header, secure_value = proxy
        value = headers.get(header[5:].lower().replace("_", "-").encode("latin-1")) \
            if header.startswith("HTTP_") else None
        if value is not None:
            return value.decode("latin-1").split(",", 1)[0].strip() == secure_value
    return scope.get("scheme", "http") == "https"


_hosts: dict[tuple, bool] = {}


def host_allowed(scope, headers: dict[bytes, bytes]) -> bool:
    """`HttpRequest.get_host()` would not raise DisallowedHost (CommonMiddleware calls it)."""
    if settings.USE_X_FORWARDED_HOST and b"x-forwarded-host" in headers:
        return False
    raw = headers.get(b"host")
    if raw is None:
        return False
    key = (raw, tuple(settings.ALLOWED_HOSTS), settings.DEBUG)
    found = _hosts.get(key)
    if found is None:
        if len(_hosts) > 256:
            _hosts.clear()
        found = _hosts[key] = _check_host(raw)
    return found


def _check_host(raw: bytes) -> bool:
    from django.http.request import split_domain_port, validate_host

    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _ = split_domain_port(raw.decode("latin-1"))
    return bool(domain) and validate_host(domain, allowed)


def client_ident(scope, headers: dict[bytes, bytes]) -> str:
    """DRF's `BaseThrottle.get_ident` (NUM_PROXIES honoured) for this scope."""
    client = scope.get("client")
    remote_addr = client[0] if client else ""
    xff = headers.get(b"x-forwarded-for")
    num_proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES")
    if num_proxies is not None:
        if num_proxies == 0 or xff is None:
            return remote_addr
        addrs = xff.decode("latin-1").split(",")
        return addrs[-min(num_proxies, len(addrs))].strip()
    return "".join(xff.decode("latin-1").split()) if xff else remote_addr


def common_checks(scope, body: bytes, headers: dict[bytes, bytes], *, max_body: int = MAX_BODY) -> tuple[str, bool]:
    """The checks every fast route shares; returns (language, secure) or raises Declined.

    Declines what the sync stack would treat differently from the plain bot request: browser markers and
    cookies (cross-site guard, session, language cookie), anything but a small JSON body, a disallowed
    Host, an HTTPS redirect, disallowed user agents.
    """
    if not body or len(body) > max_body or headers.get(b"content-type") not in _JSON_TYPES:
        raise Declined
    length = headers.get(b"content-length")
    if length is None or not length.isdigit() or int(length) != len(body):
        raise Declined
    secure = request_checks(scope, headers)
    return language_for(headers.get(b"accept-language")), secure


def request_checks(scope, headers: dict[bytes, bytes], decline: tuple[bytes, ...] = _DECLINE_HEADERS) -> bool:
    """The checks of every fast route, the body aside: none of the `decline` headers (browser markers,
    cookies, a streamed body), an allowed Host, no disallowed user agents, no HTTPS redirect due. Returns
    whether the request is secure, or raises Declined."""
    for name in decline:
        if name in headers:
            raise Declined
    if settings.DISALLOWED_USER_AGENTS or not host_allowed(scope, headers):
        raise Declined
    secure = is_secure(scope, headers)
    if settings.SECURE_SSL_REDIRECT and not secure:
        raise Declined
    return secure


def json_object(body: bytes) -> dict:
    """The body as a JSON object, read by the API's own strict parser (`core.parsers.loads_strict`: escapes
    read, lone surrogates, NaN/Infinity and too deep a nesting refused); Declined for a refusal (Django
    answers it) and for anything but an object."""
    try:
        data = loads_strict(body)
    except (ValidationError, ParseError):
        raise Declined from None
    if type(data) is not dict:
        raise Declined
    return data


# --- the response ----------------------------------------------------------------------------------------

def _middleware(name: str) -> bool:
    """Whether settings.MIDDLEWARE holds `name` or a subclass of it (e.g. `core.http_metrics.PrometheusAfterMiddleware`)."""
    from django.utils.module_loading import import_string

    wanted = import_string(name)
    for path in settings.MIDDLEWARE:
        try:
            installed = import_string(path)
        except ImportError:
            continue
        if isinstance(installed, type) and issubclass(installed, wanted):
            return True
    return False


def security_headers() -> tuple[tuple[bytes, bytes] | None, list[tuple[bytes, bytes]]]:
    """What Django's SecurityMiddleware adds to an answer, from the settings: the HSTS header (sent on
    HTTPS only; None when not configured) and the others, in its order."""
    hsts = None
    if settings.SECURE_HSTS_SECONDS:
        value = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            value += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            value += "; preload"
        hsts = (b"strict-transport-security", value.encode("latin-1"))
    tail = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        tail.append((b"x-content-type-options", b"nosniff"))
    policy = settings.SECURE_REFERRER_POLICY
    if policy:
        value = ",".join([v.strip() for v in policy.split(",")] if isinstance(policy, str) else policy)
        tail.append((b"referrer-policy", value.encode("latin-1")))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        tail.append((b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode("latin-1")))
    return hsts, tail


class ResponseShape:
    """The headers the sync lane adds to a 200 answer of one view, in Django's order (derived from the
    settings once per process), and the django_prometheus series Django records for it. `content_type`:
    what the view's renderer sends (the envelope renderer's by default). A function view names its methods
    in an `allowed_methods` attribute."""

    def __init__(self, path: str, content_type: bytes = b"application/json; charset=utf-8"):
        from django.urls import resolve

        match = resolve(path)
        self.view_name = match.view_name
        self.content_type = content_type
        view_class = getattr(match.func, "view_class", None)
        if view_class is not None:
            view = view_class(**getattr(match.func, "view_initkwargs", {}))
            view.setup(None)
            methods = view.allowed_methods
        else:
            methods = match.func.allowed_methods
        self.allow = ", ".join(methods).encode("latin-1")
        self.locale = _middleware("django.middleware.locale.LocaleMiddleware")
        vary = []
        if self.locale:
            vary.append("Accept-Language")
        if _middleware("corsheaders.middleware.CorsMiddleware"):
            from corsheaders.conf import conf as cors_conf

            if re.match(cors_conf.CORS_URLS_REGEX, path):
                vary.append("origin")
        self.vary = ", ".join(vary).encode("latin-1") if vary else None
        self.frame = (settings.X_FRAME_OPTIONS.upper().encode("latin-1")
                      if _middleware("django.middleware.clickjacking.XFrameOptionsMiddleware") else None)
        self.common = _middleware("django.middleware.common.CommonMiddleware")
        self.hsts, self.security_tail = None, []
        if _middleware("django.middleware.security.SecurityMiddleware"):
            self.hsts, self.security_tail = security_headers()
        self.request_id = _middleware("core.middleware.RequestContextMiddleware")
        self.metrics = ViewMetrics(self.view_name)

    def headers(self, *, length: int, language: str, secure: bool, request_id: str,
                extra: list[tuple[bytes, bytes]] = ()) -> list[tuple[bytes, bytes]]:
        out = [(b"content-type", self.content_type), (b"allow", self.allow), *extra]
        if self.frame is not None:
            out.append((b"x-frame-options", self.frame))
        if self.common:
            out.append((b"content-length", str(length).encode()))
        if self.vary is not None:
            out.append((b"vary", self.vary))
        if self.locale:
            out.append((b"content-language", language.encode("latin-1")))
        if secure and self.hsts is not None:
            out.append(self.hsts)
        out.extend(self.security_tail)
        if self.request_id:
            out.append((b"x-request-id", request_id.encode("latin-1")))
        if not self.common:
            out.append((b"content-length", str(length).encode()))
        return out


class ViewMetrics:
    """The series django_prometheus' Before/After middleware record for one 200 answer of the view
    (labelled children bound once; only for the middleware that is installed)."""

    def __init__(self, view_name: str):
        self.view_name = view_name
        self.before = _middleware("django_prometheus.middleware.PrometheusBeforeMiddleware")
        self.after = _middleware("django_prometheus.middleware.PrometheusAfterMiddleware")
        self._bound: dict[tuple[str, str], tuple] = {}
        if self.before or self.after:
            from django_prometheus.middleware import Metrics

            self.m = Metrics.get_instance()

    def _children(self, method: str, transport: str):
        key = (method, transport)
        found = self._bound.get(key)
        if found is None:
            m, view = self.m, self.view_name
            found = self._bound[key] = (
                _value(m.requests_by_method.labels(method=method)),
                _value(m.requests_by_transport.labels(transport=transport)),
                _value(m.requests_by_view_transport_method.labels(view=view, transport=transport, method=method)),
                _value(m.responses_by_status.labels(status="200")),
                _value(m.responses_by_status_view_method.labels(status="200", view=view, method=method)),
                _value(m.responses_by_charset.labels(charset="utf-8")),
                m.requests_latency_by_view_method.labels(view=view, method=method),
                _value(m.requests_ajax), m.requests_body_bytes, m.responses_body_bytes,
                _value(m.requests_total), _value(m.responses_total), m.requests_latency_before,
            )
        return found

    def record(self, *, method: str, secure: bool, ajax: bool, request_length: int, response_length: int,
               started: float) -> None:
        """The answer's updates, added in one step (`core.http_metrics.add_updates`: one lock for all)."""
        if not (self.after or self.before):
            return
        (by_method, by_transport, by_view, by_status, by_status_view, by_charset, latency, ajax_total,
         request_bytes, response_bytes, requests_total, responses_total, latency_before) = self._children(
            method, "https" if secure else "http")
        updates = []
        if self.after:
            updates += ((by_method, 1), (by_transport, 1), *observation(request_bytes, request_length),
                        (by_view, 1), (by_status, 1), (by_status_view, 1), (by_charset, 1),
                        *observation(response_bytes, response_length),
                        *observation(latency, time.perf_counter() - started))
            if ajax:
                updates.append((ajax_total, 1))
        if self.before:
            updates += ((requests_total, 1), (responses_total, 1),
                        *observation(latency_before, time.perf_counter() - started))
        add_updates(updates)


def _value(counter):
    """The value a counter's `inc(1)` reaches once prometheus_client has checked its argument (a fast-lane
    answer updates a dozen series; the amounts here are counts, never negative)."""
    return counter._value


_renderer = None
_messages: dict[tuple[str, str], str] = {}


def _message(message: str, language: str) -> str:
    """`message` in `language`, as `build_envelope` translates it (cached: the lane answers few sentences)."""
    found = _messages.get((message, language))
    if found is None:
        with translation.override(language):
            found = _messages[(message, language)] = translation.gettext(message)
    return found


def render(*, message: str, data, tenant_id: str | None, language: str) -> bytes:
    """The envelope bytes `core.renderers.EnvelopeJSONRenderer` produces for a success with this payload:
    the envelope of `core.envelope.build_envelope` (its keys, timestamp, request id, execution time), with
    the message translated into `language` once per process instead of per request."""
    global _renderer
    from core.envelope import build_envelope

    if _renderer is None:
        from core.renderers import EnvelopeJSONRenderer

        _renderer = EnvelopeJSONRenderer()
    body = build_envelope(success=True, message="", data=data, tenant_id=tenant_id)
    body["message"] = _message(message, language)
    return _renderer.render(body)


def request_id_of(headers: dict[bytes, bytes]) -> str:
    """The request id RequestContextMiddleware would use: the client's `X-Request-ID` when valid, else a new one."""
    raw_id = headers.get(b"x-request-id")
    return request_id_from_header(raw_id.decode("latin-1") if raw_id is not None else None)


def begin(headers: dict[bytes, bytes]) -> tuple[str, object, object, float]:
    """Request id and clock of the envelope (as RequestContextMiddleware sets them)."""
    started = time.perf_counter()
    request_id = request_id_of(headers)
    return request_id, request_id_var.set(request_id), request_started_var.set(started), started


def end(tokens) -> None:
    request_id_var.reset(tokens[0])
    request_started_var.reset(tokens[1])


async def send_json(send, shape: ResponseShape, payload: bytes, *, language: str, secure: bool,
                    request_id: str, extra=()) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": shape.headers(length=len(payload), language=language, secure=secure,
                                         request_id=request_id, extra=extra)})
    await send({"type": "http.response.body", "body": payload})


_shapes: dict[str, ResponseShape] = {}


def shape_for(path: str, **options) -> ResponseShape:
    """The `ResponseShape` of `path` (built once per process; `options` are the constructor's)."""
    found = _shapes.get(path)
    if found is None:
        found = _shapes[path] = ResponseShape(path, **options)
    return found
