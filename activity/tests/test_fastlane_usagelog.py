"""The usage-log fast lane (activity/usagelog_fastlane.py) and its write-behind (activity/writebehind.py),
served through the real ASGI application.

As in test_fastlane_heartbeat.py: a spy on the registered handler tells whether the fast lane answered;
Django's answer to the same request comes from the dispatcher with the handler taken out. Redis-only (the
lane exists only with Redis); run on MariaDB + Redis for the real auto-increment behaviour.
"""

import threading
from unittest import mock

import pytest
from django.db.backends import utils as db_utils
from prometheus_client import REGISTRY

from activity import usagelog_fastlane, writebehind
from activity.models import UsageLog
from activity.serializers import UsageLogOutputSerializer, usage_log_representation
from agents.tests.factories import AgentFactory
from apikeys import redisstate, usage
from apikeys.tests.factories import ApiKeyFactory
from core.testing import asgi_request, spy_on_fast_handler, statements_in_every_thread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_redis_state")]

V1, V2 = usagelog_fastlane.V1_PATH, usagelog_fastlane.V2_PATH


class Lanes:
    def __init__(self, v1, v2):
        self.v1, self.v2 = v1, v2

    @property
    def outcomes(self):
        return self.v1.outcomes + self.v2.outcomes

    def spy(self, path):
        return self.v1 if path == V1 else self.v2


@pytest.fixture
def lane(monkeypatch):
    if not redisstate.enabled():
        pytest.skip("needs CACHE_URL=redis://… (the fast lane exists only with Redis)")
    writebehind.reserve_ids()
    return Lanes(spy_on_fast_handler(monkeypatch, "POST", V1, usagelog_fastlane.usage_log_handler),
                 spy_on_fast_handler(monkeypatch, "POST", V2, usagelog_fastlane.usage_log_handler))


def post(body, key=None, headers=None, path=V1):
    extra = dict(headers or {})
    if key is not None:
        extra["Authorization"] = f"Bearer {key}"
    return asgi_request("POST", path, json_body=body, headers=extra)


def _comparable(response, *, keep_timestamp):
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "x-request-id", "content-length")}
    body = response.json()
    for name in ("timestamp", "request_id", "execution_time"):
        body.pop(name)
    if isinstance(body.get("data"), dict):
        body["data"].pop("id")
        body["data"].pop("created_at")
        if not keep_timestamp:
            body["data"].pop("timestamp")
    return response.status_code, headers, body


def _metrics(path):
    view = {"view": "activity_v1:usage-log" if path == V1 else "activity:usage-log", "method": "POST"}
    return tuple(REGISTRY.get_sample_value(name, labels) or 0.0 for name, labels in (
        ("maimconfig_key_verifications_total", {"outcome": "valid", "route": "request"}),
        ("django_http_responses_total_by_status_view_method_total", {"status": "200", **view}),
        ("django_http_requests_latency_seconds_by_view_method_count", view),
        ("django_http_responses_total_by_status_total", {"status": "200"}),
    ))


def _delta(path, before):
    return tuple(round(a - b) for a, b in zip(_metrics(path), before, strict=True))


def _rows():
    return UsageLog.objects.exclude(action=writebehind.RESERVATION_ACTION).count()


CASES = {
    "ids in the body": lambda key: ({"tenant_id": key.tenant_id, "agent_id": key.agent_id, "action": "chat"}, True, {}),
    "no ids": lambda key: ({"action": "chat"}, True, {}),
    "null ids": lambda key: ({"tenant_id": None, "agent_id": None, "action": "chat"}, True, {}),
    "every field": lambda key: ({"action": "  message_sent ", "user_id": "u-1", "details": {"chars": 42, "n": [1, None]},
                                 "timestamp": "2026-11-24T21:48:01.5+02:00"}, True, {}),
    "key in the body": lambda key: ({"api_key": key.raw_key, "action": "chat"}, False, {}),
    "key in both": lambda key: ({"api_key": key.raw_key, "action": "chat"}, True, {}),
    "unknown field": lambda key: ({"action": "chat", "tokens": 12}, True, {}),
    "request id": lambda key: ({"action": "chat"}, True, {"X-Request-ID": "ul-1"}),
    "chinese": lambda key: ({"action": "chat"}, True, {"Accept-Language": "zh-Hans"}),
}


