"""The lean middleware stack for cookie-less API requests (core.handlers), the root route's rendered-once
answer (core.views.root), the metrics middleware's cached series (core.http_metrics) and the output
serializers' per-class field template (core.serializers). Issue 11: the same answers for less work."""

import io
import json

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings
from prometheus_client import REGISTRY
from rest_framework import serializers

from core.handlers import ServiceWSGIHandler, lean_eligible
from core.serializers import OutputModelSerializer
from core.views import RootView
from tenants.models import Tenant
from tenants.serializers import TenantOutputSerializer
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def _call(handler, method, path, *, cookie=None, token=None, extra=None, body=b""):
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(), "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
        **(extra or {}),
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Token {token}"
    answer = {}
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = handler(environ, lambda status, headers, exc_info=None: answer.update(
            status=int(status.split()[0]), headers=headers))
        answer["body"] = b"".join(result)
        result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer


def _comparable(headers):
    # The body's execution time varies from call to call, and with it the length of the body: the length
    # header is compared by its place, the body below without its volatile members.
    return [(name, "*" if name == "Content-Length" else value) for name, value in headers
            if name not in ("X-Request-ID", "Date")]


@pytest.mark.parametrize(("path", "cookie", "lean"), [
    ("/api/v2/tenants", None, True),
    ("/v1/models", None, True),
    ("/", None, True),
    ("/health", None, True),
    ("/api/v2/tenants", "sessionid=abc", False),  # a browser with a session: the whole stack
    ("/admin/", None, False),                     # the console always has it
    ("/docs", None, False),
])
def test_which_requests_take_the_lean_stack(path, cookie, lean):
    environ = {"PATH_INFO": path}
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    assert lean_eligible(environ) is lean


def test_the_lean_stack_skips_the_browser_session_middleware():
    handler = ServiceWSGIHandler()
    lean_chain = [type(m).__name__ for m in _chain_classes(handler._lean)]
    full_chain = [type(m).__name__ for m in _chain_classes(handler)]
    assert "SessionMiddleware" in full_chain and "SessionMiddleware" not in lean_chain
    assert "CsrfViewMiddleware" not in lean_chain and "MessageMiddleware" not in lean_chain
    assert "AuthenticationMiddleware" not in lean_chain and "SessionVaryMiddleware" in lean_chain
    for name in ("Security", "Cors", "Locale", "Common", "XFrameOptions"):  # their lean versions (core.middleware)
        assert f"{name}Middleware" in full_chain and f"Lean{name}Middleware" in lean_chain


def _chain_classes(handler):
    """The middleware instances of a handler's chain, outermost first (each wrapped by Django's
    convert_exception_to_response closure, whose cell holds the instance)."""
    found, link = [], handler._middleware_chain
    while link is not None:
        instance = next((c.cell_contents for c in (link.__closure__ or ())
                         if hasattr(c.cell_contents, "get_response")), None)
        if instance is None:
            break
        found.append(instance)
        link = instance.get_response
    return found


@pytest.mark.parametrize("path", ["/api/v2/tenants", "/api/v2/tenants/tenant_missing", "/api/v2/nothing-here"])
def test_lean_and_full_stacks_answer_alike(path):
    """The same request with and without an unrelated cookie (which sends it through the whole stack):
    same status, same headers (Vary: Cookie included, in the same order) and the same body."""
    handler = ServiceWSGIHandler()
    lean = _call(handler, "GET", path)
    full = _call(handler, "GET", path, cookie="theme=dark")
    assert lean["status"] == full["status"]
    assert _comparable(lean["headers"]) == _comparable(full["headers"])
    volatile = ("request_id", "timestamp", "execution_time")
    assert {k: v for k, v in json.loads(lean["body"]).items() if k not in volatile} == \
        {k: v for k, v in json.loads(full["body"]).items() if k not in volatile}


def _assert_alike(lean, full):
    assert lean["status"] == full["status"]
    assert _comparable(lean["headers"]) == _comparable(full["headers"])
    if lean["body"][:1] == b"{":
        volatile = ("request_id", "timestamp", "execution_time")
        assert {k: v for k, v in json.loads(lean["body"]).items() if k not in volatile} == \
            {k: v for k, v in json.loads(full["body"]).items() if k not in volatile}
    else:
        assert lean["body"] == full["body"]


