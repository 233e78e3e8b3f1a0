"""The chat lane (api.md §10.7, §11.2; issue 10 items 3-6, issue 16 items 1, 2, 6): whole-call deadline
against trickling upstreams, CHAT_004 concurrency limits and their release, no state shared between
upstream calls, the max_tokens cap, usage counters, batch concurrency and the streamed INTERNAL_ERROR."""

import re
import threading
import time

import pytest

from agents.tests.factories import AgentFactory
from apikeys.usage import shown
from chat import limits
from chat.models import ChatMessage
from chat.tests.conftest import key_client, key_for, lane_client, llm_document, stored
from metering.models import UsageCounter
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = "/api/v2/chat"
BATCH = "/api/v2/chat/batch"
COMPLETIONS = "/v1/chat/completions"
HELLO = {"messages": [{"role": "user", "content": "hi"}]}


def sse_events(raw: bytes) -> list[tuple[str, dict | str]]:
    import json

    events = []
    for block in raw.decode().split("\n\n"):
        if not block or block.startswith(":"):
            continue
        lines = block.split("\n")
        if lines[0].startswith("event: "):
            events.append((lines[0][7:], json.loads(lines[1][6:])))
        else:
            data = lines[0][6:]
            events.append(("data", data if data == "[DONE]" else json.loads(data)))
    return events


# --- Whole-call deadline against a trickling upstream (issue 16 item 2) ----------------------------------

@pytest.fixture
def trickling(fake_llm, settings):
    """An upstream that starts answering at once, then sends a little at a time for several seconds (a
    per-read timeout never fires), and a 0.5 s whole-call deadline."""
    settings.MAIMCONFIG_CHAT_TIMEOUT_SECONDS = 0.5
    fake_llm.body_byte_delay = 0.03  # a ~250-byte body takes ~7 s
    fake_llm.reply = " ".join(f"w{i}" for i in range(40))
    fake_llm.chunk_delay = 0.15  # 40 chunks take 6 s
    return fake_llm


def test_trickling_upstream_is_cut_at_the_deadline_non_stream(llm_agent, trickling):
    response = key_client(key_for(llm_agent).raw_key).post(CHAT, {"message": "hello"}, format="json")
    assert response.status_code == 504, response.content
    assert response.json()["error_code"] == "CHAT_003"
    assert ChatMessage.objects.count() == 0


def test_trickling_upstream_is_cut_at_the_deadline_stream(llm_agent, trickling):
    response = lane_client(key_for(llm_agent).raw_key).post(CHAT, {"message": "hello", "stream": True})
    events = sse_events(response.content)
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "error" and "done" not in names
    assert events[-1][1]["error_code"] == "CHAT_003"
    assert ChatMessage.objects.count() == 0


def test_trickling_upstream_is_cut_at_the_deadline_openai(llm_agent, trickling):
    response = key_client(key_for(llm_agent).raw_key).post(COMPLETIONS, HELLO, format="json")
    assert response.status_code == 504 and response.json()["error"]["code"] == "CHAT_003"


def test_trickling_upstream_is_cut_at_the_deadline_openai_stream(llm_agent, trickling):
    response = lane_client(key_for(llm_agent).raw_key).post(COMPLETIONS, {**HELLO, "stream": True})
    assert response.status_code == 200
    events = sse_events(response.content)
    assert ("data", "[DONE]") not in events
    assert events[-1][1]["error"]["code"] == "CHAT_003"


