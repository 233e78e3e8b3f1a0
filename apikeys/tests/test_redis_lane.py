"""Redis as the bot lane's accelerator (spec §1.15, issue 11, issue 15 item 1).

* key-state cache: no query on a warm key; every revocation path reaches a warm entry; the race "read
  before the commit, store after the invalidation" leaves an unusable entry; an outage cannot leave a
  stale entry behind;
* write-behind counting: pending uses are shown, flushed exactly once (crash before/after the commit,
  concurrent or dead flushers, a Redis that lost its data);
* Redis unreachable: the database path answers (never a 500), limits follow
  MAIMCONFIG_RATELIMIT_ON_CACHE_FAILURE, one connection attempt per breaker period, recovery without a
  restart (a private redis-server stopped and started again).

The tests marked `redis` need `CACHE_URL=redis://…` (they skip otherwise); the outage tests point the
cache at a closed port and run everywhere.
"""

import shutil
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.services import agent_delete, agent_update
from apikeys import keycache, redisstate, usage
from apikeys.keys import hash_key
from apikeys.models import ApiKey
from apikeys.services import apikey_delete, apikey_disable, apikey_enable, apikey_rotate, apikey_update
from apikeys.tests.factories import ApiKeyFactory
from metering.models import UsageCounter
from tenants.services import tenant_delete, tenant_update

pytestmark = [pytest.mark.django_db, pytest.mark.urls("apikeys.tests.urls_lane"), pytest.mark.usefixtures("fresh_breaker")]

VALIDATE = "/api/v2/auth/validate-api-key"
CHECK = "/api/v2/auth/check-permission"


def validate(client, raw, **extra):
    response = client.post(VALIDATE, {"api_key": raw, **extra}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_settings(url: str) -> dict:
    return {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url,
                        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5}}}


@pytest.fixture
def redis_lane():
    if not redisstate.enabled():
        pytest.skip("needs CACHE_URL=redis://… (the key-state cache and write-behind exist only with Redis)")
    return redisstate.client()


@pytest.fixture
def redis_down(settings):
    """The cache points at a closed port: every Redis call fails at once (connection refused)."""
    settings.CACHES = _redis_settings(f"redis://127.0.0.1:{_free_port()}/0")
    return settings


def _warm(client, key) -> None:
    assert validate(client, key.raw_key, check_rate_limit=False)["success"] is True
    with CaptureQueriesContext(connection) as ctx:
        assert validate(client, key.raw_key, check_rate_limit=False)["success"] is True
    assert ctx.captured_queries == [], "the second lookup must come from the key-state cache"


# --- key-state cache ------------------------------------------------------------------------------------

def test_warm_validation_and_agent_key_authentication_make_no_query(api_client, redis_lane):
    key = ApiKeyFactory(permissions=["config"], rate_limit_per_minute=100)
    _warm(api_client, key)
    with CaptureQueriesContext(connection) as ctx:
        data = validate(api_client, key.raw_key)["data"]
    assert ctx.captured_queries == [] and data["valid"] is True and data["usage_count"] == 1
    assert data["rate_limit"] == {"limit": 100, "remaining": 99, "reset_seconds": data["rate_limit"]["reset_seconds"]}
    # agent-key authentication of a route: the key is not read from the database either
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    with CaptureQueriesContext(connection) as ctx:
        response = api_client.put("/api/v2/probe/heartbeat", {}, format="json")
    assert response.status_code == 200, response.content
    table = ApiKey._meta.db_table
    assert not [q for q in ctx.captured_queries if table in q["sql"]], ctx.captured_queries
    assert usage.shown(key.pk)[0] == 2


def _expect(code):
    return code


