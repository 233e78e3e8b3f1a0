"""The fast lane of validate-api-key (apikeys/fastlane.py): served through the real ASGI application.

Each request goes through `core.lanes.LaneDispatcher` in process (`core.testing.asgi_request`); a spy on the
registered handler tells whether the fast lane answered or declined. Django's answer to the same request
is obtained by taking the handler out of the dispatcher's table. Redis-only: skipped on the embedded
default (locmem cache), where nothing is registered.
"""

from unittest import mock

import pytest
from django.db.backends.base.base import BaseDatabaseWrapper
from prometheus_client import REGISTRY

from apikeys import fastlane, redisstate, usage
from apikeys.keys import generate_key
from apikeys.tests.factories import ApiKeyFactory
from core import lanes
from core.testing import asgi_request, spy_on_fast_handler

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_breaker")]

VALIDATE = fastlane.VALIDATE_PATH
VARIABLE = ("timestamp", "request_id", "execution_time")


@pytest.fixture
def lane(monkeypatch):
    """The registered handler, wrapped in a spy: `lane.outcomes` lists True (answered) / False (declined)."""
    if not redisstate.enabled():
        pytest.skip("needs CACHE_URL=redis://… (the fast lane exists only with Redis)")
    return spy_on_fast_handler(monkeypatch, "POST", VALIDATE, fastlane.validate_handler)


def post(body, headers=None, path=VALIDATE, raw: bytes | None = None, content_type="application/json"):
    if raw is None:
        return asgi_request("POST", path, json_body=body, headers=headers)
    extra = {"content-type": content_type, "content-length": str(len(raw)), **(headers or {})}
    answer = asgi_request("POST", path, raw_body=raw, headers=extra)
    return {"status": answer.status_code, "headers": answer.headers, "body": answer.content}


def _comparable(response):
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "x-request-id", "content-length")}
    body = response.json()
    for name in VARIABLE:
        body.pop(name)
    return response.status_code, headers, body


