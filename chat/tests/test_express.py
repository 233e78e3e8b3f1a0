"""The chat express (`chat.express`, issue 10): with Redis, the common chat request (`POST /api/v2/chat`, plain
and streamed, and `POST /v1/chat/completions`) answered on the event loop without Django, with the same
answer, headers, counts and codes as the chat lane; everything unusual declined to the chat lane having
consumed nothing; the agent read once per generation (`chat.agentcache.stamped_agent`, `chat.signals`).
Redis-only: skipped on the embedded configuration."""

import json
import re
import threading
import time

import pytest

from agents import services as agent_services
from agents.models import Agent
from agents.tests.factories import AgentFactory
from apikeys import redisstate
from apikeys.usage import shown
from chat import express, fastprelude, limits
from chat.models import ChatMessage
from chat.tests.conftest import chat_while_the_upstream_holds, key_for, lane_client, llm_document, stored
from core import generations
from core.testing import statements_in_every_thread
from metering.models import UsageCounter

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_breaker")]

CHAT = "/api/v2/chat"
COMPLETIONS = "/v1/chat/completions"
HELLO = {"messages": [{"role": "user", "content": "hi"}]}

SURFACES = {
    "chat": (CHAT, {"message": "hello"}),
    "chat-sse": (CHAT, {"message": "hello", "stream": True}),
    "v1": (COMPLETIONS, HELLO),
    "v1-stream": (COMPLETIONS, {**HELLO, "stream": True}),
}


class Spy:
    """What the express answered per request that reached it (True: answered, False: declined), and how
    many requests the chat lane's views ran (`chat.views._first_burst` calls `fastprelude.take` first)."""

    def __init__(self, monkeypatch):
        from core import lanes

        self.outcomes: list[bool] = []
        self.lane = 0
        registered = {path: handler for path, handler in lanes._chat_express.items()}
        assert {path for _, path in registered} >= {CHAT, COMPLETIONS}
        assert all(handler is express.handle for handler in registered.values())

        async def spy_handle(scope, body, receive, send):
            answered = await express.handle(scope, body, receive, send)
            self.outcomes.append(answered)
            return answered

        for path in registered:
            monkeypatch.setitem(lanes._chat_express, path, spy_handle)
        take = fastprelude.take

        async def spy_take(request, **kwargs):
            self.lane += 1
            return await take(request, **kwargs)

        monkeypatch.setattr(fastprelude, "take", spy_take)

    def reset(self):
        self.outcomes.clear()
        self.lane = 0


@pytest.fixture
def spy(monkeypatch):
    if not redisstate.enabled():
        pytest.skip("needs CACHE_URL=redis://… (the chat express exists only with Redis)")
    monkeypatch.setattr(express, "enabled", True)
    return Spy(monkeypatch)


# --- helpers -------------------------------------------------------------------------------------------------

def _held(key):
    return limits.held(api_key_id=key.id, tenant_id=key.tenant_id)


def _uses(key) -> int:
    return shown(key.pk)[0]


def _warm(key, spy, *, same_minute: bool = False):
    """One request through the chat lane: the key's state is cached in Redis from then on (a cold key is
    declined by the express: `miss`). `same_minute`: the requests that follow stay in its per-minute window."""
    if same_minute:
        _away_from_a_minute_edge()
    assert lane_client(key.raw_key).post(CHAT, {"message": "warm up"}).status_code == 200
    assert spy.outcomes == [False] and spy.lane == 1
    spy.reset()


def _away_from_a_minute_edge():
    """The per-minute window moves on at each wall-clock minute: compared requests stay within one."""
    second = time.time() % 60
    if second > 50:
        time.sleep(60.5 - second)


_VOLATILE = frozenset({"request_id", "timestamp", "execution_time", "latency_ms", "created_at", "conversation_id",
                       "message_id", "user_message_id", "id", "created"})


