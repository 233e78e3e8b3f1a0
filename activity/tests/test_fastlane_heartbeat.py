"""The fast lane of the agent-key heartbeat (activity/fastlane.py), served through the real ASGI application.

As in apikeys/tests/test_fastlane.py: a spy on the registered handler tells whether the fast lane answered;
Django's answer to the same request comes from the dispatcher with the handler taken out. Redis-only.
"""

from unittest import mock

import pytest
from django.db import OperationalError
from prometheus_client import REGISTRY

from activity import fastlane
from activity.models import AgentActivity
from agents.tests.factories import AgentFactory
from apikeys import redisstate, usage
from apikeys.tests.factories import ApiKeyFactory
from core import lanes
from core.errors import ErrorCode
from core.exceptions import ApplicationError
from core.testing import asgi_request, spy_on_fast_handler, statements_in_every_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_redis_state")]

PATH = fastlane.ACTIVITY_PATH


@pytest.fixture
def lane(monkeypatch):
    if not redisstate.enabled():
        pytest.skip("needs CACHE_URL=redis://… (the fast lane exists only with Redis)")
    return spy_on_fast_handler(monkeypatch, "PUT", PATH, fastlane.heartbeat_handler)


def put(body, key=None, headers=None):
    extra = dict(headers or {})
    if key is not None:
        extra["Authorization"] = f"Bearer {key}"
    return asgi_request("PUT", PATH, json_body=body, headers=extra)


def _comparable(response):
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "x-request-id", "content-length")}
    body = response.json()
    for name in ("timestamp", "request_id", "execution_time"):
        body.pop(name)
    if isinstance(body.get("data"), dict):
        body["data"].pop("last_seen_at", None)
        body["data"].pop("expires_at", None)
    return response.status_code, headers, body


def _metrics():
    view = {"view": "activity:agent-activity", "method": "PUT"}
    return tuple(REGISTRY.get_sample_value(name, labels) or 0.0 for name, labels in (
        ("maimconfig_key_verifications_total", {"outcome": "valid", "route": "request"}),
        ("django_http_responses_total_by_status_view_method_total", {"status": "200", **view}),
        ("django_http_requests_latency_seconds_by_view_method_count", view),
        ("django_http_responses_total_by_status_total", {"status": "200"}),
    ))


def _delta(before):
    return tuple(round(a - b) for a, b in zip(_metrics(), before, strict=True))