REVOCATIONS = {
    "disable": (lambda key: apikey_disable(api_key=key), "AUTH_004"),
    "delete": (lambda key: apikey_delete(api_key=key), "AUTH_005"),
    "rotate without grace": (lambda key: apikey_rotate(api_key=key, grace_seconds=0), "AUTH_005"),
    "expires_at in the past": (
        lambda key: apikey_update(api_key=key, data={"expires_at": timezone.now() - timedelta(seconds=1)}),
        "AUTH_002"),
    "permission removed": (lambda key: apikey_update(api_key=key, data={"permissions": ["config"]}), "AUTH_003"),
    "tenant suspended": (lambda key: tenant_update(tenant=key.tenant, data={"status": "suspended"}), "AUTH_006"),
    "agent inactive": (lambda key: agent_update(agent=key.agent, data={"status": "inactive"}), "AUTH_007"),
    "agent archived": (lambda key: agent_update(agent=key.agent, data={"status": "archived"}), "AUTH_007"),
    "tenant deleted": (lambda key: tenant_delete(tenant=key.tenant), "AUTH_005"),
    "agent deleted": (lambda key: agent_delete(agent=key.agent), "AUTH_005"),
}


@pytest.mark.parametrize("change", list(REVOCATIONS))
def test_every_revocation_reaches_a_warm_entry(api_client, redis_lane, change):
    key = ApiKeyFactory(permissions=["chat"])
    _warm(api_client, key)
    action, code = REVOCATIONS[change]
    action(ApiKey.objects.select_related("tenant", "agent").get(pk=key.pk))
    body = validate(api_client, key.raw_key, required_permission="chat")
    assert (body["success"], body["error_code"]) == (False, code)


def test_enable_grace_rotation_and_limit_changes_reach_a_warm_entry(api_client, redis_lane, frozen_clock):
    key = ApiKeyFactory()
    apikey_disable(api_key=key)
    assert validate(api_client, key.raw_key)["error_code"] == "AUTH_004"
    _warm_code = validate(api_client, key.raw_key)["error_code"]
    assert _warm_code == "AUTH_004"
    apikey_enable(api_key=ApiKey.objects.get(pk=key.pk))
    assert validate(api_client, key.raw_key)["success"] is True
    # the limit and its change
    _warm(api_client, key)
    apikey_update(api_key=ApiKey.objects.get(pk=key.pk), data={"rate_limit_per_minute": 1})
    assert validate(api_client, key.raw_key)["data"]["rate_limit"]["limit"] == 1
    assert validate(api_client, key.raw_key)["error_code"] == "AUTH_008"
    apikey_update(api_key=ApiKey.objects.get(pk=key.pk), data={"rate_limit_per_minute": None})
    assert validate(api_client, key.raw_key)["success"] is True
    # rotation with grace: the old secret keeps working for the grace period only
    _, new_raw = apikey_rotate(api_key=ApiKey.objects.get(pk=key.pk), grace_seconds=30)
    old = validate(api_client, key.raw_key)
    assert old["success"] is True and old["data"]["using_previous_secret"] is True
    _warm(api_client, key)
    frozen_clock.advance(seconds=31)
    assert validate(api_client, key.raw_key)["error_code"] == "AUTH_005"
    assert validate(api_client, new_raw)["success"] is True


def test_an_entry_read_before_a_revocation_commits_is_never_used(api_client, redis_lane):
    """A verification reads the generations, then the database (the old row); the revocation commits and
    bumps; the verification then stores what it read. That entry must not be used."""
    key = ApiKeyFactory()
    digest = hash_key(key.raw_key)
    probe = keycache.lookup(digest, key.tenant_id)  # generations read BEFORE the database read
    from apikeys.selectors import apikey_find_by_secret

    with mock.patch.object(keycache, "store"):  # this read must not store yet
        stale = apikey_find_by_secret(raw_key=key.raw_key, tenant_id=key.tenant_id, agent_id=key.agent_id)
    apikey_disable(api_key=key)  # commits (test transaction: bumps at once and on commit)
    keycache.store(digest, stale.record, False, probe.generations)  # the late write of the stale state
    body = validate(api_client, key.raw_key)
    assert body["error_code"] == "AUTH_004"


def test_an_outage_cannot_leave_a_stale_entry(api_client, redis_lane, settings):
    """A revocation made while Redis is unreachable cannot bump the tenant's generation; the process bumps
    the global generation before it uses Redis again, so the entry cached before the outage is dead."""
    key = ApiKeyFactory()
    _warm(api_client, key)
    real = settings.CACHES
    settings.CACHES = _redis_settings(f"redis://127.0.0.1:{_free_port()}/0")
    apikey_disable(api_key=key)  # the bump fails: remembered
    assert redisstate.breaker.needs_generation_bump is True
    settings.CACHES = real
    redisstate.breaker.open_until = 0  # the breaker period is over
    body = validate(api_client, key.raw_key)
    assert body["error_code"] == "AUTH_004"
    assert redisstate.breaker.needs_generation_bump is False