def test_trickling_upstream_is_cut_at_the_deadline_batch_item(llm_agent, trickling):
    response = key_client(key_for(llm_agent).raw_key).post(BATCH, {"requests": [{"message": "a"}]}, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["items"][0]["error_code"] == "CHAT_003"


def test_batch_as_a_whole_is_bounded(llm_agent, fake_llm, settings):
    """Items of one conversation run in order, but the batch stops at 2 x MAIMCONFIG_CHAT_TIMEOUT_SECONDS:
    with a 3 s cap (6 s for the batch) and an upstream taking 2.2 s, two items answer and the rest are cut."""
    client = key_client(key_for(llm_agent).raw_key)
    assert client.post(CHAT, {"message": "warm-up"}, format="json").status_code == 200
    settings.MAIMCONFIG_CHAT_TIMEOUT_SECONDS = 3
    fake_llm.delay = 2.2
    requests = [{"message": f"m{i}", "conversation_id": "one"} for i in range(4)]
    items = client.post(BATCH, {"requests": requests}, format="json").json()["data"]["items"]
    assert [item["success"] for item in items][:2] == [True, True]
    assert [item["error_code"] for item in items][2:] == ["CHAT_003", "CHAT_003"]
    assert items[3]["error"] == "The batch reached its time limit before this item ran."


# --- Concurrency limits (CHAT_004) -----------------------------------------------------------------------

def _in_background(work):
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("response", work()))
    thread.start()
    return thread, result


def _wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def _assert_chat_004(response, scope, limit):
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["error_code"] == "CHAT_004"
    assert body["data"] == {"scope": scope, "limit": limit, "retry_after": 1}
    assert response["Retry-After"] == "1"


def test_chat_004_per_key_before_anything_is_counted(llm_agent, fake_llm, settings):
    settings.MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_KEY = 1
    key = key_for(llm_agent)
    fake_llm.hold = threading.Event()
    thread, first = _in_background(lambda: key_client(key.raw_key).post(CHAT, {"message": "one"}, format="json"))
    try:
        _wait_for(lambda: len(fake_llm.requests) == 1)
        _assert_chat_004(key_client(key.raw_key).post(CHAT, {"message": "two"}, format="json"), "key", 1)
        refused = key_client(key.raw_key).post(COMPLETIONS, HELLO, format="json")
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "CHAT_004"
        assert len(fake_llm.requests) == 1  # nothing sent upstream
    finally:
        fake_llm.hold.set()
        thread.join(30)
    assert first["response"].status_code == 200
    assert shown(key.pk)[0] == 1  # the refused requests counted nothing (stored + pending in Redis, §1.15)
    # The slot was released: the next request runs.
    fake_llm.hold = None
    assert key_client(key.raw_key).post(CHAT, {"message": "three"}, format="json").status_code == 200


def test_chat_004_per_tenant(db, fake_llm, settings):
    settings.MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_TENANT = 1
    tenant = TenantFactory()
    agent_a = AgentFactory(tenant=tenant, config=stored(llm_document(fake_llm.base_url)))
    agent_b = AgentFactory(tenant=tenant, config=stored(llm_document(fake_llm.base_url)))
    other = AgentFactory(config=stored(llm_document(fake_llm.base_url)))
    fake_llm.hold = threading.Event()
    second = None
    thread, first = _in_background(
        lambda: key_client(key_for(agent_a).raw_key).post(CHAT, {"message": "one"}, format="json"))
    try:
        _wait_for(lambda: len(fake_llm.requests) == 1)
        _assert_chat_004(key_client(key_for(agent_b).raw_key).post(CHAT, {"message": "two"}, format="json"),
                         "tenant", 1)
        batch = key_client(key_for(agent_b).raw_key).post(BATCH, {"requests": [{"message": "b"}]}, format="json")
        _assert_chat_004(batch, "tenant", 1)
        # Another tenant is not affected.
        second, other_result = _in_background(
            lambda: key_client(key_for(other).raw_key).post(CHAT, {"message": "x"}, format="json"))
        _wait_for(lambda: len(fake_llm.requests) == 2)
    finally:
        fake_llm.hold.set()
        thread.join(30)
        if second is not None:
            second.join(30)
    assert first["response"].status_code == 200 and other_result["response"].status_code == 200


