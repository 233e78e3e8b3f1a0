"""The read cache (readcache/): operator reads answered by the fast lane from Redis, populated by Django.

Through the real ASGI application (`core.testing.asgi_request`): a spy on the registered prefix handler
tells whether the fast lane answered; Django's own answer to the same request comes with the handler taken
out. Redis-only (the read cache does not exist without it).
"""

import pytest
from prometheus_client import REGISTRY

from core.testing import asgi_request
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)


def get(path, token, query="", headers=None):
    extra = {"Authorization": f"Token {token}"} if token else {}
    extra.update(headers or {})
    return asgi_request("GET", path, query=query, headers=extra)


def comparable(response):
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "content-length")}
    body = response.json()
    if isinstance(body, dict):
        for name in ("timestamp", "request_id", "execution_time"):
            body.pop(name, None)
    return response.status_code, headers, body


def metrics(view):
    labels = {"view": view, "method": "GET"}
    return tuple(REGISTRY.get_sample_value(name, lab) or 0.0 for name, lab in (
        ("django_http_responses_total_by_status_view_method_total", {"status": "200", **labels}),
        ("django_http_requests_latency_seconds_by_view_method_count", labels),
        ("django_http_requests_total_by_view_transport_method_total", {"transport": "http", **labels}),
        ("django_http_responses_total_by_status_total", {"status": "200"}),
        ("django_http_requests_total_by_method_total", {"method": "GET"}),
    ))


def test_tenant_get_fast_equals_djangos(lane, operator_token):
    tenant = TenantFactory()
    path = f"/api/v2/tenants/{tenant.pk}"
    first = get(path, operator_token)
    assert first.status_code == 200
    before = metrics("tenants:tenant-detail")
    fast = get(path, operator_token, headers={"X-Request-ID": "rc-1"})
    fast_metrics = tuple(a - b for a, b in zip(metrics("tenants:tenant-detail"), before, strict=True))
    assert lane.outcomes == [False, True]
    with lane.django_only():
        before = metrics("tenants:tenant-detail")
        slow = get(path, operator_token, headers={"X-Request-ID": "rc-1"})
        slow_metrics = tuple(a - b for a, b in zip(metrics("tenants:tenant-detail"), before, strict=True))
    assert comparable(fast) == comparable(slow)
    assert fast.headers["x-request-id"] == fast.json()["request_id"] == "rc-1"
    assert fast.headers["content-length"] == str(len(fast.content))
    assert list(fast.headers) == list(slow.headers)
    assert fast_metrics == slow_metrics == (1, 1, 1, 1, 1)