def _normal(value):
    if isinstance(value, dict):
        return {name: "*" if name in _VOLATILE else _normal(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_normal(item) for item in value]
    return value


def _body(response):
    """The body with ids and times blanked: the JSON document, or the stream's (event, data) in order."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        events = []
        for block in response.content.decode().split("\n\n"):
            if not block.strip():
                continue
            event, data = None, None
            for line in block.split("\n"):
                if line.startswith("event: "):
                    event = line[len("event: "):]
                elif line.startswith("data: "):
                    raw = line[len("data: "):]
                    data = raw if raw == "[DONE]" else _normal(json.loads(raw))
                else:
                    data = line
            events.append((event, data))
        return events
    return _normal(json.loads(response.content))


_PER_REQUEST_HEADERS = frozenset({"x-request-id", "date", "x-ratelimit-remaining", "x-ratelimit-reset"})


def _headers(response):
    """Header names in order, and the values of those that do not change per request."""
    names = list(response.headers)
    return names, {name: value for name, value in response.headers.items() if name not in _PER_REQUEST_HEADERS}


def _both_ways(monkeypatch, spy, key, path, body, headers=None):
    """The same request answered by the chat lane (express off), then with the express on."""
    answers = []
    for enabled in (False, True):
        monkeypatch.setattr(express, "enabled", enabled)
        answers.append(lane_client(key.raw_key).post(path, body, headers=headers))
    return answers


def _assert_same_answer(lane, fast, *, rate_limit_headers: bool = True):
    assert fast.status_code == lane.status_code
    assert _body(fast) == _body(lane)
    if rate_limit_headers:
        assert _headers(fast) == _headers(lane)
    else:  # compared on their own (test_upstream_failure_keeps_the_rate_limit_headers)
        assert _without_rate_limit(_headers(fast)) == _without_rate_limit(_headers(lane))


def _without_rate_limit(headers):
    names, values = headers
    return ([name for name in names if not name.startswith("x-ratelimit-")],
            {name: value for name, value in values.items() if not name.startswith("x-ratelimit-")})


_TABLE = re.compile(r"^\s*SELECT\b.*?\bFROM\s+[`\"]?(\w+)", re.S | re.I)


def _agent_reads(statements) -> int:
    return sum(1 for sql in statements if (m := _TABLE.match(sql)) and m.group(1) == "agents_agent")


def _counter(metric: str, key) -> int:
    return sum(UsageCounter.objects.filter(metric=metric, span="h", api_key_id=key.id).values_list("value", flat=True))


def _identifier_asked(fake_llm) -> str:
    return fake_llm.last["body"]["model"]


# --- the express answers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("surface", list(SURFACES))
def test_each_surface_is_answered_by_the_express(spy, llm_agent, fake_llm, surface):
    path, body = SURFACES[surface]
    key = key_for(llm_agent)
    _warm(key, spy)
    asked = len(fake_llm.requests)
    response = lane_client(key.raw_key).post(path, body)
    assert response.status_code == 200, response.content
    assert spy.outcomes == [True]
    assert spy.lane == 0  # the chat lane's view never ran
    assert len(fake_llm.requests) == asked + 1
    assert fake_llm.last["body"]["messages"][-1] == {"role": "user", "content": body.get("message", "hi")}
    content = response.content
    if surface == "chat":
        assert response.json()["data"]["response"] == "Hello from the fake model."
    elif surface == "chat-sse":
        assert content.startswith(b"event: start\n") and b"event: done\n" in content
    elif surface == "v1":
        assert response.json()["choices"][0]["message"]["content"] == "Hello from the fake model."
    else:
        assert content.rstrip().endswith(b"data: [DONE]") and b'"content":"model."' in content
    assert _uses(key) == 2  # exactly one use for this request
    assert _held(key) == (0, 0)
    if surface.startswith("chat"):
        assert ChatMessage.objects.filter(agent_id=llm_agent.pk, content=body["message"]).count() == 1
    assert _counter("chat.requests", key) == 2  # the warm-up and this one (both reached the model)


@pytest.mark.parametrize("surface", list(SURFACES))
def test_same_answer_as_the_chat_lane(spy, llm_agent, fake_llm, monkeypatch, surface):
    path, body = SURFACES[surface]
    key = key_for(llm_agent, rate_limit_per_minute=50)
    _warm(key, spy, same_minute=True)
    lane, fast = _both_ways(monkeypatch, spy, key, path, body)
    assert spy.outcomes == [False, True] and spy.lane == 1
    assert lane.status_code == 200
    _assert_same_answer(lane, fast)
    assert fast["x-ratelimit-limit"] == "50"
    assert int(fast["x-ratelimit-remaining"]) == int(lane["x-ratelimit-remaining"]) - 1 == 47
    assert abs(int(fast["x-ratelimit-reset"]) - int(lane["x-ratelimit-reset"])) <= 1
    assert fast["x-request-id"] != lane["x-request-id"]
    assert _uses(key) == 3
    assert _held(key) == (0, 0)


@pytest.mark.parametrize("surface", list(SURFACES))
def test_same_answer_for_an_agent_without_a_model(spy, offline_agent, monkeypatch, surface):
    """An agent whose configuration names no usable model: the offline reply, the same both ways, and no
    usage counter (no model was called)."""
    path, body = SURFACES[surface]
    key = key_for(offline_agent)
    _warm(key, spy)
    lane, fast = _both_ways(monkeypatch, spy, key, path, body)
    assert spy.outcomes == [False, True] and spy.lane == 1
    assert lane.status_code == 200
    _assert_same_answer(lane, fast)
    if surface == "chat":
        assert fast.json()["data"]["responder"] == "offline"
    assert _uses(key) == 3
    assert _held(key) == (0, 0)
    assert _counter("chat.requests", key) == 0


def test_rate_limited_key_headers_both_ways_and_its_full_window(spy, llm_agent, fake_llm, monkeypatch):
    key = key_for(llm_agent, rate_limit_per_minute=3)
    unlimited = key_for(llm_agent)
    _warm(key, spy, same_minute=True)
    _warm(unlimited, spy)
    lane, fast = _both_ways(monkeypatch, spy, key, CHAT, {"message": "hello"})
    assert spy.outcomes == [False, True]
    assert [lane[name] for name in ("x-ratelimit-limit", "x-ratelimit-remaining")] == ["3", "1"]
    assert [fast[name] for name in ("x-ratelimit-limit", "x-ratelimit-remaining")] == ["3", "0"]
    assert 0 < int(fast["x-ratelimit-reset"]) <= 60
    # The window is full: the express declines ("limited"), the chat lane answers AUTH_008, nothing counted.
    spy.reset()
    refused = lane_client(key.raw_key).post(CHAT, {"message": "one too many"})
    assert refused.status_code == 429 and refused.json()["error_code"] == "AUTH_008"
    assert spy.outcomes == [False] and spy.lane == 1
    assert _uses(key) == 3
    assert _held(key) == (0, 0)
    # A key without a limit: no X-RateLimit-* either way.
    spy.reset()
    lane, fast = _both_ways(monkeypatch, spy, unlimited, COMPLETIONS, HELLO)
    assert spy.outcomes == [False, True]
    _assert_same_answer(lane, fast)
    assert not [name for name in fast.headers if name.startswith("x-ratelimit-")]


def test_body_key_user_id_and_language_same_answer_and_one_history(spy, llm_agent, fake_llm, monkeypatch):
    """The key in the body, a user id, a given conversation and Accept-Language: the same answer both ways,
    and the express reads the turn the chat lane stored in that conversation."""
    key = key_for(llm_agent)
    _warm(key, spy)
    body = {"api_key": key.raw_key, "message": "hello", "user_id": "u-7", "conversation_id": "conv_body_key"}
    answers = []
    for enabled in (False, True):
        monkeypatch.setattr(express, "enabled", enabled)
        answers.append(lane_client().post(CHAT, body, headers={"Accept-Language": "zh-hans"}))
    assert spy.outcomes == [False, True] and spy.lane == 1
    lane, fast = answers
    assert lane.status_code == 200
    _assert_same_answer(lane, fast)
    assert fast.json()["data"]["user_id"] == "u-7"
    assert fast.json()["data"]["conversation_id"] == "conv_body_key"
    assert [(m["role"], m["content"]) for m in fake_llm.last["body"]["messages"][1:]] == [
        ("user", "hello"), ("assistant", "Hello from the fake model."), ("user", "hello")]
    assert _uses(key) == 3


# --- declined: the chat lane answers, nothing consumed by the express --------------------------------------------

DECLINED = {
    "unknown-key": (CHAT, {"message": "hello", "platform": "qq"}, 200, 1),
    "non-string-message": (CHAT, {"message": 5}, 400, 1),
    "malformed-conversation-id": (CHAT, {"message": "x", "conversation_id": "bad id!"}, 400, 1),
    "padded-conversation-id": (CHAT, {"message": "x", "conversation_id": " conv_1"}, None, 1),
    "v1-temperature": (COMPLETIONS, {**HELLO, "temperature": 0.2}, 200, 1),
    "v1-name": (COMPLETIONS, {"messages": [{"role": "user", "content": "hi", "name": "bob"}]}, 200, 1),
    "v1-body-key": (COMPLETIONS, {**HELLO, "api_key": "mmc_x"}, None, None),
}


@pytest.mark.parametrize("case", list(DECLINED))
def test_declined_requests_are_the_chat_lanes_and_counted_once(spy, llm_agent, fake_llm, monkeypatch, case):
    path, body, status, uses = DECLINED[case]
    key = key_for(llm_agent)
    _warm(key, spy)
    deltas = []
    answers = []
    for enabled in (False, True):
        monkeypatch.setattr(express, "enabled", enabled)
        spy.reset()
        before = _uses(key)
        answers.append(lane_client(key.raw_key).post(path, body))
        deltas.append(_uses(key) - before)
        assert spy.outcomes == [False] and spy.lane == 1  # the chat lane's view answered it
        assert _held(key) == (0, 0)
    lane, fast = answers
    if status is not None:
        assert lane.status_code == status, lane.content
    if uses is not None:
        assert deltas[0] == uses
    assert deltas[1] == deltas[0]  # the express consumed nothing: only what the chat lane counts
    _assert_same_answer(lane, fast)
    if case == "v1-temperature":
        assert fake_llm.last["body"]["temperature"] == 0.2


def test_no_key_and_operator_tokens_are_the_chat_lanes(spy, llm_agent, operator_token, monkeypatch):
    key = key_for(llm_agent)
    _warm(key, spy)
    for headers in (None, {"Authorization": f"Token {operator_token}"}):
        answers = []
        for enabled in (False, True):
            monkeypatch.setattr(express, "enabled", enabled)
            spy.reset()
            answers.append(lane_client().post(CHAT, {"message": "hello"}, headers=headers))
            assert spy.outcomes == [False] and spy.lane == 1
        lane, fast = answers
        assert lane.status_code == 401 and lane.json()["error_code"] == "NOT_AUTHENTICATED", lane.content
        _assert_same_answer(lane, fast)
    assert _uses(key) == 1
    assert _held(key) == (0, 0)


# --- the agent: read once per generation ----------------------------------------------------------------------

def test_agent_is_read_once_then_from_memory_until_it_changes(spy, llm_agent, fake_llm):
    key = key_for(llm_agent)
    _warm(key, spy)
    client = lane_client(key.raw_key)

    def reads_of(path, body):
        with statements_in_every_thread() as seen:
            response = client.post(path, body)
        assert response.status_code == 200, response.content
        return _agent_reads(seen)

    assert [reads_of(CHAT, {"message": f"m{i}"}) for i in range(2)] + [reads_of(COMPLETIONS, HELLO)] == [1, 0, 0]
    assert _identifier_asked(fake_llm) == "fake-1"
    # A write through the model layer (post_save: chat.signals bumps the generation): used at once.
    agent = Agent.objects.get(pk=llm_agent.pk)
    agent.config = stored(llm_document(fake_llm.base_url, identifier="fake-2"))
    agent.save(update_fields=["config"])
    assert reads_of(CHAT, {"message": "after save"}) == 1
    assert _identifier_asked(fake_llm) == "fake-2"
    assert reads_of(COMPLETIONS, HELLO) == 0
    assert _identifier_asked(fake_llm) == "fake-2"
    # A write through the agents service.
    agent_services.agent_config_write(agent=agent, document=llm_document(fake_llm.base_url, identifier="fake-3"),
                                      mode="replace")
    assert reads_of(COMPLETIONS, {**HELLO, "stream": True}) == 1
    assert _identifier_asked(fake_llm) == "fake-3"
    assert reads_of(CHAT, {"message": "again", "stream": True}) == 0
    assert _identifier_asked(fake_llm) == "fake-3"
    assert spy.outcomes == [True] * 7 and spy.lane == 0


def test_agent_status_change_through_the_service_is_refused_at_once(spy, llm_agent, fake_llm, monkeypatch):
    key = key_for(llm_agent)
    _warm(key, spy)
    assert lane_client(key.raw_key).post(CHAT, {"message": "cached"}).status_code == 200
    assert spy.outcomes == [True]
    agent_services.agent_update(agent=Agent.objects.get(pk=llm_agent.pk), data={"status": "inactive"})
    spy.reset()
    asked = len(fake_llm.requests)
    lane, fast = _both_ways(monkeypatch, spy, key, CHAT, {"message": "too late"})
    assert lane.status_code == 403 and lane.json()["error_code"] == "AUTH_007"
    _assert_same_answer(lane, fast)
    assert len(fake_llm.requests) == asked
    assert _uses(key) == 2
    assert _held(key) == (0, 0)


def _generation(agent_id: str):
    return redisstate.client().get(redisstate.prefix() + generations.agent(agent_id))


def test_reencrypting_provider_keys_bumps_the_agents_generation(spy, fake_llm, settings):
    from cryptography.fernet import Fernet

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MAIMCONFIG_SECRETS_KEY = old_key
    agent = AgentFactory(name="Helper", config=stored(llm_document(fake_llm.base_url)))
    key = key_for(agent)
    _warm(key, spy)
    client = lane_client(key.raw_key)
    with statements_in_every_thread() as seen:
        assert client.post(COMPLETIONS, HELLO).status_code == 200
        assert client.post(COMPLETIONS, HELLO).status_code == 200
    assert _agent_reads(seen) == 1
    before = _generation(agent.pk)
    assert before is not None  # created by the express's round trip
    settings.MAIMCONFIG_SECRETS_KEY, settings.MAIMCONFIG_SECRETS_KEY_FALLBACKS = new_key, [old_key]
    assert agent_services.agent_reencrypt_provider_keys(agent_id=agent.pk) == (1, [])
    assert _generation(agent.pk) != before
    # The old key retired: the row read before the re-encryption would no longer decrypt its provider key.
    settings.MAIMCONFIG_SECRETS_KEY_FALLBACKS = []
    with statements_in_every_thread() as seen:
        response = client.post(COMPLETIONS, HELLO)
    assert response.status_code == 200, response.content
    assert _agent_reads(seen) == 1
    assert fake_llm.last["headers"]["authorization"] == "Bearer sk-agent-secret-123"
    assert spy.outcomes == [True] * 3 and spy.lane == 0


# --- a conversation through the express -------------------------------------------------------------------

def test_a_conversation_keeps_its_history_through_the_express(spy, llm_agent, fake_llm):
    key = key_for(llm_agent)
    _warm(key, spy)
    client = lane_client(key.raw_key)
    conversation = "conv_express_history"
    fake_llm.reply = "First answer."
    first = client.post(CHAT, {"message": "first question", "conversation_id": conversation, "user_id": "u1"})
    assert first.status_code == 200
    assert first.json()["data"]["conversation_id"] == conversation
    assert first.json()["data"]["user_id"] == "u1"
    assert [m["role"] for m in fake_llm.last["body"]["messages"]] == ["system", "user"]
    fake_llm.reply = "Second answer."
    second = client.post(CHAT, {"message": "second question", "conversation_id": conversation, "stream": True})
    assert second.status_code == 200 and b"event: done" in second.content
    assert [(m["role"], m["content"]) for m in fake_llm.last["body"]["messages"][1:]] == [
        ("user", "first question"), ("assistant", "First answer."), ("user", "second question")]
    fake_llm.reply = "Third answer."
    third = client.post(CHAT, {"message": "third question", "conversation_id": conversation})
    assert third.status_code == 200
    assert [(m["role"], m["content"]) for m in fake_llm.last["body"]["messages"][1:]] == [
        ("user", "first question"), ("assistant", "First answer."),
        ("user", "second question"), ("assistant", "Second answer."), ("user", "third question")]
    assert spy.outcomes == [True, True, True] and spy.lane == 0
    assert ChatMessage.objects.filter(conversation__conversation_id=conversation).count() == 6


# --- failures ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("surface", list(SURFACES))
def test_upstream_failure_is_answered_as_the_chat_lane_does_and_frees_the_slot(spy, llm_agent, fake_llm,
                                                                              monkeypatch, surface):
    path, body = SURFACES[surface]
    key = key_for(llm_agent, rate_limit_per_minute=50)
    _warm(key, spy, same_minute=True)
    fake_llm.status = 500
    lane, fast = _both_ways(monkeypatch, spy, key, path, body)
    assert spy.outcomes == [False, True] and spy.lane == 1
    if surface == "chat-sse":
        assert lane.status_code == 200
        assert [event for event, _ in _body(lane)] == ["start", "error"]
        assert _body(lane)[-1][1]["error_code"] == "CHAT_002"
    elif surface == "chat":
        assert lane.status_code == 502 and lane.json()["error_code"] == "CHAT_002"
    else:
        assert lane.status_code == 502 and lane.json()["error"]["code"] == "CHAT_002"
    _assert_same_answer(lane, fast, rate_limit_headers=False)
    assert _uses(key) == 3
    assert _held(key) == (0, 0)
    assert _counter("chat.upstream_errors", key) == 2


@pytest.mark.parametrize("surface", ["chat", "v1", "v1-stream"])
def test_upstream_failure_keeps_the_rate_limit_headers(spy, llm_agent, fake_llm, monkeypatch, surface):
    path, body = SURFACES[surface]
    key = key_for(llm_agent, rate_limit_per_minute=50)
    _warm(key, spy, same_minute=True)
    fake_llm.status = 500
    lane, fast = _both_ways(monkeypatch, spy, key, path, body)
    assert spy.outcomes == [False, True]
    assert lane.status_code == fast.status_code == 502
    assert lane["x-ratelimit-limit"] == "50"
    assert [name for name in fast.headers if name.startswith("x-ratelimit-")] == [
        "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"]
    assert fast["x-ratelimit-limit"] == "50"
    assert int(fast["x-ratelimit-remaining"]) == int(lane["x-ratelimit-remaining"]) - 1


def test_chat_004_is_declined_to_the_chat_lane_and_counts_nothing(spy, llm_agent, fake_llm, settings):
    key = key_for(llm_agent)
    _warm(key, spy)
    asked = len(fake_llm.requests)
    settings.MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_KEY = 0
    response = lane_client(key.raw_key).post(CHAT, {"message": "no room"})
    assert response.status_code == 429 and response.json()["error_code"] == "CHAT_004"
    assert response.json()["data"]["scope"] == "key" and response.json()["data"]["limit"] == 0
    assert spy.outcomes == [False] and spy.lane == 1
    assert _uses(key) == 1
    assert _held(key) == (0, 0)
    # A slot held by another request of the key: the same, on /v1.
    settings.MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_KEY = 1
    spy.reset()
    taken = limits.acquire(api_key_id=key.id, tenant_id=key.tenant_id, hold_seconds=30)
    try:
        response = lane_client(key.raw_key).post(COMPLETIONS, HELLO)
        assert response.status_code == 429 and response.json()["error"]["code"] == "CHAT_004"
        assert spy.outcomes == [False] and spy.lane == 1
        assert _uses(key) == 1
        assert _held(key) == (1, 1)
    finally:
        taken.release()
    assert _held(key) == (0, 0)
    assert len(fake_llm.requests) == asked


def _leaving_after(seconds: float):
    """The service's ASGI application for a client that goes away `seconds` after sending its request."""
    import asyncio

    from core.testing import _shared_app

    real = _shared_app()

    async def app(scope, receive, send):
        first = True

        async def leaving():
            nonlocal first
            if first:
                first = False
                return await receive()
            await asyncio.sleep(seconds)
            return {"type": "http.disconnect"}

        await real(scope, leaving, send)

    return app


def _wait_for(condition, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_client_leaving_while_the_upstream_thinks_frees_the_slot(spy, llm_agent, fake_llm):
    from core.testing import asgi_request

    key = key_for(llm_agent)
    _warm(key, spy)
    fake_llm.hold = threading.Event()
    try:
        response = asgi_request("POST", CHAT, json_body={"message": "gone"}, app=_leaving_after(0.3),
                                headers={"Authorization": f"Bearer {key.raw_key}"})
    finally:
        fake_llm.hold.set()
    assert response.status_code == 0 and response.content == b""  # nothing sent to a client that left
    assert spy.outcomes == [True] and spy.lane == 0
    assert _wait_for(lambda: _held(key) == (0, 0)), _held(key)
    assert _uses(key) == 2
    assert not ChatMessage.objects.filter(content="gone").exists()


def test_a_client_leaving_a_stream_frees_the_slot_and_stores_nothing(spy, llm_agent, fake_llm):
    from core.testing import asgi_request

    key = key_for(llm_agent)
    _warm(key, spy)
    fake_llm.chunk_delay = 0.2
    response = asgi_request("POST", CHAT, json_body={"message": "bye", "stream": True}, disconnect_after=2,
                            headers={"Authorization": f"Bearer {key.raw_key}"})
    assert response.status_code == 200
    assert response.content.startswith(b"event: start\n")
    assert b"event: done" not in response.content
    assert spy.outcomes == [True]
    assert _wait_for(lambda: _held(key) == (0, 0)), _held(key)
    assert not ChatMessage.objects.filter(content="bye").exists()
    assert _uses(key) == 2


def test_slot_is_held_while_the_upstream_answers_then_freed(spy, llm_agent, fake_llm):
    key = key_for(llm_agent)
    _warm(key, spy)
    during, response = chat_while_the_upstream_holds(fake_llm, key.raw_key, lambda: _held(key))
    assert during == (1, 1)
    assert response.status_code == 200
    assert spy.outcomes == [True]
    assert _held(key) == (0, 0)


# --- Odd bodies: a clear 4xx or an answer, never a 5xx, on either path ----------------------------------------

_ODD_VALUES = [None, True, False, 0, -1, 1.5, 1e308, "", " ", "x", "\u4f60\u597d", "a" * 17000, [], {}, [1],
               {"a": 1}, "conv_1", "bad id!", [{"role": "user", "content": "hi"}], [{"role": "tool", "content": "x"}],
               [{"role": "user", "content": None}], [{"role": "user"}],
               [{"role": "user", "content": [{"type": "text", "text": "a"}]}]]
_ODD_KEYS = ["message", "conversation_id", "user_id", "stream", "api_key", "model", "messages", "temperature",
             "max_tokens", "n"]


def test_odd_bodies_never_answer_5xx(spy, llm_agent, fake_llm):
    import random

    client = lane_client(key_for(llm_agent).raw_key)
    rng = random.Random(7)
    statuses = set()
    for _ in range(120):
        body = {k: rng.choice(_ODD_VALUES) for k in rng.sample(_ODD_KEYS, rng.randint(0, 5))}
        if rng.random() < 0.5:
            body.setdefault("message", "hello")
            body.setdefault("messages", [{"role": "user", "content": "hi"}])
        path = rng.choice([CHAT, COMPLETIONS])
        response = client.post(path, body)
        statuses.add(response.status_code)
        assert response.status_code < 500, (path, body, response.status_code, response.content[:300])
    assert 200 in statuses and 400 in statuses  # both the answered and the refused kinds were exercised
