"""Streaming chat (spec §10.3): event names, framing, storage on completion, errors as events."""

import json

import pytest

from chat.models import ChatMessage
from chat.tests.conftest import key_client, key_for, lane_client

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = "/api/v2/chat"


def parse_events(raw: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in raw.decode().split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: ") and len(lines) == 2, block
        events.append((lines[0][7:], json.loads(lines[1][6:])))
    return events


def stream(client, body):
    response = client.post(CHAT, {**body, "stream": True}, headers={"X-Request-ID": "req-stream-1"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response["Cache-Control"] == "no-cache" and response["X-Accel-Buffering"] == "no"
    assert response["X-Request-ID"] == "req-stream-1"
    return parse_events(response.content)


def test_llm_stream_framing_and_storage(llm_agent, fake_llm):
    fake_llm.reply = "Hi! Good to see you again."
    events = stream(lane_client(key_for(llm_agent).raw_key), {"message": "hello", "conversation_id": "s1",
                                                              "user_id": "u1"})
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done" and set(names[1:-1]) == {"delta"}
    start = events[0][1]
    assert start == {"conversation_id": "s1", "tenant_id": llm_agent.tenant_id, "agent_id": llm_agent.id,
                     "model": "fake-1", "responder": "llm", "request_id": "req-stream-1"}
    assert "".join(data["content"] for name, data in events if name == "delta") == "Hi! Good to see you again."
    done = events[-1][1]
    assert list(done) == ["success", "message", "data", "timestamp", "request_id", "tenant_id", "execution_time",
                          "error", "error_code"]
    assert done["success"] is True and done["request_id"] == "req-stream-1"
    assert done["tenant_id"] == llm_agent.tenant_id and done["error"] is None
    assert done["data"]["response"] == "Hi! Good to see you again."
    assert done["data"]["conversation_id"] == "s1" and done["data"]["user_id"] == "u1"
    assert done["data"]["usage"]["estimated"] is True  # the stream carried no usage
    assert fake_llm.last["body"]["stream"] is True
    stored = ChatMessage.objects.get(pk=done["data"]["message_id"])
    assert stored.content == "Hi! Good to see you again." and stored.reply_to.content == "hello"


def test_stream_usage_from_upstream(llm_agent, fake_llm):
    fake_llm.stream_usage = True
    events = stream(lane_client(key_for(llm_agent).raw_key), {"message": "hello"})
    assert events[-1][1]["data"]["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
                                              "estimated": False}


def test_offline_stream(offline_agent):
    events = stream(lane_client(key_for(offline_agent).raw_key), {"message": "ping"})
    assert [name for name, _ in events] == ["start", "delta", "done"]
    assert events[0][1]["responder"] == "offline" and events[0][1]["model"] == "maimconfig-offline"
    assert events[1][1] == {"content": "[offline] Helper received: ping"}
    assert ChatMessage.objects.count() == 2


def test_upstream_error_is_an_error_event_and_nothing_is_stored(llm_agent, fake_llm):
    fake_llm.status = 500
    events = stream(lane_client(key_for(llm_agent).raw_key), {"message": "hello"})
    assert [name for name, _ in events] == ["start", "error"]
    error = events[1][1]
    assert error["success"] is False and error["data"] is None and error["error_code"] == "CHAT_002"
    assert error["error"] == "The language model returned HTTP 500." and error["message"] == "Upstream model failed"
    assert ChatMessage.objects.count() == 0


def test_upstream_timeout_is_an_error_event(llm_agent, fake_llm, settings):
    settings.MAIMCONFIG_CHAT_TIMEOUT_SECONDS = 0.3
    fake_llm.delay = 1.0
    events = stream(lane_client(key_for(llm_agent).raw_key), {"message": "hello"})
    assert [name for name, _ in events] == ["start", "error"]
    assert events[1][1]["error_code"] == "CHAT_003"
    assert ChatMessage.objects.count() == 0


def test_stream_broken_mid_way_is_an_error_event(llm_agent, fake_llm):
    fake_llm.reply = "one two three four"
    fake_llm.break_after = 3
    events = stream(lane_client(key_for(llm_agent).raw_key), {"message": "hello"})
    assert events[0][0] == "start" and events[-1][0] == "error"
    assert events[-1][1]["error_code"] == "CHAT_002"
    assert ChatMessage.objects.count() == 0


def test_client_disconnect_abandons_upstream_and_stores_nothing(llm_agent, fake_llm):
    fake_llm.reply = " ".join(f"w{i}" for i in range(40))
    fake_llm.chunk_delay = 0.05
    # The client goes away after the response start, `start` and one `delta` (three ASGI messages).
    response = lane_client(key_for(llm_agent).raw_key).post(CHAT, {"message": "hello", "stream": True},
                                                            disconnect_after=3)
    assert response.content.startswith(b"event: start") and b"event: delta" in response.content
    assert b"event: done" not in response.content
    assert fake_llm.disconnected.wait(5), "the upstream connection was not closed"
    assert ChatMessage.objects.count() == 0


def test_errors_before_the_stream_are_plain_json(offline_agent):
    response = key_client(key_for(offline_agent).raw_key).post(CHAT, {"message": "", "stream": True}, format="json")
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json")


def test_keep_alive_comment_while_waiting(llm_agent, fake_llm, monkeypatch):
    from chat import services

    monkeypatch.setattr(services, "KEEPALIVE_SECONDS", 0.05)
    fake_llm.delay = 0.4
    raw = lane_client(key_for(llm_agent).raw_key).post(CHAT, {"message": "hi", "stream": True}).content
    assert b"\n\n: keep-alive\n\n" in raw
    events = parse_events(raw.replace(b": keep-alive\n\n", b""))
    assert [name for name, _ in events][-1] == "done"