def _held(key):
    return limits.held(api_key_id=key.id, tenant_id=key.tenant_id)


def test_slots_are_released_after_errors(llm_agent, fake_llm):
    key = key_for(llm_agent)
    fake_llm.status = 500
    assert key_client(key.raw_key).post(CHAT, {"message": "x"}, format="json").status_code == 502
    assert _held(key) == (0, 0)
    assert key_client(key.raw_key).post(CHAT, {"message": ""}, format="json").status_code == 400
    assert key_client(key.raw_key).post(COMPLETIONS, HELLO, format="json").status_code == 502
    events = sse_events(lane_client(key.raw_key).post(CHAT, {"message": "x", "stream": True}).content)
    assert events[-1][1]["error_code"] == "CHAT_002"
    batch = key_client(key.raw_key).post(BATCH, {"requests": [{"message": "a"}, {"message": "b"}]}, format="json")
    assert batch.json()["data"]["failed"] == 2
    assert _held(key) == (0, 0)


def test_slots_are_released_after_a_client_disconnect(llm_agent, fake_llm):
    key = key_for(llm_agent)
    fake_llm.reply = " ".join(f"w{i}" for i in range(40))
    fake_llm.chunk_delay = 0.05
    response = lane_client(key.raw_key).post(CHAT, {"message": "hello", "stream": True}, disconnect_after=3)
    assert b"event: done" not in response.content
    _wait_for(lambda: _held(key) == (0, 0))
    response = lane_client(key.raw_key).post(COMPLETIONS, {**HELLO, "stream": True}, disconnect_after=3)
    assert b"[DONE]" not in response.content
    _wait_for(lambda: _held(key) == (0, 0))


def test_slots_of_a_dead_worker_expire(settings):
    """A slot taken and never released (its worker was killed) stops counting at its expiry."""
    settings.MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_KEY = 1
    slots = limits.acquire(api_key_id="key_dead", tenant_id="tenant_dead", hold_seconds=-limits.EXPIRY_MARGIN_SECONDS)
    if not slots.shared:
        pytest.skip("per-process slots die with their process; expiry applies to Redis slots")
    again = limits.acquire(api_key_id="key_dead", tenant_id="tenant_dead", hold_seconds=5)
    again.release()


# --- Upstream isolation: no cookie jar shared between calls ---------------------------------------------

def test_no_cookie_is_carried_between_tenants(lane_server, fake_llm):
    """Through one server process (one event loop, as a gunicorn worker): tenant A's upstream sets a cookie;
    no later call, of tenant B or of A, sends it back."""
    import httpx2

    agent_a = AgentFactory(config=stored(llm_document(fake_llm.base_url)))
    agent_b = AgentFactory(config=stored(llm_document(fake_llm.base_url)))
    key_a, key_b = key_for(agent_a).raw_key, key_for(agent_b).raw_key
    with httpx2.Client(base_url=lane_server.url, timeout=30) as client:
        def post(key, path, body):
            return client.post(path, json=body, headers={"Authorization": f"Bearer {key}"})

        fake_llm.set_cookie = "session=tenant-a-secret"
        assert post(key_a, CHAT, {"message": "a"}).status_code == 200
        assert "cookie" not in fake_llm.last["headers"]
        fake_llm.set_cookie = None
        for key, path, body in ((key_b, CHAT, {"message": "b"}), (key_b, COMPLETIONS, HELLO),
                                (key_b, CHAT, {"message": "s", "stream": True}), (key_a, CHAT, {"message": "again"})):
            assert post(key, path, body).status_code == 200
            assert "cookie" not in fake_llm.last["headers"], fake_llm.last["headers"]


