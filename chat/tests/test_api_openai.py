"""The OpenAI-compatible routes (spec §11): shapes, streaming, errors, and the official SDK as client."""

import json

import openai
import pytest
from rest_framework.test import APIClient

from agents.tests.factories import AgentFactory
from chat.models import ChatMessage
from chat.tests.conftest import key_client, key_for, lane_client, llm_document, stored
from apikeys.usage import shown  # stored + pending in Redis (spec §1.15)

pytestmark = pytest.mark.django_db(transaction=True)

COMPLETIONS = "/v1/chat/completions"
MODELS = "/v1/models"


def test_completion_prepends_persona_and_passes_parameters(llm_agent, fake_llm):
    key = key_for(llm_agent)
    messages = [{"role": "system", "content": "client system"}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": None}, {"role": "user", "content": [
                    {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    response = key_client(key.raw_key).post(COMPLETIONS, {
        "model": "whatever", "messages": messages, "temperature": 1.5, "max_tokens": 10,
        "max_completion_tokens": 20, "top_p": 0.5, "stop": ["x"], "user": "u-1", "n": 1}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-") and len(body["id"]) == 33
    assert body["model"] == "fake-1" and body["system_fingerprint"] is None and isinstance(body["created"], int)
    assert body["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Hello from the fake model."},
                                "finish_reason": "stop"}]
    assert body["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    sent = fake_llm.last["body"]
    assert sent["messages"][0]["role"] == "system" and sent["messages"][0]["content"].startswith("You are Mai.")
    assert sent["messages"][1:] == [{"role": "system", "content": "client system"}, {"role": "user", "content": "hi"},
                                    {"role": "assistant", "content": None}, {"role": "user", "content": "a\nb"}]
    assert sent["model"] == "fake-1" and sent["temperature"] == 1.5 and sent["max_tokens"] == 20
    assert sent["top_p"] == 0.5 and sent["stop"] == ["x"] and sent["user"] == "u-1"
    assert ChatMessage.objects.count() == 0  # stateless
    assert shown(key.pk)[0] == 1


def test_offline_completion_uses_last_user_message(offline_agent):
    response = key_client(key_for(offline_agent).raw_key).post(COMPLETIONS, {"messages": [
        {"role": "user", "content": "first"}, {"role": "user", "content": "last one"},
        {"role": "assistant", "content": "x"}]}, format="json")
    body = response.json()
    assert body["model"] == "maimconfig-offline"
    assert body["choices"][0]["message"]["content"] == "[offline] Helper received: last one"


def parse_data(raw: bytes) -> list:
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            assert block.startswith("data: ") and "\n" not in block, block
            payload = block[6:]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def test_stream_chunks_with_usage(llm_agent, fake_llm):
    fake_llm.reply = "one two"
    response = lane_client(key_for(llm_agent).raw_key).post(COMPLETIONS, {
        "messages": [{"role": "user", "content": "hi"}], "stream": True, "stream_options": {"include_usage": True}})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/event-stream")
    events = parse_data(response.content)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert len({(c["id"], c["created"], c["model"]) for c in chunks}) == 1
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:-2]) == "one two"
    assert chunks[-2]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert all(c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


def test_stream_without_usage_option_has_no_usage_key(offline_agent):
    response = lane_client(key_for(offline_agent).raw_key).post(COMPLETIONS, {
        "messages": [{"role": "user", "content": "hi"}], "stream": True})
    events = parse_data(response.content)
    assert events[-1] == "[DONE]" and all("usage" not in c for c in events[:-1])
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


def test_upstream_failure_before_stream_is_an_error_status(llm_agent, fake_llm, settings):
    fake_llm.status = 500
    client = key_client(key_for(llm_agent).raw_key)
    response = client.post(COMPLETIONS, {"messages": [{"role": "user", "content": "hi"}], "stream": True},
                           format="json")
    assert response.status_code == 502
    assert response.json() == {"error": {"message": "The language model returned HTTP 500.", "type": "server_error",
                                         "param": None, "code": "CHAT_002"}}
    fake_llm.status = 200
    fake_llm.delay = 1.0
    settings.MAIMCONFIG_CHAT_TIMEOUT_SECONDS = 0.3
    response = client.post(COMPLETIONS, {"messages": [{"role": "user", "content": "hi"}]}, format="json")
    assert response.status_code == 504 and response.json()["error"]["code"] == "CHAT_003"


def test_failure_mid_stream_ends_with_error_event_without_done(llm_agent, fake_llm):
    fake_llm.reply = "a b c d e"
    fake_llm.break_after = 3
    response = lane_client(key_for(llm_agent).raw_key).post(COMPLETIONS, {
        "messages": [{"role": "user", "content": "hi"}], "stream": True})
    events = parse_data(response.content)
    assert "[DONE]" not in events
    assert events[-1]["error"]["code"] == "CHAT_002"


@pytest.mark.parametrize("body,param", [
    ({}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]}, "tools"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
    ({"messages": [{"role": "user", "content": "hi"}], "logprobs": True}, "logprobs"),
    ({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}, "response_format"),
    ({"messages": [{"role": "user", "content": "hi"}], "tool_choice": "auto"}, "tool_choice"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": None}]}, "messages[0].content"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": 3}, "temperature"),
])
def test_invalid_requests_are_openai_400(offline_agent, body, param):
    response = key_client(key_for(offline_agent).raw_key).post(COMPLETIONS, body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "VALIDATION_ERROR"
    assert error["param"] == param


def test_auth_errors_in_openai_shape(offline_agent, operator_client, frozen_clock):
    response = operator_client.post(COMPLETIONS, {"messages": [{"role": "user", "content": "hi"}]}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.json()["error"]["code"] == "NOT_AUTHENTICATED"
    response = APIClient().get(MODELS, HTTP_AUTHORIZATION="Bearer mmc_!!!")
    assert response.status_code == 401 and response.json()["error"]["code"] == "AUTH_001"
    response = key_client(key_for(offline_agent, permissions=["config"]).raw_key).get(MODELS)
    assert response.status_code == 403 and response.json()["error"]["type"] == "permission_error"
    limited = key_client(key_for(offline_agent, rate_limit_per_minute=1).raw_key)
    assert limited.get(MODELS).status_code == 200
    response = limited.get(MODELS)
    assert response.status_code == 429 and response.json()["error"]["type"] == "rate_limit_error"
    assert response["Retry-After"]
    response = key_client(key_for(offline_agent).raw_key).get("/v1/models/gpt-4o")
    assert response.status_code == 404 and response.json()["error"]["code"] == "NOT_FOUND"


def test_models_lists_usable_candidates(db, fake_llm):
    doc = llm_document(fake_llm.base_url)
    model = doc["config_overrides"]["model"]
    model["models"].append({"name": "second", "model_identifier": "fake-2", "api_provider": "FakeProvider"})
    model["models"].append({"name": "dup", "model_identifier": "fake-1", "api_provider": "FakeProvider"})
    model["models"].append({"name": "broken", "model_identifier": "", "api_provider": "FakeProvider"})
    model["model_task_config"]["replyer"]["model_list"] = ["broken", "fake-model", "second", "dup", "missing"]
    agent = AgentFactory(config=stored(doc))
    response = key_client(key_for(agent).raw_key).get(MODELS)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["fake-1", "fake-2"]
    assert body["data"][0] == {"id": "fake-1", "object": "model", "created": int(agent.updated_at.timestamp()),
                               "owned_by": "maimconfig"}
    assert fake_llm.base_url.encode() not in response.content


def test_models_offline(offline_agent):
    body = key_client(key_for(offline_agent).raw_key).get(MODELS).json()
    assert [m["id"] for m in body["data"]] == ["maimconfig-offline"]


# --- The official SDK against the live server -----------------------------------------------------

@pytest.fixture
def sdk(lane_server, llm_agent):
    client = openai.OpenAI(base_url=f"{lane_server.url}/v1", api_key=key_for(llm_agent).raw_key, max_retries=0)
    yield client
    client.close()  # no keep-alive connection (and server thread) outlives the test


def test_openai_sdk_non_streaming(sdk, fake_llm):
    completion = sdk.chat.completions.create(model="anything", messages=[{"role": "user", "content": "Hello!"}])
    assert completion.choices[0].message.content == "Hello from the fake model."
    assert completion.model == "fake-1" and completion.usage.total_tokens == 18
    assert fake_llm.last["body"]["messages"][0]["content"].startswith("You are Mai.")
    assert [m.id for m in sdk.models.list()] == ["fake-1"]


def test_openai_sdk_streaming(sdk, fake_llm):
    fake_llm.reply = "streamed reply from the fake"
    stream = sdk.chat.completions.create(model="anything", messages=[{"role": "user", "content": "Hi"}], stream=True,
                                         stream_options={"include_usage": True})
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert text == "streamed reply from the fake" and finish == "stop" and usage.total_tokens > 0


def test_openai_sdk_raises_on_upstream_error(sdk, fake_llm):
    fake_llm.status = 500
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model="x", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.status_code == 502


def test_openai_sdk_with_wrong_key(lane_server, offline_agent):
    with openai.OpenAI(base_url=f"{lane_server.url}/v1", api_key="mmc_bm9wZQ==", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