@pytest.mark.mariadb
@pytest.mark.parametrize("path", [V1, V2], ids=["v1", "v2"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("limited", [False, True], ids=["unlimited", "limited key"])
def test_fast_usage_log_equals_djangos(lane, path, case, limited, frozen_clock):
    key = ApiKeyFactory(permissions=[], rate_limit_per_minute=30 if limited else None)
    body, in_header, headers = CASES[case](key)
    auth = key.raw_key if in_header else None
    assert post(body, auth, headers, path).status_code == 200  # cold key: Django answers and warms the entry
    before = _metrics(path)
    fast = post(body, auth, headers, path)
    fast_metrics = _delta(path, before)
    assert lane.spy(path).outcomes == [False, True]
    with lane.spy(path).django_only():
        before = _metrics(path)
        slow = post(body, auth, headers, path)
        slow_metrics = _delta(path, before)
    if limited:
        assert fast.headers.pop("x-ratelimit-remaining") == "28"
        assert slow.headers.pop("x-ratelimit-remaining") == "27"
    keep = "timestamp" in body
    assert _comparable(fast, keep_timestamp=keep) == _comparable(slow, keep_timestamp=keep)
    assert fast.headers["content-length"] == str(len(fast.content))
    assert fast.headers["x-request-id"] == fast.json()["request_id"]
    if "X-Request-ID" in headers:
        assert fast.json()["request_id"] == "ul-1"
    assert fast_metrics == slow_metrics == (1, 1, 1, 1)
    assert usage.shown(key.pk)[0] == 3
    # The fast answer is what is stored, once the entry is written behind.
    assert writebehind.pending_count() == 1
    writebehind.flush()
    assert writebehind.pending_count() == 0
    data = fast.json()["data"]
    stored = UsageLog.objects.get(pk=data["id"])
    assert UsageLogOutputSerializer(stored).data == data
    assert stored.request_id == fast.json()["request_id"]
    assert _rows() == 3


def test_representation_is_the_serializers(db):
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    key = ApiKeyFactory()
    values = {"id": 7, "tenant_id": key.tenant_id, "agent_id": key.agent_id, "api_key_id": key.pk, "user_id": "u",
              "action": "chat", "details": {"a": [1, None]}, "request_id": "r",
              "timestamp": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
              "created_at": datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)}
    entry = UsageLog(**values)
    assert usage_log_representation(values) == UsageLogOutputSerializer(entry).data
    values.update(user_id=None, details=None, agent_id=None)
    assert usage_log_representation(values) == UsageLogOutputSerializer(UsageLog(**values)).data
    values["timestamp"] = datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)  # strftime pads no year below 1000
    assert usage_log_representation(values) == UsageLogOutputSerializer(UsageLog(**values)).data
    values["timestamp"] = datetime(2026, 1, 2, 5, 4, 5, tzinfo=ZoneInfo("Europe/Berlin"))
    assert usage_log_representation(values) == UsageLogOutputSerializer(UsageLog(**values)).data
    with timezone.override("Asia/Shanghai"):  # another current time zone: DRF's conversion
        assert usage_log_representation(values) == UsageLogOutputSerializer(UsageLog(**values)).data
        assert usage_log_representation(values)["created_at"] == "2026-01-02T11:04:06.000000Z"


def test_an_accepted_entry_makes_no_database_query(lane):
    key = ApiKeyFactory()
    post({"action": "chat"}, key.raw_key)
    with statements_in_every_thread() as seen:
        assert post({"action": "chat", "details": {"n": 1}}, key.raw_key).status_code == 200
    assert lane.outcomes == [False, True]
    assert seen == []


def test_n_accepted_are_n_rows_and_n_uses(lane):
    key = ApiKeyFactory()
    answers = [post({"action": f"a{i}", "user_id": str(i)}, key.raw_key, path=(V1, V2)[i % 2]) for i in range(40)]
    assert all(a.status_code == 200 for a in answers)
    assert lane.outcomes.count(True) == 39
    ids = [a.json()["data"]["id"] for a in answers]
    assert len(set(ids)) == 40
    writebehind.flush()
    stored = {row.pk: row for row in UsageLog.objects.filter(api_key_id=key.pk)}
    assert sorted(stored) == sorted(ids)
    for answer in answers:
        data = answer.json()["data"]
        assert UsageLogOutputSerializer(stored[data["id"]]).data == data
    assert usage.shown(key.pk)[0] == 40


def test_reads_see_pending_entries(lane, operator_client):
    key = ApiKeyFactory()
    post({"action": "first"}, key.raw_key)
    fast = post({"action": "second", "timestamp": "2026-11-24T10:00:00Z"}, key.raw_key)
    assert lane.outcomes == [False, True]
    assert writebehind.pending_count() == 1
    listed = operator_client.get("/api/v2/usage-logs", {"tenant_id": key.tenant_id}).json()["data"]["items"]
    assert fast.json()["data"] in listed and len(listed) == 2
    assert writebehind.pending_count() == 0
    post({"action": "second", "timestamp": "2026-11-24T11:00:00Z"}, key.raw_key)
    summary = operator_client.get("/api/v2/usage-logs/summary", {
        "agent_id": key.agent_id, "since": "2026-11-24T00:00:00Z", "until": "2026-11-25T00:00:00Z"}).json()["data"]
    assert summary["by_action"] == [{"action": "second", "count": 2}]