_ORIGIN = "https://console.example"
_VARIANTS = {
    "root": ("GET", "/", {}, b""),
    "root HEAD": ("HEAD", "/", {}, b""),
    "root OPTIONS": ("OPTIONS", "/", {}, b""),
    "info": ("GET", "/info", {}, b""),
    "not found": ("GET", "/api/v2/nothing-here", {}, b""),
    "Chinese": ("GET", "/api/v2/tenants", {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9,en;q=0.5"}, b""),
    "French then Chinese": ("GET", "/", {"HTTP_ACCEPT_LANGUAGE": "fr, zh;q=0.5"}, b""),
    "any language": ("GET", "/api/v2/tenants", {"HTTP_ACCEPT_LANGUAGE": "*"}, b""),
    "malformed language": ("GET", "/", {"HTTP_ACCEPT_LANGUAGE": ";;q=x,, ??"}, b""),
    "client request id": ("GET", "/", {"HTTP_X_REQUEST_ID": "client-id.42"}, b""),
    "allowed origin": ("GET", "/api/v2/tenants", {"HTTP_ORIGIN": _ORIGIN}, b""),
    "other origin": ("GET", "/", {"HTTP_ORIGIN": "https://elsewhere.example"}, b""),
    "preflight": ("OPTIONS", "/api/v2/tenants", {"HTTP_ORIGIN": _ORIGIN,
                                                 "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "GET"}, b""),
    "refused body": ("POST", "/api/v2/tenants", {"CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "2"}, b"{}"),
    "disallowed host": ("GET", "/", {"HTTP_HOST": "evil.example"}, b""),
    "https": ("GET", "/", {"wsgi.url_scheme": "https"}, b""),
}


@pytest.mark.parametrize("variant", list(_VARIANTS))
@override_settings(CORS_ALLOWED_ORIGINS=[_ORIGIN])
def test_lean_middleware_answers_like_django_s(variant):
    """The lean versions of Security, CORS, Locale, Common and X-Frame-Options (core.middleware) give the
    full stack's answer, header for header in the same order: languages, origins, a preflight, a refusal
    before the inner middleware, a disallowed host, HTTPS."""
    method, path, extra, body = _VARIANTS[variant]
    handler = ServiceWSGIHandler()
    assert lean_eligible({"PATH_INFO": path, **extra})
    _assert_alike(_call(handler, method, path, extra=extra, body=body),
                  _call(handler, method, path, cookie="theme=dark", extra=extra, body=body))


@pytest.mark.parametrize("variant", ["root", "Chinese", "refused body"])
@override_settings(SECURE_HSTS_SECONDS=3600, SECURE_HSTS_INCLUDE_SUBDOMAINS=True, X_FRAME_OPTIONS="sameorigin",
                   SECURE_REFERRER_POLICY="no-referrer, strict-origin", SECURE_CROSS_ORIGIN_OPENER_POLICY=None,
                   LANGUAGE_COOKIE_NAME="lang")
def test_lean_middleware_follows_the_settings(variant):
    method, path, extra, body = _VARIANTS[variant]
    extra = {**extra, "wsgi.url_scheme": "https"}
    handler = ServiceWSGIHandler()  # built under these settings, as a worker would be
    lean = _call(handler, method, path, extra=extra, body=body)
    _assert_alike(lean, _call(handler, method, path, cookie="theme=dark", extra=extra, body=body))
    headers = dict(lean["headers"])
    assert "Strict-Transport-Security" in headers and "Cross-Origin-Opener-Policy" not in headers
    assert headers["Referrer-Policy"] == "no-referrer,strict-origin"


def test_the_language_cookie_still_chooses_the_language():
    """A request with a cookie never takes the lean stack, but the lean Locale middleware still honours a
    language cookie if it sees one (its remembered choices are keyed by cookie and Accept-Language)."""
    from django.http import HttpResponse
    from django.test import RequestFactory

    from core.middleware import LeanLocaleMiddleware

    seen = []
    middleware = LeanLocaleMiddleware(lambda request: seen.append(request.LANGUAGE_CODE) or HttpResponse())
    factory = RequestFactory()
    for cookie, accept in ((None, "zh-CN"), ("en", "zh-CN"), (None, "zh-CN"), ("zh-hans", ""), (None, "")):
        request = factory.get("/", HTTP_ACCEPT_LANGUAGE=accept)
        if cookie:
            request.COOKIES["django_language"] = cookie
            request.META["HTTP_COOKIE"] = f"django_language={cookie}"
        response = middleware(request)
        assert response["Content-Language"] == seen[-1]
    assert seen == ["zh-hans", "en", "zh-hans", "zh-hans", "en"]


def test_an_operator_request_on_the_lean_stack_is_served(operator_token):
    tenant = TenantFactory()
    answer = _call(ServiceWSGIHandler(), "GET", f"/api/v2/tenants/{tenant.pk}", token=operator_token)
    assert answer["status"] == 200 and tenant.pk.encode() in answer["body"]


def test_root_answers_with_what_rootview_renders():
    handler = ServiceWSGIHandler()
    answer = _call(handler, "GET", "/")
    from rest_framework.test import APIRequestFactory

    drf = RootView.as_view()(APIRequestFactory().get("/"))
    drf.render()
    assert answer["status"] == 200 and answer["body"] == drf.content
    assert dict(answer["headers"])["Content-Type"] == "application/json"
    assert dict(answer["headers"])["Allow"] == "GET, HEAD, OPTIONS"
    assert _call(handler, "POST", "/")["status"] == 405
    assert _call(handler, "OPTIONS", "/")["status"] == 200


@override_settings(MAIMCONFIG_VERSION="9.9.9-test")
def test_root_document_follows_the_settings_it_is_built_from():
    from core.views import root_body

    root_body.cache_clear()
    try:
        assert b'"version":"9.9.9-test"' in _call(ServiceWSGIHandler(), "GET", "/")["body"]
    finally:
        root_body.cache_clear()


def test_metrics_middleware_still_counts_each_request_by_view_and_method():
    def count(name):
        return sum(sample.value for metric in REGISTRY.collect()
                   if metric.name == name
                   for sample in metric.samples
                   if sample.name.endswith("_total") and sample.labels.get("view") == "tenants:tenant-detail"
                   and sample.labels.get("method") == "GET")

    names = ("django_http_responses_total_by_status_view_method", "django_http_requests_total_by_view_transport_method")
    handler = ServiceWSGIHandler()
    before = [count(name) for name in names]
    for _ in range(3):
        _call(handler, "GET", "/api/v2/tenants/tenant_missing")
    assert [count(name) for name in names] == [value + 3 for value in before]


def test_output_serializers_share_no_field_objects_and_keep_their_output():
    first, second = TenantFactory(), TenantFactory()
    a, b = TenantOutputSerializer(first), TenantOutputSerializer(second)
    assert a.data["tenant_id"] == first.pk and b.data["tenant_id"] == second.pk
    assert all(a.fields[name] is not b.fields[name] for name in a.fields)
    assert a.fields["tenant_id"].parent is a and b.fields["tenant_id"].parent is b

    class PlainTenantSerializer(serializers.ModelSerializer):  # what DRF builds without the template
        tenant_id = serializers.CharField(source="id", read_only=True)

        class Meta(TenantOutputSerializer.Meta):
            pass

    assert TenantOutputSerializer(first).data == PlainTenantSerializer(first).data
    assert isinstance(TenantOutputSerializer(), OutputModelSerializer)
    assert Tenant.objects.count() == 2


def test_generated_request_ids_are_distinct_uuid4s_without_os_urandom(monkeypatch):
    import os
    import uuid

    from core.context import request_id_from_header

    def no_urandom(size):  # a system call that releases the GIL (core.context.new_request_id)
        raise AssertionError("os.urandom called for a request id")

    monkeypatch.setattr(os, "urandom", no_urandom)
    ids = {request_id_from_header(None) for _ in range(2000)}
    assert len(ids) == 2000
    assert all(uuid.UUID(value).version == 4 and uuid.UUID(value).variant == uuid.RFC_4122 for value in ids)
    assert request_id_from_header("client-id.1") == "client-id.1"


def test_url_resolution_is_remembered_per_path_and_per_url_configuration(monkeypatch):
    """core.handlers: a path is resolved once per URL configuration; a 404 is not remembered; a new
    configuration resolves afresh; the memory is bounded."""
    from django.urls import get_resolver

    from core import handlers

    handler = ServiceWSGIHandler()
    resolver = get_resolver()
    walks = []
    original = type(resolver).resolve

    def counting(self, path):
        walks.append(path)
        return original(self, path)

    monkeypatch.setattr(type(resolver), "resolve", counting)
    resolver.__dict__.pop("_remembered_matches", None)
    for _ in range(3):
        assert _call(handler, "GET", "/")["status"] == 200
        assert _call(handler, "GET", "/api/v2/tenants/tenant_missing", cookie="theme=dark")["status"] in (401, 404)
        assert _call(handler, "GET", "/no-such-page")["status"] == 404
    assert walks.count("/") == 1 and walks.count("/api/v2/tenants/tenant_missing") == 1
    assert walks.count("/no-such-page") == 3
    with override_settings(ROOT_URLCONF="core.tests.urls_error_probe"):
        assert get_resolver() is not resolver
        _call(handler, "GET", "/")
    assert walks.count("/") == 2
    with override_settings(ROOT_URLCONF="core.tests.urls_translated"):  # language-dependent: never remembered
        for _ in range(2):
            _call(handler, "GET", "/hello/")
        assert walks.count("/hello/") == 2
        assert handlers._resolution_is_pure(get_resolver()) is False
    assert handlers._resolution_is_pure(resolver) is True
    monkeypatch.setattr(handlers, "_MAX_REMEMBERED_PATHS", 2)
    for path in ("/info", "/health", "/"):
        _call(handler, "GET", path)
    assert len(resolver.__dict__["_remembered_matches"]) <= 2


def test_where_cors_applies_follows_the_pattern_and_the_signal():
    """LeanCorsMiddleware remembers the pattern's verdict per pattern and path; a path the pattern does not
    match still asks `check_request_enabled`, on every request."""
    from corsheaders.signals import check_request_enabled

    handler = ServiceWSGIHandler()

    def varies_by_origin():
        vary = dict(_call(handler, "GET", "/")["headers"]).get("Vary", "")
        return "origin" in [name.strip().lower() for name in vary.split(",")]

    assert varies_by_origin()
    with override_settings(CORS_URLS_REGEX=r"^/api/"):
        assert not varies_by_origin()
        enabled = []

        def enable(sender, request, **kwargs):
            enabled.append(request.path)
            return True

        check_request_enabled.connect(enable)
        try:
            assert varies_by_origin() and varies_by_origin()
        finally:
            check_request_enabled.disconnect(enable)
        assert enabled == ["/", "/"]
        assert not varies_by_origin()
    assert varies_by_origin()