# --- write-behind usage counting -----------------------------------------------------------------------

def _stored(key) -> int:
    return ApiKey.objects.get(pk=key.pk).usage_count


def test_uses_are_shown_at_once_and_flushed_exactly_once(api_client, operator_client, redis_lane):
    key = ApiKeyFactory(usage_count=10)
    counts = [validate(api_client, key.raw_key)["data"]["usage_count"] for _ in range(5)]
    assert counts == [11, 12, 13, 14, 15]
    assert _stored(key) == 10  # pending in Redis
    detail = operator_client.get(f"/api/v2/api-keys/{key.pk}").json()["data"]
    listed = operator_client.get("/api/v2/api-keys").json()["data"]["items"]
    assert detail["usage_count"] == 15 and [i["usage_count"] for i in listed] == [15]
    assert detail["last_used_at"] is not None
    assert usage.flush_pending() == 1
    assert _stored(key) == 15 and usage.shown(key.pk)[0] == 15
    row = ApiKey.objects.get(pk=key.pk)
    assert row.last_used_at is not None and row.usage_flushed == 5
    assert usage.flush_pending() == 0 and _stored(key) == 15  # nothing dirty any more
    validate(api_client, key.raw_key)
    assert usage.shown(key.pk)[0] == 16 and _stored(key) == 15
    assert usage.flush_pending() == 1 and _stored(key) == 16


def test_a_batch_applied_twice_counts_once(api_client, redis_lane):
    """A flusher that dies after its commit and before it settles Redis: the next flush applies the same
    totals again, which adds nothing."""
    key = ApiKeyFactory()
    for _ in range(3):
        validate(api_client, key.raw_key)
    client = redis_lane
    p = redisstate.prefix()
    epoch = client.get(p + "use:epoch").decode()
    total = int(client.hget(p + f"use:tot:{epoch}", key.pk))
    usage._apply(epoch, [(key.pk, total, timezone.now())])  # the dead flusher's commit
    assert _stored(key) == 3 and usage.shown(key.pk)[0] == 3
    assert usage.flush_pending() == 1  # the next flusher: same totals, no double count
    assert _stored(key) == 3 and usage.shown(key.pk)[0] == 3


def test_a_dead_flusher_loses_nothing(api_client, redis_lane):
    """A flusher that died holding the lock (before its commit): its keys are still dirty, and once its
    lock expires the next flush moves them."""
    key = ApiKeyFactory()
    validate(api_client, key.raw_key)
    lock = redisstate.prefix() + "use:flushlock"
    redis_lane.set(lock, "dead-flusher", ex=30)
    assert usage.flush_pending() == 0 and _stored(key) == 0
    redis_lane.delete(lock)  # its expiry
    assert usage.flush_pending() == 1 and _stored(key) == 1


def test_uses_during_a_flush_stay_pending(api_client, redis_lane):
    key = ApiKeyFactory()
    validate(api_client, key.raw_key)
    real_apply = usage._apply

    def apply_then_use(epoch, items):
        missing = real_apply(epoch, items)
        validate(api_client, key.raw_key)  # a use between the snapshot and the settle
        return missing

    with mock.patch.object(usage, "_apply", apply_then_use):
        assert usage.flush_pending() == 0  # the key moved meanwhile: it stays dirty
    assert _stored(key) == 1 and usage.shown(key.pk)[0] == 2
    assert usage.flush_pending() == 1 and _stored(key) == 2


def test_pending_uses_of_a_deleted_key_are_dropped(api_client, redis_lane):
    key = ApiKeyFactory()
    validate(api_client, key.raw_key)
    ApiKey.objects.filter(pk=key.pk).delete()
    assert usage.flush_pending() == 1
    p = redisstate.prefix()
    epoch = redis_lane.get(p + "use:epoch").decode()
    assert redis_lane.hget(p + f"use:tot:{epoch}", key.pk) is None
    assert not redis_lane.sismember(p + "use:dirty", key.pk)