class _Crash(Exception):
    """A flusher's process dying at a chosen point."""


def _queued(count: int):
    """A key whose first entry Django stored (a cold key) and whose next `count` entries wait in Redis."""
    key = ApiKeyFactory()
    post({"action": "warm"}, key.raw_key)
    for i in range(count):
        post({"action": f"a{i}"}, key.raw_key)
    return key


def test_a_flusher_that_dies_before_its_commit_leaves_the_batch_queued(lane):
    _queued(5)

    real_executemany = db_utils.CursorWrapper.executemany

    def dies_mid_batch(self, sql, rows):
        real_executemany(self, sql, list(rows)[:2])  # part of the batch written, then the process dies
        raise _Crash

    with mock.patch.object(db_utils.CursorWrapper, "executemany", dies_mid_batch), pytest.raises(_Crash):
        writebehind.flush()
    assert _rows() == 1 and writebehind.pending_count() == 5  # rolled back, all still queued
    assert writebehind.flush() == 5
    assert _rows() == 6 and writebehind.pending_count() == 0


def test_a_batch_flushed_again_after_its_commit_is_stored_once(lane, monkeypatch):
    _queued(5)

    def dies_before_the_delete(*args, **kwargs):
        raise _Crash  # committed, then killed before the entries left Redis

    monkeypatch.setattr(writebehind, "_after_commit", dies_before_the_delete)
    with pytest.raises(_Crash):
        writebehind.flush()
    monkeypatch.undo()
    assert _rows() == 6 and writebehind.pending_count() == 5
    assert writebehind.flush() == 5  # another worker's flusher takes the same batch
    assert _rows() == 6 and writebehind.pending_count() == 0


@pytest.mark.mariadb  # SQLite's shared in-memory test database refuses concurrent writers ("table is locked")
def test_concurrent_flushers_store_each_entry_once(lane):
    _queued(30)
    barrier = threading.Barrier(3)
    errors = []

    def run():
        from django.db import connection

        try:
            barrier.wait()
            writebehind.flush(locked=False)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writebehind.flush()
    assert not errors
    assert _rows() == 31 and writebehind.pending_count() == 0


def test_owner_deleted_while_pending_is_the_cascade(lane, operator_client):
    kept, gone = ApiKeyFactory(), ApiKeyFactory()
    for key in (kept, gone):
        post({"action": "warm"}, key.raw_key)
        post({"action": "pending"}, key.raw_key)
    assert lane.outcomes == [False, True, False, True]
    assert writebehind.pending_count() == 2
    assert operator_client.delete(f"/api/v2/agents/{kept.agent_id}").status_code == 200
    assert operator_client.delete(f"/api/v2/tenants/{gone.tenant_id}").status_code == 200
    writebehind.flush()
    assert writebehind.pending_count() == 0
    assert not UsageLog.objects.filter(tenant_id=gone.tenant_id).exists()
    rows = UsageLog.objects.filter(tenant_id=kept.tenant_id)
    assert sorted(r.action for r in rows) == ["pending", "warm"]
    assert all(r.agent_id is None for r in rows)


DECLINED = {
    "operator token": lambda key, token: ({"tenant_id": key.tenant_id, "agent_id": key.agent_id, "action": "x"},
                                          {"Authorization": f"Token {token}"}, 200, 0),
    "no credential": lambda key, token: ({"action": "x"}, {}, 401, 0),
    "another agent": lambda key, token: ({"agent_id": AgentFactory(tenant=key.tenant).pk, "action": "x"},
                                         {"Authorization": f"Bearer {key.raw_key}"}, 403, 0),
    "no action": lambda key, token: ({"user_id": "u"}, {"Authorization": f"Bearer {key.raw_key}"}, 400, 1),
    "bad timestamp": lambda key, token: ({"action": "x", "timestamp": "yesterday"},
                                         {"Authorization": f"Bearer {key.raw_key}"}, 400, 1),
    "details not an object": lambda key, token: ({"action": "x", "details": [1]},
                                                 {"Authorization": f"Bearer {key.raw_key}"}, 400, 1),
    "cookie": lambda key, token: ({"action": "x"}, {"Authorization": f"Bearer {key.raw_key}", "Cookie": "a=b"},
                                  200, 1),
    "keys differ": lambda key, token: ({"api_key": ApiKeyFactory(agent=key.agent).raw_key, "action": "x"},
                                       {"Authorization": f"Bearer {key.raw_key}"}, 400, 0),
}