# --- max_tokens cap (§11.2) ---------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_requested_max_tokens_bounds(llm_agent, fake_llm, settings, field):
    settings.MAIMCONFIG_CHAT_MAX_TOKENS = 2000
    client = key_client(key_for(llm_agent).raw_key)
    for value in (0, 2001):
        response = client.post(COMPLETIONS, {**HELLO, field: value}, format="json")
        assert response.status_code == 400, (value, response.content)
        assert response.json()["error"]["param"] == field
    for value in (1, 2000):
        assert client.post(COMPLETIONS, {**HELLO, field: value}, format="json").status_code == 200
        assert fake_llm.last["body"]["max_tokens"] == value


def test_configured_max_tokens_is_capped(db, fake_llm, settings):
    settings.MAIMCONFIG_CHAT_MAX_TOKENS = 16384
    agent = AgentFactory(config=stored(llm_document(fake_llm.base_url, max_tokens=1_000_000)))
    assert key_client(key_for(agent).raw_key).post(CHAT, {"message": "x"}, format="json").status_code == 200
    assert fake_llm.last["body"]["max_tokens"] == 16384


# --- Usage counters (issue 10 item 6) ------------------------------------------------------------------

def _counter(metric, **filters):
    # Hourly rows (each increment is also added to its day: span "d").
    return sum(UsageCounter.objects.filter(span="h", metric=metric, **filters).values_list("value", flat=True))


def test_usage_counters_for_every_surface(llm_agent, fake_llm):
    key = key_for(llm_agent)
    scope = {"tenant_id": llm_agent.tenant_id, "agent_id": llm_agent.id, "api_key_id": key.id}
    client = key_client(key.raw_key)
    assert client.post(CHAT, {"message": "one"}, format="json").status_code == 200
    assert client.post(BATCH, {"requests": [{"message": "a"}, {"message": "b"}]}, format="json").status_code == 200
    assert client.post(COMPLETIONS, HELLO, format="json").status_code == 200
    lane_client(key.raw_key).post(CHAT, {"message": "s", "stream": True})
    lane_client(key.raw_key).post(COMPLETIONS, {**HELLO, "stream": True})
    assert _counter("chat.requests", dimension="chat", **scope) == 2
    assert _counter("chat.requests", dimension="batch_item", **scope) == 2
    assert _counter("chat.requests", dimension="openai", **scope) == 2
    # The fake reports 11 prompt / 7 completion tokens on non-streamed answers; streams are estimated.
    tokens_in = _counter("chat.tokens_in", dimension="fake-1", **scope)
    tokens_out = _counter("chat.tokens_out", dimension="fake-1", **scope)
    assert tokens_in >= 4 * 11 + 2 and tokens_out >= 4 * 7 + 2
    fake_llm.status = 500
    assert client.post(COMPLETIONS, HELLO, format="json").status_code == 502
    assert client.post(CHAT, {"message": "x"}, format="json").status_code == 502
    assert _counter("chat.upstream_errors", dimension="CHAT_002", **scope) == 2
    assert _counter("chat.requests", **scope) == 6  # failures are not answered requests


def test_usage_counters_exact_token_sums(llm_agent, fake_llm):
    key = key_for(llm_agent)
    for _ in range(3):
        key_client(key.raw_key).post(COMPLETIONS, HELLO, format="json")
    assert _counter("chat.tokens_in", agent_id=llm_agent.id) == 33
    assert _counter("chat.tokens_out", agent_id=llm_agent.id) == 21


def test_offline_replies_call_no_model_and_count_nothing(offline_agent):
    key_client(key_for(offline_agent).raw_key).post(CHAT, {"message": "x"}, format="json")
    assert UsageCounter.objects.filter(metric__startswith="chat.").count() == 0


# --- Batch concurrency (issue 16 item 1) --------------------------------------------------------------