def _counter(name, labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _metrics():
    view = {"view": "apikeys:validate-api-key", "method": "POST"}
    return (
        _counter("maimconfig_key_verifications_total", {"outcome": "valid", "route": "validate"}),
        _counter("django_http_responses_total_by_status_view_method_total", {"status": "200", **view}),
        _counter("django_http_requests_total_by_view_transport_method_total", {"transport": "http", **view}),
        _counter("django_http_requests_latency_seconds_by_view_method_count", view),
        _counter("django_http_requests_before_middlewares_total", {}),
    )


def _delta(before, after):
    return tuple(round(a - b) for a, b in zip(after, before, strict=True))


def _shown(key):
    return usage.shown(key.pk)[0]


CASES = {
    "plain": ({}, {}),
    "required permission": ({"required_permission": "chat"}, {}),
    "given request id": ({}, {"X-Request-ID": "bot-7-msg-1234"}),
    "read-only check": ({"check_rate_limit": False}, {}),
    "null options": ({"required_permission": None, "check_rate_limit": None}, {}),
    "chinese": ({}, {"Accept-Language": "zh-CN,zh;q=0.9"}),
    "english variant": ({}, {"Accept-Language": "en-US"}),
    "legacy errors header (no effect on a 200)": ({}, {"X-MaimConfig-Legacy-Errors": "1"}),
    "forwarded for": ({}, {"X-Forwarded-For": "10.1.2.3"}),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("limited", [False, True], ids=["unlimited", "limited key"])
def test_fast_answer_equals_djangos(lane, case, limited):
    extra, headers = CASES[case]
    key = ApiKeyFactory(permissions=["chat", "config"], metadata={"deployment": "qq\u2028main", "n": 1},
                        rate_limit_per_minute=50 if limited else None)
    body = {"api_key": key.raw_key, **extra}
    assert post(body).status_code == 200  # cold key: Django answers and warms the entry
    assert lane.outcomes == [False]
    counts = 0 if extra.get("check_rate_limit") is False else 1

    before = _metrics()
    fast = post(body, headers)
    fast_metrics = _delta(before, _metrics())
    assert lane.outcomes == [False, True]
    shown_after_fast = _shown(key)

    with lane.django_only():
        before = _metrics()
        slow = post(body, headers)
        slow_metrics = _delta(before, _metrics())
    assert lane.outcomes == [False, True]  # not offered to the fast lane

    status, fast_headers, fast_body = _comparable(fast)
    assert (status, fast_headers) == _comparable(slow)[:2]
    slow_body = _comparable(slow)[2]
    assert fast.headers["content-length"] == str(len(fast.content))
    if "X-Request-ID" in headers:
        assert fast.headers["x-request-id"] == fast.json()["request_id"] == headers["X-Request-ID"]
    else:
        assert fast.headers["x-request-id"] == fast.json()["request_id"] != slow.json()["request_id"]
    fast_count, slow_count = fast_body["data"].pop("usage_count"), slow_body["data"].pop("usage_count")
    fast_last, slow_last = fast_body["data"].pop("last_used_at"), slow_body["data"].pop("last_used_at")
    assert fast_count == shown_after_fast == 2 * counts and slow_count == fast_count + counts
    if counts:
        assert fast_last is not None and slow_last >= fast_last
    rate_fast, rate_slow = fast_body["data"].pop("rate_limit"), slow_body["data"].pop("rate_limit")
    if limited:
        assert rate_slow["remaining"] == rate_fast["remaining"] - counts and rate_fast["limit"] == 50
    else:
        assert rate_fast is rate_slow is None
    assert fast_body == slow_body
    assert fast_body["success"] is True and fast_body["data"]["valid"] is True
    assert fast_metrics == slow_metrics == (1, 1, 1, 1, 1)
    # the JSON line separator in metadata is escaped as DRF's renderer does
    assert b"\\u2028" in fast.content and "\u2028".encode() not in fast.content


def test_warm_fast_validation_makes_no_query(lane):
    key = ApiKeyFactory()
    post({"api_key": key.raw_key})
    with mock.patch.object(BaseDatabaseWrapper, "cursor", side_effect=AssertionError("no query expected")):
        response = post({"api_key": key.raw_key})
    assert lane.outcomes == [False, True]
    assert response.json()["data"]["usage_count"] == 2


def test_n_fast_validations_add_exactly_n(lane):
    key = ApiKeyFactory(rate_limit_per_minute=1000)
    post({"api_key": key.raw_key})
    for _ in range(25):
        assert post({"api_key": key.raw_key}).json()["success"] is True
    assert lane.outcomes == [False] + [True] * 25
    assert _shown(key) == 26
    usage.flush_pending()
    key.refresh_from_db()
    assert key.usage_count == 26
    # and the API shows it (stored + pending)
    from apikeys.selectors import apikey_get

    shown = apikey_get(api_key_id=key.pk)
    usage.attach_pending([shown])
    assert shown.usage_count_shown == 26


def test_revocation_through_the_api_reaches_the_fast_lane(lane, operator_client):
    key = ApiKeyFactory()
    post({"api_key": key.raw_key})
    assert post({"api_key": key.raw_key}).json()["success"] is True
    response = operator_client.post(f"/api/v2/api-keys/{key.pk}/disable")
    assert response.status_code == 200, response.content
    refused = post({"api_key": key.raw_key}).json()
    assert (refused["success"], refused["error_code"]) == (False, "AUTH_004")
    assert lane.outcomes == [False, True, False]
    assert _shown(key) == 2
    operator_client.post(f"/api/v2/api-keys/{key.pk}/enable")
    assert post({"api_key": key.raw_key}).json()["success"] is True  # cold again: Django, then fast
    assert post({"api_key": key.raw_key}).json()["success"] is True
    assert lane.outcomes[-2:] == [False, True] and _shown(key) == 4


DECLINED = {
    "extra body key": lambda key: ({"api_key": key.raw_key, "extra": 1}, {}),
    "non-bool check_rate_limit": lambda key: ({"api_key": key.raw_key, "check_rate_limit": "yes"}, {}),
    "padded key": lambda key: ({"api_key": f" {key.raw_key} "}, {}),
    "cookie": lambda key: ({"api_key": key.raw_key}, {"Cookie": "django_language=zh-hans"}),
    "origin": lambda key: ({"api_key": key.raw_key}, {"Origin": "http://testserver"}),
    "sec-fetch-site": lambda key: ({"api_key": key.raw_key}, {"Sec-Fetch-Site": "same-origin"}),
}


@pytest.mark.parametrize("case", list(DECLINED))
def test_unusual_requests_go_to_django_and_count_once(lane, case):
    key = ApiKeyFactory()
    post({"api_key": key.raw_key})
    body, headers = DECLINED[case](key)
    response = post(body, headers)
    assert lane.outcomes == [False, False]
    with lane.django_only():
        expected = post(body, headers)
    assert _comparable(response)[:2] == _comparable(expected)[:2]
    shown = _shown(key)
    assert shown == 1 + 2 * response.json()["success"]


@pytest.mark.parametrize("code,setup", [
    ("AUTH_003", lambda key: {"required_permission": "admin"}),
    ("AUTH_008", lambda key: {}),
    ("AUTH_005", lambda key: {"api_key": generate_key(key.tenant_id, key.agent_id)[0]}),
])
def test_negative_verdicts_are_djangos_and_consume_nothing_twice(lane, code, setup):
    key = ApiKeyFactory(permissions=["chat"], rate_limit_per_minute=2)
    post({"api_key": key.raw_key})
    if code == "AUTH_008":
        post({"api_key": key.raw_key})  # the window (2) is now full
    body = {"api_key": key.raw_key, **setup(key)}
    verdict = post(body).json()
    assert (verdict["success"], verdict["error_code"]) == (False, code)
    assert lane.outcomes[-1] is False
    assert _shown(key) == (2 if code == "AUTH_008" else 1)
    window = fastlane.ratelimit.peek(key.pk, 2)
    assert window.count == (2 if code == "AUTH_008" else 1)


def test_wrong_content_type_and_bad_json_are_djangos(lane):
    key = ApiKeyFactory()
    post({"api_key": key.raw_key})
    text = post(None, raw=b'{"api_key": "x"}', content_type="text/plain")
    assert text["status"] == 415
    broken = post(None, raw=b'{"api_key": ')
    assert broken["status"] == 400
    surrogate = post(None, raw=b'{"api_key": "\\ud800"}')
    assert surrogate["status"] == 400
    assert lane.outcomes == [False, False, False, False]


def test_throttle_is_shared_and_taken_once(lane, settings, frozen_clock):
    settings.MAIMCONFIG_AUTH_THROTTLE_RATE = "3/min"
    key = ApiKeyFactory()
    answers = [post({"api_key": key.raw_key}).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert lane.outcomes == [False, True, True, False]
    assert _shown(key) == 3


def test_previous_secret_in_grace_is_served_fast(lane):
    from apikeys.models import ApiKey
    from apikeys.services import apikey_rotate

    key = ApiKeyFactory()
    apikey_rotate(api_key=ApiKey.objects.get(pk=key.pk), grace_seconds=300)
    post({"api_key": key.raw_key})
    answer = post({"api_key": key.raw_key}).json()
    assert lane.outcomes == [False, True]
    assert answer["data"]["using_previous_secret"] is True


def test_redis_failure_declines_and_opens_the_breaker(lane, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    key = ApiKeyFactory()
    post({"api_key": key.raw_key})

    async def failing(*args, **kwargs):
        raise RedisConnectionError("down")

    client = fastlane.loop_client

    class Broken:
        evalsha = staticmethod(failing)

    def broken_client():
        return fastlane._LoopClient(client().redis, failing, Broken())

    monkeypatch.setattr(fastlane, "loop_client", broken_client)
    answer = post({"api_key": key.raw_key}).json()
    assert answer["success"] is True  # Django answered (from the database while the breaker is open)
    assert lane.outcomes == [False, False]
    assert not redisstate.breaker.available()


def test_nothing_registers_without_redis(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with mock.patch.object(lanes, "register_fast_handler") as register:
        assert fastlane.register() is False
    register.assert_not_called()
