"""The chat prelude on the event loop (`chat.fastprelude`, issue 10): a warm key's verification, concurrency
slot and use count in one Redis round trip before the first burst, handed to the burst (no second
verification, slot or count there); the same answers, codes and counts as the path it shortcuts, and that
path, unchanged, for everything unusual. Redis-only: skipped on the embedded configuration."""

import asyncio
import time

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from apikeys import authentication, fastlane, redisstate
from apikeys.usage import shown
from chat import express, fastprelude, limits
from chat.tests.conftest import chat_while_the_upstream_holds, key_for, lane_client

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_breaker")]

CHAT = "/api/v2/chat"
COMPLETIONS = "/v1/chat/completions"
HELLO = {"messages": [{"role": "user", "content": "hi"}]}


class Spy:
    """What `fastprelude.take` answered (True: taken on the loop, False: declined), and how often the
    first burst verified a key, took slots and counted a use itself."""

    def __init__(self, monkeypatch):
        self.outcomes: list[bool] = []
        self.verified = self.acquired = 0
        take, verify, acquire = fastprelude.take, authentication.verify_key, limits.acquire

        async def spy_take(request, **kwargs):
            found = await take(request, **kwargs)
            self.outcomes.append(found is not None)
            return found

        def spy_verify(*args, **kwargs):
            self.verified += 1
            return verify(*args, **kwargs)

        def spy_acquire(*args, **kwargs):
            self.acquired += 1
            return acquire(*args, **kwargs)

        monkeypatch.setattr(fastprelude, "take", spy_take)
        monkeypatch.setattr(authentication, "verify_key", spy_verify)
        monkeypatch.setattr(limits, "acquire", spy_acquire)

    def reset(self):
        self.outcomes.clear()
        self.verified = self.acquired = 0


@pytest.fixture
def spy(monkeypatch):
    if not redisstate.enabled():
        pytest.skip("needs CACHE_URL=redis://… (the chat prelude on the loop exists only with Redis)")
    monkeypatch.setattr(express, "enabled", False)  # the chat lane's own path (the express is test_express.py's)
    return Spy(monkeypatch)


def _held(key):
    return limits.held(api_key_id=key.id, tenant_id=key.tenant_id)


def _warm(key):
    """One request through Django: the key's state is cached in Redis from then on."""
    assert lane_client(key.raw_key).post(CHAT, {"message": "warm up"}).status_code == 200


def _comparable(response):
    body = response.json()
    data = dict(body["data"] or {})
    for name in ("message_id", "user_message_id", "created_at", "conversation_id"):
        data.pop(name, None)
    body.pop("timestamp", None)
    body.pop("request_id", None)
    body.pop("execution_time", None)
    body["data"] = data
    headers = {name: value for name, value in response.headers.items()
               if name.startswith("x-ratelimit-") and name != "x-ratelimit-remaining"}
    return response.status_code, body, headers


def test_warm_key_is_taken_on_the_loop_and_the_burst_does_not_redo_it(spy, offline_agent):
    key = key_for(offline_agent, rate_limit_per_minute=50)
    _warm(key)
    spy.reset()
    for surface in ("chat", "v1"):
        if surface == "chat":
            response = lane_client().post(CHAT, {"api_key": key.raw_key, "message": "hello"})
        else:
            response = lane_client(key.raw_key).post(COMPLETIONS, HELLO)
        assert response.status_code == 200, response.content
    assert spy.outcomes == [True, True]
    assert spy.verified == 0 and spy.acquired == 0  # fails without the prelude: each burst did both
    assert shown(key.pk)[0] == 3  # exactly one use per request
    assert _held(key) == (0, 0)


@pytest.mark.parametrize("body", [{"message": "hello"}, {"message": "hello", "stream": True}])
def test_same_answer_as_the_path_it_shortcuts(spy, offline_agent, monkeypatch, body):
    key = key_for(offline_agent, rate_limit_per_minute=50)
    _warm(key)
    answers = []
    for enabled in (False, True):
        monkeypatch.setattr(fastprelude, "enabled", enabled)
        answers.append(lane_client(key.raw_key).post(CHAT, body))
    slow, fast = answers
    assert spy.outcomes[-2:] == [False, True]
    if body.get("stream"):
        assert slow.status_code == fast.status_code == 200
        assert slow.content.count(b"event: ") == fast.content.count(b"event: ")
        assert b"event: done" in fast.content
    else:
        assert _comparable(fast) == _comparable(slow)
        assert int(fast["X-RateLimit-Remaining"]) == int(slow["X-RateLimit-Remaining"]) - 1
    assert shown(key.pk)[0] == 3
    assert _held(key) == (0, 0)


def test_chat_004_before_the_use_is_counted(spy, offline_agent, settings):
    settings.MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_KEY = 1
    key = key_for(offline_agent)
    _warm(key)
    spy.reset()
    taken = limits.acquire(api_key_id=key.id, tenant_id=key.tenant_id, hold_seconds=30)
    try:
        response = lane_client(key.raw_key).post(CHAT, {"message": "two"})
        assert response.status_code == 429 and response.json()["error_code"] == "CHAT_004"
        assert response.json()["data"] == {"scope": "key", "limit": 1, "retry_after": 1}
        assert spy.outcomes == [False]  # busy: Django refused it, the script took nothing
        assert shown(key.pk)[0] == 1
        assert _held(key) == (1, 1)
    finally:
        taken.release()
    settings.MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_KEY = 32
    settings.MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_TENANT = 1
    taken = limits.acquire(api_key_id="key_other", tenant_id=key.tenant_id, hold_seconds=30)
    try:
        response = lane_client(key.raw_key).post(COMPLETIONS, HELLO)
        assert response.status_code == 429 and response.json()["error"]["code"] == "CHAT_004"
        assert shown(key.pk)[0] == 1
    finally:
        taken.release()
    assert _held(key) == (0, 0)