def test_a_redis_that_lost_its_data_starts_a_new_epoch(api_client, redis_lane):
    key = ApiKeyFactory()
    for _ in range(2):
        validate(api_client, key.raw_key)
    usage.flush_pending()
    redis_lane.flushdb()  # Redis restarted without persistence
    assert validate(api_client, key.raw_key)["data"]["usage_count"] == 3
    assert usage.flush_pending() == 1
    assert _stored(key) == 3 and usage.shown(key.pk)[0] == 3


def test_key_requests_count_through_redis_and_survive_a_rollback(api_client, redis_lane):
    key = ApiKeyFactory(permissions=["config"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    assert api_client.get(f"/api/v2/probe/config/{key.agent_id}?fail=409").status_code == 409
    assert api_client.get(f"/api/v2/probe/config/{key.agent_id}").status_code == 200
    assert _stored(key) == 0 and usage.shown(key.pk)[0] == 2
    usage.flush_pending()
    assert _stored(key) == 2


def test_a_use_whose_reply_was_lost_is_not_counted_twice(api_client, redis_lane):
    """Redis runs the counting script, then the connection breaks before the reply (Redis stopping): the
    request counts its use in the database; once Redis answers, that use is found in Redis too and taken
    back from the database."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    key = ApiKeyFactory()
    real_script = redisstate.script

    def lose_the_reply(client, source):
        script = real_script(client, source)
        if source != usage._USE:
            return script

        def run_then_fail(*args, **kwargs):
            script(*args, **kwargs)
            raise RedisConnectionError("Connection closed by server.")

        return run_then_fail

    with mock.patch.object(redisstate, "script", lose_the_reply):
        assert validate(api_client, key.raw_key)["success"] is True
    assert _stored(key) == 1  # counted in the database: Redis looked unreachable
    redisstate.breaker.open_until = 0  # the breaker period is over
    body = validate(api_client, key.raw_key)
    assert body["success"] is True and body["data"]["usage_count"] == 2
    assert _stored(key) == 0 and usage.shown(key.pk)[0] == 2  # taken back: it is pending in Redis
    usage.flush_pending()
    assert _stored(key) == 2


# --- the operators' dashboard counters -----------------------------------------------------------------

def test_validations_feed_the_hourly_dashboard_counters(api_client):
    key = ApiKeyFactory(permissions=["chat"])
    for _ in range(3):
        validate(api_client, key.raw_key)
    validate(api_client, key.raw_key, required_permission="config")
    usage.flush_meter()
    rows = {(r.metric, r.dimension): r.value for r in UsageCounter.objects.filter(span="h", api_key_id=key.pk)}
    assert rows == {("validation.accepted", ""): 3, ("validation.refused", "AUTH_003"): 1}
    assert {r.tenant_id for r in UsageCounter.objects.filter(api_key_id=key.pk)} == {key.tenant_id}
    usage.flush_meter()  # nothing left to add
    assert UsageCounter.objects.get(span="h", api_key_id=key.pk, metric="validation.accepted").value == 3


# --- Redis unreachable ---------------------------------------------------------------------------------

def test_validation_is_served_from_the_database_while_redis_is_down(api_client, redis_down, caplog):
    key = ApiKeyFactory(usage_count=4)
    with caplog.at_level("ERROR", logger="maimconfig.redis"):
        for expected in (5, 6, 7):
            body = validate(api_client, key.raw_key)
            assert body["success"] is True and body["data"]["usage_count"] == expected
    assert _stored(key) == 7  # counted in the database directly
    assert len([r for r in caplog.records if r.name == "maimconfig.redis"]) == 1  # logged once
    assert validate(api_client, "mmc_!!!")["error_code"] == "AUTH_001"
    check = api_client.post(CHECK, {"api_key": key.raw_key, "permission": "chat"}, format="json")
    assert check.status_code == 200 and check.json()["success"] is True
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    assert api_client.put("/api/v2/probe/heartbeat", {}, format="json").status_code == 200
    assert _stored(key) == 8


def test_one_connection_attempt_per_breaker_period(api_client, redis_down):
    key = ApiKeyFactory()
    attempts = []
    real_script = redisstate.script

    def counting(client, source):
        attempts.append(source)
        return real_script(client, source)

    before = redisstate.CACHE_FAILURES.labels(operation="key_state")._value.get()
    with mock.patch.object(redisstate, "script", counting):
        for _ in range(20):
            assert validate(api_client, key.raw_key)["success"] is True
    assert len(attempts) == 1  # the first call failed and opened the breaker
    assert redisstate.CACHE_FAILURES.labels(operation="key_state")._value.get() - before == 20


@pytest.mark.parametrize("policy", ["allow", "deny"])
def test_limits_follow_the_policy_while_redis_is_down(api_client, redis_down, policy):
    redis_down.MAIMCONFIG_RATELIMIT_ON_CACHE_FAILURE = policy
    key = ApiKeyFactory(permissions=["config"], rate_limit_per_minute=5)
    free = ApiKeyFactory(permissions=["config"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    route = api_client.get(f"/api/v2/probe/config/{key.agent_id}")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {free.raw_key}")
    unlimited = api_client.get(f"/api/v2/probe/config/{free.agent_id}")
    assert unlimited.status_code == 200  # a key without a limit is limited by neither policy
    stored = _stored(key)
    # (last: an error answer of a view outside the request transaction marks the TEST's transaction for
    # rollback, so no query may follow it here)
    api_client.credentials()
    verdict = api_client.post(VALIDATE, {"api_key": key.raw_key}, format="json")
    if policy == "allow":
        body = verdict.json()
        assert body["success"] is True and body["data"]["rate_limit"] is None
        assert route.status_code == 200 and "X-RateLimit-Limit" not in route
        assert stored == 1
    else:
        # the /auth throttle denies first (429 RATE_LIMITED), the key's limit on its routes (429 AUTH_008)
        assert (verdict.status_code, verdict.json()["error_code"]) == (429, "RATE_LIMITED")
        assert (route.status_code, route.json()["error_code"]) == (429, "AUTH_008")
        assert stored == 0


@pytest.mark.parametrize("policy", ["allow", "deny"])
def test_auth_throttle_follows_the_policy_while_redis_is_down(api_client, redis_down, policy):
    redis_down.MAIMCONFIG_RATELIMIT_ON_CACHE_FAILURE = policy
    response = api_client.post("/api/v2/auth/parse-api-key", {"api_key": "x"}, format="json")
    if policy == "allow":
        assert response.status_code == 200
    else:
        assert (response.status_code, response.json()["error_code"]) == (429, "RATE_LIMITED")
        assert int(response["Retry-After"]) >= 1


# --- recovery with a real, persistent Redis stopped and started again -----------------------------------

@pytest.fixture
def private_redis(tmp_path, settings):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    data = tmp_path / "redis"
    data.mkdir()

    def start():
        proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                                 "--appendonly", "yes", "--save", "", "--daemonize", "no"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return proc
            except OSError:
                time.sleep(0.05)
        proc.kill()
        raise RuntimeError("private redis-server did not start")

    def stop(proc):
        subprocess.run(["redis-cli", "-p", str(port), "shutdown"], capture_output=True, timeout=10)
        proc.wait(timeout=10)

    state = {"proc": start()}
    settings.CACHES = _redis_settings(f"redis://127.0.0.1:{port}/0")

    class Control:
        def down(self):
            stop(state["proc"])

        def up(self):
            state["proc"] = start()

    yield Control()
    if state["proc"].poll() is None:
        stop(state["proc"])


def test_usage_stays_exact_across_a_redis_outage(api_client, private_redis):
    key = ApiKeyFactory()
    for _ in range(3):
        assert validate(api_client, key.raw_key)["success"] is True  # counted in Redis
    assert _stored(key) == 0
    private_redis.down()
    for _ in range(2):
        assert validate(api_client, key.raw_key)["success"] is True  # counted in the database
    assert _stored(key) == 2
    private_redis.up()  # with its append-only file: the 3 pending uses are still there
    redisstate.breaker.open_until = 0  # the breaker period is over
    body = validate(api_client, key.raw_key)
    assert body["success"] is True and body["data"]["usage_count"] == 6
    assert usage.flush_pending() == 1
    assert _stored(key) == 6 and usage.shown(key.pk)[0] == 6
    assert Path  # noqa: B018 - (imported for the fixture's paths)
