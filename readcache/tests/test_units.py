"""The read cache's pieces that need neither Redis nor a server: the entry's replay of Django's bytes, the
routes' dependency rules, and the embedded default (no Redis: nothing registered, Django serves)."""

import json

import pytest
from django.test import RequestFactory

from apikeys import redisstate
from core import generations, lanes
from readcache import fastlane, routes, store


def _envelope(data, *, request_id="req-1", tenant_id="tenant_0123456789ab", execution_time=0.0123):
    from core.context import request_id_var, request_started_var
    from core.renderers import EnvelopeJSONRenderer

    class _Response:
        status_code = 200
        api_message = "Tenant retrieved"
        api_tenant_id = tenant_id

    token = request_id_var.set(request_id)
    started = request_started_var.set(0.0)
    try:
        body = EnvelopeJSONRenderer().render(data, renderer_context={"response": _Response()})
    finally:
        request_id_var.reset(token)
        request_started_var.reset(started)
    return body


@pytest.mark.parametrize("data", [
    {"id": "t", "timestamp": "x", "nested": {"timestamp": "2026-01-01T00:00:00Z"}},
    {"items": [{"note": '","timestamp":"'}], "pagination": {}},
    [],
], ids=["a timestamp member in data", "the member's text in a string", "a list"])
@pytest.mark.parametrize("tenant_id", ["tenant_0123456789ab", None])
def test_the_entry_replays_djangos_body_with_this_requests_members(data, tenant_id):
    body = _envelope(data, tenant_id=tenant_id)
    value = store.encode(valid_until_us=1, names=["rc:tenant:t"], stamps=["5"], status=200,
                         headers=[("content-type", "application/json"), ("content-length", None)],
                         view_name="v", body=body, request_id="req-1")
    assert value is not None
    entry = store.Entry(value[value.index(b"\n") + 1:])
    doc = json.loads(body)
    replay = entry.body(timestamp=doc["timestamp"].encode(), request_id="req-1", execution_time=doc["execution_time"])
    assert replay == body
    other = json.loads(entry.body(timestamp=b"2030-01-01T00:00:00Z", request_id="req-2", execution_time=0.5))
    assert other == {**doc, "timestamp": "2030-01-01T00:00:00Z", "request_id": "req-2", "execution_time": 0.5}


def test_a_body_that_is_not_an_envelope_of_this_request_is_not_cached():
    body = _envelope({"id": "t"})
    assert store.split_envelope(body, "another-request") is None
    assert store.split_envelope(b'{"success":true}', "req-1") is None


def test_the_entry_hash_covers_the_credential_and_the_request():
    base = dict(method="GET", path="/api/v2/tenants/t", query="", host="h", secure=False,
                authorization="Token a", accept=None, accept_language=None)
    names = {store.entry_hash(**base)}
    for change in ({"authorization": "Token b"}, {"authorization": None}, {"query": "x=1"}, {"host": "g"},
                   {"secure": True}, {"accept": "application/json"}, {"accept_language": "zh-Hans"},
                   {"path": "/api/v2/tenants/u"}):
        names.add(store.entry_hash(**{**base, **change}))
    assert len(names) == 9
    assert "Token a" not in store.entry_hash(**base)


@pytest.mark.parametrize("query,deps", [
    ("tenant_id=tenant_0123456789AB", ["rc:keys:tenant_0123456789ab"]),
    ("tenant_id=tenant_1&page=2&page_size=5", ["rc:keys:tenant_1"]),
    ("tenant_id=tenant_1&status=active", None),  # keys enter a status filter by time
    ("tenant_id=a&tenant_id=b", None),
    ("tenant_id=%20tenant_1", None),  # not a plain id: the database might read it as another
    ("agent_id=agent_1", None),
    ("", None),
])
def test_key_list_dependencies(query, deps):
    request = RequestFactory().get("/api/v2/api-keys", QUERY_STRING=query)
    assert routes.ROUTES["apikeys:apikey-list"].deps(request, {}) == deps


def test_activity_list_is_cached_only_whole():
    route = routes.ROUTES["activity:agent-activity"]
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    items = [{"expires_at": "2026-01-01T00:00:30.500000Z"}, {"expires_at": "2026-01-01T00:00:10.000001Z"}]
    assert route.valid_until({"items": items, "pagination": {"total": 2}}, now) == \
        datetime(2026, 1, 1, 0, 0, 10, 1, tzinfo=UTC)
    with pytest.raises(routes.NotCacheable):
        route.valid_until({"items": items, "pagination": {"total": 3}}, now)


def test_generation_names_are_lower_case():
    assert generations.tenant("Tenant_AB") == "rc:tenant:tenant_ab"
    assert generations.of_tenant("T") == ("rc:tenant:t", "rc:keys:t", "rc:activity:t", "rc:plugins:t")


@pytest.mark.django_db
def test_without_redis_nothing_is_registered_and_django_answers(operator_client):
    if redisstate.enabled():
        pytest.skip("the embedded default (no CACHE_URL)")
    from tenants.tests.factories import TenantFactory

    assert not any(handler is fastlane.handler for _, _, handler in lanes._fast_prefixes)
    tenant = TenantFactory()
    assert operator_client.get(f"/api/v2/tenants/{tenant.pk}").status_code == 200
    assert operator_client.get(f"/api/v2/tenants/{tenant.pk}").status_code == 200
