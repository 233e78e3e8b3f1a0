"""The service's WSGI handler (core.handlers): no request transaction on safe methods (issue 11)."""

import io
import json

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext

from core.handlers import ServiceWSGIHandler
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def _call(handler, method, path, token, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Token {token}", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data), "wsgi.errors": io.StringIO(), "wsgi.multithread": True,
        "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    if body is not None:
        environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(data)))
    statuses = []
    # As Django's test client does: the test's own transaction must survive the request's start and end
    # signals (a real server closes obsolete connections there).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = handler(environ, lambda status, headers, exc_info=None: statuses.append(status))
        payload = b"".join(result)
        result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return int(statuses[0].split()[0]), json.loads(payload)


def _transaction_statements(ctx) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries
            if q["sql"].upper().split()[0] in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK")]


def test_a_get_of_one_object_is_authentication_plus_one_query_without_a_transaction(operator_token):
    tenant = TenantFactory()
    handler = ServiceWSGIHandler()
    _call(handler, "GET", f"/api/v2/tenants/{tenant.pk}", operator_token)  # warm (first-use work)
    with CaptureQueriesContext(connection) as ctx:
        status, body = _call(handler, "GET", f"/api/v2/tenants/{tenant.pk}", operator_token)
    assert status == 200 and body["data"]["tenant_id"] == tenant.pk
    assert _transaction_statements(ctx) == [], ctx.captured_queries
    assert len(ctx.captured_queries) == 2, ctx.captured_queries  # the operator token, the tenant


def test_writes_still_run_in_the_request_transaction(operator_token):
    tenant = TenantFactory()
    handler = ServiceWSGIHandler()
    with CaptureQueriesContext(connection) as ctx:
        status, _ = _call(handler, "PATCH", f"/api/v2/tenants/{tenant.pk}", operator_token, {"description": "x"})
    assert status == 200
    assert _transaction_statements(ctx), "an unsafe method keeps its request transaction"


def _environ(path, method="GET"):
    return {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(), "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
    }


def test_closing_the_answer_finishes_the_request_as_django_does():
    """ServiceWSGIHandler's own __call__: the answer closes the response's resources (the request's
    uploaded files among them) and sends request_finished with the handler's class, once."""
    finished = []

    def listener(sender, **kwargs):
        finished.append(sender)

    handler = ServiceWSGIHandler()
    request_finished.connect(listener)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        seen = {}
        result = handler(_environ("/"), lambda status, headers, exc_info=None: seen.update(status=status,
                                                                                          headers=headers))
        body = b"".join(result)
        assert finished == []
        result.close()
    finally:
        request_finished.disconnect(listener)
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert finished == [ServiceWSGIHandler]
    assert seen["status"] == "200 OK" and json.loads(body)["name"] == "MaimConfig"
    assert result.response.closed and result.response._resource_closers == []
    names = [name for name, _ in seen["headers"]]
    assert names == [name for name, _ in result.response.items()]  # Django's names, in Django's order


def test_cookies_are_sent_as_set_cookie_headers():
    """The admin's login page sets the CSRF cookie: it reaches the server as Django sends it."""
    seen = {}
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = ServiceWSGIHandler()(_environ("/admin/login/"), lambda status, headers, exc_info=None: seen.update(
            status=status, headers=headers))
        b"".join(result)
        result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    cookies = [value for name, value in seen["headers"] if name == "Set-Cookie"]
    assert seen["status"] == "200 OK" and len(cookies) == 1 and cookies[0].strip().startswith("csrftoken=")


def test_the_per_method_view_is_built_once_per_view():
    """make_view_atomic is asked for every request; its answer for a view is built once and reused."""
    from django.urls import resolve

    from core.handlers import _PerMethodAtomicMixin

    handler = ServiceWSGIHandler()
    view = resolve("/api/v2/tenants/tenant_x").func
    built = []
    original = _PerMethodAtomicMixin._per_method

    def counting(self, view):
        built.append(view)
        return original(self, view)

    _PerMethodAtomicMixin._per_method = counting
    try:
        first = handler.make_view_atomic(view)
        assert all(handler.make_view_atomic(view) is first for _ in range(3))
    finally:
        _PerMethodAtomicMixin._per_method = original
    assert built == [view] and first is not view  # the API view runs writes in the request transaction