def test_batch_items_run_concurrently(llm_agent, fake_llm, settings):
    """The upstream answers only once 4 requests are open at the same time: a batch that ran its items
    one by one (or fewer than 4 at once) would get 503s, i.e. CHAT_002 items."""
    settings.MAIMCONFIG_CHAT_BATCH_CONCURRENCY = 4
    fake_llm.answer_when_open = 4
    requests = [{"message": f"m{i}"} for i in range(4)]
    response = key_client(key_for(llm_agent).raw_key).post(BATCH, {"requests": requests}, format="json")
    data = response.json()["data"]
    assert data["succeeded"] == 4, data
    assert fake_llm.max_open == 4


def test_batch_concurrency_is_bounded(llm_agent, fake_llm, settings):
    settings.MAIMCONFIG_CHAT_BATCH_CONCURRENCY = 3
    fake_llm.delay = 0.3
    requests = [{"message": f"m{i}"} for i in range(7)]
    response = key_client(key_for(llm_agent).raw_key).post(BATCH, {"requests": requests}, format="json")
    assert response.json()["data"]["succeeded"] == 7
    assert fake_llm.max_open == 3


# --- The streamed INTERNAL_ERROR event, asserted whole (issue 16 item 6) ------------------------------

def _assert_internal_error_event(raw: bytes, tenant_id: str) -> None:
    events = sse_events(raw)
    assert [name for name, _ in events][0] == "start" and events[-1][0] == "error"
    assert "done" not in [name for name, _ in events]
    event = events[-1][1]
    assert list(event) == ["success", "message", "data", "timestamp", "request_id", "tenant_id", "execution_time",
                           "error", "error_code"]
    assert event["success"] is False and event["data"] is None
    assert event["message"] == "Internal server error"
    assert event["error"] == "An unexpected error occurred while handling the request."
    assert event["error_code"] == "INTERNAL_ERROR"
    assert event["request_id"] == "req-internal-1" and event["tenant_id"] == tenant_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["timestamp"])
    assert isinstance(event["execution_time"], float) and event["execution_time"] >= 0
    assert ChatMessage.objects.count() == 0


def _stream_internal(agent):
    return lane_client(key_for(agent).raw_key).post(CHAT, {"message": "hello", "stream": True},
                                                   headers={"X-Request-ID": "req-internal-1"})


def test_internal_error_event_when_reading_the_conversation_fails(llm_agent, fake_llm, monkeypatch):
    from chat import services

    def broken(*args, **kwargs):
        raise RuntimeError("history unreadable")

    monkeypatch.setattr(services, "prompt_messages", broken)
    response = _stream_internal(llm_agent)
    assert response.status_code == 200
    _assert_internal_error_event(response.content, llm_agent.tenant_id)
    assert fake_llm.requests == []


def test_internal_error_event_when_the_upstream_stream_fails_unexpectedly(llm_agent, fake_llm, monkeypatch):
    from chat import upstream

    async def broken(*args, **kwargs):
        raise RuntimeError("client bug")

    monkeypatch.setattr(upstream, "open_stream", broken)
    _assert_internal_error_event(_stream_internal(llm_agent).content, llm_agent.tenant_id)


def test_internal_error_event_when_storing_the_turn_fails(llm_agent, fake_llm, monkeypatch):
    from chat import writes

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(writes, "_store", broken)
    _assert_internal_error_event(_stream_internal(llm_agent).content, llm_agent.tenant_id)
    assert len(fake_llm.requests) == 1


def test_openai_stream_unexpected_failure_ends_with_an_internal_error_event(llm_agent, fake_llm, monkeypatch):
    from chat import upstream

    async def broken(self):
        yield "first "
        raise RuntimeError("parser bug")

    monkeypatch.setattr(upstream.UpstreamStream, "fragments", broken)
    response = lane_client(key_for(llm_agent).raw_key).post(COMPLETIONS, {**HELLO, "stream": True})
    assert response.status_code == 200
    events = sse_events(response.content)
    assert ("data", "[DONE]") not in events
    assert events[-1][1] == {"error": {"message": "An unexpected error occurred while handling the request.",
                                       "type": "server_error", "param": None, "code": "INTERNAL_ERROR"}}