def test_full_window_gives_the_slot_back_and_counts_nothing(spy, offline_agent):
    key = key_for(offline_agent, rate_limit_per_minute=2)
    _warm(key)
    spy.reset()
    assert lane_client(key.raw_key).post(CHAT, {"message": "two"}).status_code == 200
    refused = lane_client(key.raw_key).post(CHAT, {"message": "three"})
    assert refused.status_code == 429 and refused.json()["error_code"] == "AUTH_008"
    assert spy.outcomes == [True, False]
    assert shown(key.pk)[0] == 2
    assert _held(key) == (0, 0)


def test_refusals_are_djangos_and_count_nothing(spy, offline_agent):
    no_chat = key_for(offline_agent, permissions=["config"])
    key = key_for(offline_agent)
    _warm(key)
    assert lane_client(no_chat.raw_key).post(CHAT, {"message": "x"}).status_code == 403
    assert lane_client(no_chat.raw_key).post(CHAT, {"message": "x"}).json()["error_code"] == "AUTH_003"
    spy.reset()
    # The header key and the body key differ: Django's 400, nothing counted.
    mismatch = lane_client(key.raw_key).post(CHAT, {"api_key": no_chat.raw_key, "message": "x"})
    assert mismatch.status_code == 400
    # A body DRF refuses: its 400, before anything is counted.
    raw = b'{"message": NaN}'
    bad = lane_client(key.raw_key).post(CHAT, None, raw_body=raw, headers={
        "Content-Type": "application/json", "Content-Length": str(len(raw))})
    assert bad.status_code == 400
    assert spy.outcomes == [False, False]
    assert shown(key.pk)[0] == 1 and shown(no_chat.pk)[0] == 0
    assert _held(key) == (0, 0)


def test_invalid_body_after_the_prelude_keeps_the_use_and_frees_the_slot(spy, offline_agent):
    key = key_for(offline_agent)
    _warm(key)
    spy.reset()
    response = lane_client(key.raw_key).post(CHAT, {"message": ""})
    assert response.status_code == 400
    assert spy.outcomes == [True]
    assert shown(key.pk)[0] == 2  # as on the path it shortcuts: a 400 after the scope check is counted
    assert _held(key) == (0, 0)


def test_slot_held_while_the_upstream_answers_and_released_after(spy, llm_agent, fake_llm):
    key = key_for(llm_agent)
    _warm(key)
    spy.reset()
    during, response = chat_while_the_upstream_holds(fake_llm, key.raw_key, lambda: _held(key))
    assert during == (1, 1)
    assert response.status_code == 200
    assert spy.outcomes == [True]
    assert _held(key) == (0, 0)


def test_redis_error_declines_and_django_counts_once(spy, offline_agent, monkeypatch):
    key = key_for(offline_agent)
    _warm(key)
    spy.reset()

    async def failing(*args, **kwargs):
        raise RedisConnectionError("gone")

    class Broken:
        evalsha = staticmethod(failing)

    real = fastlane.loop_client

    def broken_client():
        found = real()
        return fastlane._LoopClient(found.redis, found.script, Broken())

    monkeypatch.setattr(fastlane, "loop_client", broken_client)
    response = lane_client(key.raw_key).post(CHAT, {"message": "x"})
    assert response.status_code == 200
    assert spy.outcomes == [False]
    redisstate.breaker.reset()
    assert shown(key.pk)[0] == 2


def test_cancelled_request_gives_its_slot_back(spy, offline_agent, monkeypatch):
    """The client goes away while the script is on its way: the slot it took is released when it answers."""
    from django.test import RequestFactory

    key = key_for(offline_agent)
    _warm(key)
    real = fastlane.run_key_script

    async def late(**kwargs):
        await asyncio.sleep(0.2)
        return await real(**kwargs)

    monkeypatch.setattr(fastlane, "run_key_script", late)
    request = RequestFactory().post(CHAT, {"message": "x"}, content_type="application/json",
                                    HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")

    async def cancelled():
        task = asyncio.ensure_future(fastprelude.take(request, body_key=True))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.5)  # the script answers meanwhile

    asyncio.run(cancelled())
    for _ in range(500):
        if _held(key) == (0, 0):
            break
        time.sleep(0.02)
    assert _held(key) == (0, 0)  # (1, 1) until its deadline without the release
    assert shown(key.pk)[0] == 2  # the use was counted, once


def test_shared_slots_are_released_on_the_loop(spy, llm_agent, fake_llm, monkeypatch):
    """No redis-py release in a database thread: the slot goes back with one command on the loop's
    connection, after the request's last burst, for every surface and for an upstream failure."""
    key = key_for(llm_agent)
    _warm(key)
    in_thread = []
    release = limits.Slots.release
    monkeypatch.setattr(limits.Slots, "release", lambda self: (in_thread.append(self), release(self)))
    assert lane_client(key.raw_key).post(CHAT, {"message": "x"}).status_code == 200
    assert b"event: done" in lane_client(key.raw_key).post(CHAT, {"message": "x", "stream": True}).content
    assert lane_client(key.raw_key).post(COMPLETIONS, {**HELLO, "stream": True}).content.rstrip().endswith(
        b"data: [DONE]")
    fake_llm.status = 500
    assert lane_client(key.raw_key).post(COMPLETIONS, HELLO).status_code == 502
    assert in_thread == []  # fails when the last burst releases them (a redis-py round trip in its thread)
    assert _held(key) == (0, 0)