@pytest.mark.parametrize("case", list(DECLINED))
def test_unusual_requests_go_to_django_and_count_once(lane, operator_token, case):
    key = ApiKeyFactory()
    post({"action": "warm"}, key.raw_key)
    body, headers, status, counted = DECLINED[case](key, operator_token)
    response = post(body, headers=headers)
    assert response.status_code == status, response.content
    assert lane.outcomes == [False, False]
    assert usage.shown(key.pk)[0] == 1 + counted
    assert writebehind.pending_count() == 0
    assert _rows() == 1 + (status == 200)


def test_revoked_key_is_refused_on_the_next_request(lane, operator_client):
    key = ApiKeyFactory()
    post({"action": "warm"}, key.raw_key)
    assert post({"action": "x"}, key.raw_key).status_code == 200
    assert operator_client.post(f"/api/v2/api-keys/{key.pk}/disable").status_code == 200
    refused = post({"action": "x"}, key.raw_key)
    assert refused.status_code == 401 and refused.json()["error_code"] == "AUTH_004"
    assert lane.outcomes == [False, True, False]
    writebehind.flush()
    assert _rows() == 2 and usage.shown(key.pk)[0] == 2


def test_rate_limited_key_is_djangos_429_and_queues_nothing(lane):
    key = ApiKeyFactory(rate_limit_per_minute=2)
    post({"action": "warm"}, key.raw_key)
    assert post({"action": "x"}, key.raw_key).status_code == 200
    refused = post({"action": "x"}, key.raw_key)
    assert refused.status_code == 429 and refused.json()["error_code"] == "AUTH_008"
    assert lane.outcomes == [False, True, False]
    assert writebehind.pending_count() == 1 and usage.shown(key.pk)[0] == 2


def test_no_reserved_id_left_declines_and_django_stores_it(lane):
    from django.core.cache import cache

    key = ApiKeyFactory()
    post({"action": "warm"}, key.raw_key)
    client = redisstate.client()
    client.delete(redisstate.prefix() + "ul:ids", redisstate.prefix() + "ul:blocks")
    answer = post({"action": "x"}, key.raw_key)
    assert answer.status_code == 200 and lane.outcomes == [False, False]
    assert usage.shown(key.pk)[0] == 2 and writebehind.pending_count() == 0
    assert UsageLog.objects.filter(pk=answer.json()["data"]["id"]).exists()
    assert writebehind.reserve_ids() >= 1
    assert post({"action": "y"}, key.raw_key).status_code == 200
    assert lane.outcomes == [False, False, True]
    cache.clear()


@pytest.mark.mariadb
def test_reserved_ids_are_never_taken_by_the_databases_own_inserts(lane):
    from activity.services import usage_log_create

    client = redisstate.client()
    block = client.lindex(redisstate.prefix() + "ul:blocks", 0).decode()
    lo, hi = (int(x) for x in block.split("-"))
    assert hi - lo + 1 == writebehind.ID_BLOCK
    key = ApiKeyFactory()
    for _ in range(3):
        entry = usage_log_create(action="django", tenant_id=key.tenant_id)
        assert not lo <= entry.pk <= hi and entry.pk > hi
    assert _rows() == 3


def test_without_redis_nothing_registers(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert usagelog_fastlane.register() is False


@pytest.mark.parametrize("body", [
    {"action": "chat"}, {"action": "  chat  "}, {"action": "x" * 100}, {"action": " " + "x" * 100 + " "},
    {"action": "x" * 101}, {"action": ""}, {"action": "   "}, {"action": "a\x00b"}, {"action": 5}, {"action": None},
    {}, {"action": "chat", "tenant_id": None, "agent_id": None}, {"action": "chat", "user_id": " u "},
    {"action": "chat", "details": {"a": 1}}, {"action": "chat", "timestamp": "2026-11-24T10:00:00+01:00"},
    {"action": "chat", "timestamp": None, "details": None, "user_id": None},
])
def test_validated_is_the_serializers(body):
    from activity.serializers import UsageLogCreateInputSerializer
    from apikeys import fastlane as lane

    field = UsageLogCreateInputSerializer().fields["action"]
    assert usagelog_fastlane._ACTION_MAX == field.max_length
    serializer = UsageLogCreateInputSerializer(data=body)
    try:
        fast = usagelog_fastlane.validated(body)
    except lane.Declined:
        assert not serializer.is_valid()
    else:
        assert serializer.is_valid() and fast == serializer.validated_data