CASES = {
    "ids in the body": lambda key: ({"tenant_id": key.tenant_id, "agent_id": key.agent_id, "ttl_seconds": 120}, True, {}),
    "no ids": lambda key: ({}, True, {}),
    "key in the body": lambda key: ({"api_key": key.raw_key, "ttl_seconds": 60}, False, {}),
    "key in both": lambda key: ({"api_key": key.raw_key}, True, {}),
    "request id": lambda key: ({"ttl_seconds": 300}, True, {"X-Request-ID": "hb-1"}),
    "chinese": lambda key: ({"ttl_seconds": 300}, True, {"Accept-Language": "zh-Hans"}),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("limited", [False, True], ids=["unlimited", "limited key"])
def test_fast_heartbeat_equals_djangos(lane, case, limited, frozen_clock):
    key = ApiKeyFactory(permissions=[], rate_limit_per_minute=30 if limited else None)
    body, in_header, headers = CASES[case](key)
    auth = key.raw_key if in_header else None
    assert put(body, auth, headers).status_code == 200  # cold key: Django answers and warms the entry
    before = _metrics()
    fast = put(body, auth, headers)
    fast_metrics = _delta(before)
    assert lane.outcomes == [False, True]
    with lane.django_only():
        before = _metrics()
        slow = put(body, auth, headers)
        slow_metrics = _delta(before)
    fast_c, slow_c = _comparable(fast), _comparable(slow)
    if limited:
        assert fast.headers.pop("x-ratelimit-remaining") == "28"
        assert slow.headers.pop("x-ratelimit-remaining") == "27"
        fast_c, slow_c = _comparable(fast), _comparable(slow)
    assert fast_c == slow_c
    assert fast.headers["content-length"] == str(len(fast.content))
    assert fast.headers["x-request-id"] == fast.json()["request_id"]
    if "X-Request-ID" in headers:
        assert fast.json()["request_id"] == "hb-1"
    assert fast_metrics == slow_metrics == (1, 1, 1, 1)
    assert usage.shown(key.pk)[0] == 3
    row = AgentActivity.objects.get(agent_id=key.agent_id)
    assert row.ttl_seconds == body.get("ttl_seconds", 300)


def test_fast_heartbeat_makes_only_the_upsert(lane):
    key = ApiKeyFactory()
    put({}, key.raw_key)
    put({}, key.raw_key)  # the lane's pool thread has its database connection now
    with statements_in_every_thread() as seen:
        assert put({"ttl_seconds": 90}, key.raw_key).status_code == 200
    assert lane.outcomes == [False, True, True]
    # The test settings' CONN_MAX_AGE=0 opens a connection per request (its session set-up is not a query of
    # the request); the request itself makes the one upsert.
    statements = [sql for sql in seen if not sql.upper().startswith("SET ")]
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("INSERT INTO"), seen


DECLINED = {
    "operator token": lambda key, token: ({"tenant_id": key.tenant_id, "agent_id": key.agent_id},
                                          {"Authorization": f"Token {token}"}, 200),
    "no credential": lambda key, token: ({"tenant_id": key.tenant_id, "agent_id": key.agent_id}, {}, 401),
    "another agent": lambda key, token: ({"agent_id": AgentFactory(tenant=key.tenant).pk},
                                         {"Authorization": f"Bearer {key.raw_key}"}, 403),
    "invalid ttl": lambda key, token: ({"ttl_seconds": 0}, {"Authorization": f"Bearer {key.raw_key}"}, 400),
    "unknown body key": lambda key, token: ({"status": "x"}, {"Authorization": f"Bearer {key.raw_key}"}, 200),
    "keys differ": lambda key, token: ({"api_key": ApiKeyFactory(agent=key.agent).raw_key},
                                       {"Authorization": f"Bearer {key.raw_key}"}, 400),
}


@pytest.mark.parametrize("case", list(DECLINED))
def test_unusual_heartbeats_go_to_django_and_count_once(lane, operator_token, case):
    key = ApiKeyFactory()
    put({}, key.raw_key)
    body, headers, status = DECLINED[case](key, operator_token)
    response = put(body, headers=headers)
    assert response.status_code == status, response.content
    assert lane.outcomes == [False, False]
    # Django counts the use where the request passes the scope check (a 400 of the body comes after it;
    # the 403 of another agent and the 400 of two different keys come before it)
    counted = 1 if case in ("invalid ttl", "unknown body key") else 0
    assert usage.shown(key.pk)[0] == 1 + counted


def test_rate_limited_key_is_djangos_429_and_counts_nothing(lane):
    key = ApiKeyFactory(rate_limit_per_minute=2)
    put({}, key.raw_key)
    assert put({}, key.raw_key).status_code == 200
    refused = put({}, key.raw_key)
    assert refused.status_code == 429 and refused.json()["error_code"] == "AUTH_008"
    assert lane.outcomes == [False, True, False]
    assert usage.shown(key.pk)[0] == 2


def test_disabled_key_is_refused_at_once(lane, operator_client):
    key = ApiKeyFactory()
    put({}, key.raw_key)
    assert put({}, key.raw_key).status_code == 200
    assert operator_client.post(f"/api/v2/api-keys/{key.pk}/disable").status_code == 200
    refused = put({}, key.raw_key)
    assert refused.status_code == 401 and refused.json()["error_code"] == "AUTH_004"
    assert lane.outcomes == [False, True, False]


@pytest.mark.parametrize("failure", [
    OperationalError(2013, "Lost connection to server during query"),
    ApplicationError(ErrorCode.ACTIVITY_002, "The agent is not active.", status=409, data={"reason": "agent_not_active"}),
])
def test_a_failed_upsert_is_handed_to_django_with_the_use_counted_once(lane, monkeypatch, failure):
    key = ApiKeyFactory(rate_limit_per_minute=10)
    put({}, key.raw_key)
    calls = []

    def failing(*args):
        calls.append(args)
        raise failure

    monkeypatch.setattr(fastlane, "_upsert", failing)
    response = put({"ttl_seconds": 77}, key.raw_key)
    assert response.status_code == 200, response.content  # Django's own upsert then succeeded
    assert response.headers["x-ratelimit-remaining"] == "8"
    assert lane.outcomes == [False, True] and len(calls) == 1
    assert usage.shown(key.pk)[0] == 2
    assert AgentActivity.objects.get(agent_id=key.agent_id).ttl_seconds == 77
    assert usage.precounted_use.get() is None


def test_nothing_registers_without_redis(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with mock.patch.object(lanes, "register_fast_handler") as register:
        assert fastlane.register() is False
    register.assert_not_called()
