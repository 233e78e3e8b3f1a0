"""POST /api/v2/chat (spec §10.2): the original client's flow, the upstream call, errors, storage."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from chat.models import ChatConversation, ChatMessage
from chat.tests.conftest import key_client, key_for, llm_document, stored
from chat.tests.factories import ChatConversationFactory, store_turn
from apikeys.usage import shown  # stored + pending in Redis (spec §1.15)

# Transactional: these views run outside ATOMIC_REQUESTS, and an error response must not poison a
# surrounding test transaction (DRF marks the open atomic block for rollback on errors).
pytestmark = pytest.mark.django_db(transaction=True)

CHAT = "/api/v2/chat"


def test_original_client_body_with_offline_responder(offline_agent):
    key = key_for(offline_agent)
    response = APIClient().post(CHAT, {"api_key": key.raw_key, "message": "Hello!", "conversation_id": "test_conv_001",
                                       "user_id": "test_user_001"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True and body["tenant_id"] == offline_agent.tenant_id
    data = body["data"]
    assert data["response"] == "[offline] Helper received: Hello!"
    assert data["conversation_id"] == "test_conv_001"
    assert data["agent_id"] == offline_agent.id and data["tenant_id"] == offline_agent.tenant_id
    assert data["user_id"] == "test_user_001"
    assert data["model"] == "maimconfig-offline" and data["responder"] == "offline"
    assert data["finish_reason"] == "stop" and data["latency_ms"] == 0
    assert data["usage"]["estimated"] is True and data["usage"]["completion_tokens"] == 9  # ceil(35/4)
    assert data["message_id"].startswith("msg_") and len(data["message_id"]) == 28
    assert data["created_at"].endswith("Z")
    messages = list(ChatMessage.objects.order_by("created_at"))
    assert [(m.role, m.content) for m in messages] == [("user", "Hello!"), ("assistant", data["response"])]
    assert messages[1].id == data["message_id"] and messages[0].id == data["user_message_id"]
    assert {m.api_key_id for m in messages} == {key.id} and {m.user_id for m in messages} == {"test_user_001"}
    assert shown(key.pk)[0] == 1


def test_bearer_key_and_generated_conversation_id(offline_agent):
    key = key_for(offline_agent)
    response = key_client(key.raw_key).post(CHAT, {"message": "hi"}, format="json")
    data = response.json()["data"]
    assert data["conversation_id"].startswith("conv_") and len(data["conversation_id"]) == 29
    assert ChatConversation.objects.get().conversation_id == data["conversation_id"]


def test_system_prompt_history_and_model_sent_upstream(llm_agent, fake_llm):
    key = key_for(llm_agent)
    conversation = ChatConversationFactory(agent=llm_agent, conversation_id="c1")
    for i in range(3):
        store_turn(conversation, f"question {i}", f"answer {i}")
    response = key_client(key.raw_key).post(CHAT, {"message": "  new question  ", "conversation_id": "c1"},
                                           format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    sent = fake_llm.last
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == "Bearer sk-agent-secret-123"
    assert "openai-organization" not in sent["headers"] and "openai-project" not in sent["headers"]
    body = sent["body"]
    assert body["model"] == "fake-1" and body["temperature"] == 0.4 and body["max_tokens"] == 321
    assert body["stream"] is False
    assert body["messages"][0] == {"role": "system", "content": (
        "You are Mai.\nAlso known as: Maimai, Little Mai.\nPersonality: Cheerful and curious.\n"
        "Interests: Cameras\nReply style: Short sentences.")}
    # max_context_size = 2: the last two turns, oldest first, then the new message exactly as sent.
    assert body["messages"][1:] == [
        {"role": "user", "content": "question 1"}, {"role": "assistant", "content": "answer 1"},
        {"role": "user", "content": "question 2"}, {"role": "assistant", "content": "answer 2"},
        {"role": "user", "content": "  new question  "},
    ]
    assert data["response"] == "Hello from the fake model."
    assert data["model"] == "fake-1" and data["responder"] == "llm"
    assert data["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18, "estimated": False}
    assert data["latency_ms"] >= 0
    reply = ChatMessage.objects.get(pk=data["message_id"])
    assert (reply.prompt_tokens, reply.completion_tokens, reply.total_tokens) == (11, 7, 18)
    assert reply.model == "fake-1" and reply.responder == "llm" and reply.usage_estimated is False
    assert reply.reply_to.content == "  new question  "
    assert b"sk-agent-secret" not in response.content


def test_extra_params_sent_and_usage_estimated_without_upstream_usage(db, fake_llm):
    from agents.tests.factories import AgentFactory

    agent = AgentFactory(config=stored(llm_document(fake_llm.base_url, extra={"top_k": 5, "model": "nope"})))
    fake_llm.usage = None
    fake_llm.finish_reason = "length"
    response = key_client(key_for(agent).raw_key).post(CHAT, {"message": "abcd"}, format="json")
    data = response.json()["data"]
    assert fake_llm.last["body"]["top_k"] == 5 and fake_llm.last["body"]["model"] == "fake-1"
    assert data["usage"]["estimated"] is True and data["usage"]["completion_tokens"] == 7  # ceil(26/4)
    assert data["finish_reason"] == "length"


def test_provider_without_key_sends_no_authorization(db, fake_llm):
    from agents.tests.factories import AgentFactory

    agent = AgentFactory(config=stored(llm_document(fake_llm.base_url, api_key="")))
    key_client(key_for(agent).raw_key).post(CHAT, {"message": "hi"}, format="json")
    assert "authorization" not in fake_llm.last["headers"]


@pytest.mark.parametrize("status", [500, 401, 429])
def test_upstream_error_is_502_and_nothing_stored(llm_agent, fake_llm, status):
    fake_llm.status = status
    key = key_for(llm_agent)
    response = key_client(key.raw_key).post(CHAT, {"message": "hi"}, format="json")
    assert response.status_code == 502
    body = response.json()
    assert body["error_code"] == "CHAT_002" and body["error"] == f"The language model returned HTTP {status}."
    assert "boom" not in response.content.decode()
    assert ChatMessage.objects.count() == 0 and ChatConversation.objects.count() == 0
    assert shown(key.pk)[0] == 1  # a counted use stays counted


def test_unusable_upstream_body_is_502(llm_agent, fake_llm):
    fake_llm.omit_choices = True
    response = key_client(key_for(llm_agent).raw_key).post(CHAT, {"message": "hi"}, format="json")
    assert response.status_code == 502 and response.json()["error_code"] == "CHAT_002"


def test_unreachable_upstream_is_502(db):
    from agents.tests.factories import AgentFactory

    agent = AgentFactory(config=stored(llm_document("http://127.0.0.1:9/v1")))
    response = key_client(key_for(agent).raw_key).post(CHAT, {"message": "hi"}, format="json")
    assert response.status_code == 502 and response.json()["error_code"] == "CHAT_002"
    assert ChatMessage.objects.count() == 0


def test_upstream_timeout_is_504(llm_agent, fake_llm, settings):
    settings.MAIMCONFIG_CHAT_TIMEOUT_SECONDS = 0.3
    fake_llm.delay = 1.0
    response = key_client(key_for(llm_agent).raw_key).post(CHAT, {"message": "hi"}, format="json")
    assert response.status_code == 504
    assert response.json()["error_code"] == "CHAT_003"
    assert ChatMessage.objects.count() == 0


@pytest.mark.parametrize("body,path", [
    ({}, "message"),
    ({"message": ""}, "message"),
    ({"message": "   \n"}, "message"),
    ({"message": "x" * 16001}, "message"),
    ({"message": 5}, "message"),
    ({"message": "hi", "conversation_id": "bad id!"}, "conversation_id"),
    ({"message": "hi", "conversation_id": "x" * 129}, "conversation_id"),
    ({"message": "hi", "user_id": ""}, "user_id"),
    ({"message": "hi", "stream": "yes"}, "stream"),
])
def test_validation_errors(offline_agent, body, path):
    key = key_for(offline_agent)
    response = key_client(key.raw_key).post(CHAT, body, format="json")
    assert response.status_code == 400
    assert path in response.json()["data"]["errors"]
    assert ChatMessage.objects.count() == 0


def test_message_of_16000_characters_is_accepted(offline_agent):
    response = key_client(key_for(offline_agent).raw_key).post(CHAT, {"message": "y" * 16000}, format="json")
    assert response.status_code == 200


def test_operator_and_anonymous_get_401(offline_agent, operator_client, open_mode):
    for client in (operator_client, APIClient()):
        response = client.post(CHAT, {"message": "hi"}, format="json")
        assert response.status_code == 401
        assert response.json()["error_code"] == "NOT_AUTHENTICATED"
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_key_without_chat_permission_is_403(offline_agent):
    key = key_for(offline_agent, permissions=["config"])
    response = key_client(key.raw_key).post(CHAT, {"message": "hi"}, format="json")
    assert response.status_code == 403 and response.json()["error_code"] == "AUTH_003"
    assert shown(key.pk)[0] == 0


def test_inactive_agent_and_tenant_are_403(offline_agent):
    key = key_for(offline_agent)
    offline_agent.status = "inactive"
    offline_agent.save()
    response = key_client(key.raw_key).post(CHAT, {"message": "hi"}, format="json")
    assert response.status_code == 403 and response.json()["error_code"] == "AUTH_007"
    offline_agent.status = "active"
    offline_agent.save()
    offline_agent.tenant.status = "suspended"
    offline_agent.tenant.save()
    response = key_client(key.raw_key).post(CHAT, {"message": "hi"}, format="json")
    assert response.status_code == 403 and response.json()["error_code"] == "AUTH_006"


def test_rate_limit_is_429_and_refusals_do_not_count(offline_agent, frozen_clock):
    key = key_for(offline_agent, rate_limit_per_minute=2)
    client = key_client(key.raw_key)
    assert [client.post(CHAT, {"message": "hi"}, format="json").status_code for _ in range(3)] == [200, 200, 429]
    response = client.post(CHAT, {"message": "hi"}, format="json")
    assert response.json()["error_code"] == "AUTH_008" and int(response["Retry-After"]) >= 1
    assert shown(key.pk)[0] == 2
    cache.clear()


def test_header_and_body_keys_must_agree(offline_agent):
    key = key_for(offline_agent)
    other = key_for(offline_agent)
    response = key_client(key.raw_key).post(CHAT, {"api_key": other.raw_key, "message": "hi"}, format="json")
    assert response.status_code == 400 and "api_key" in response.json()["data"]["errors"]
    assert shown(key.pk)[0] == 0


def test_same_conversation_id_under_another_agent_is_another_conversation(offline_agent):
    from agents.tests.factories import AgentFactory

    other_agent = AgentFactory(tenant=offline_agent.tenant)
    other_conversation = ChatConversationFactory(agent=other_agent, conversation_id="shared")
    store_turn(other_conversation, "secret question", "secret answer")
    key = key_for(offline_agent)
    key_client(key.raw_key).post(CHAT, {"message": "hi", "conversation_id": "shared"}, format="json")
    assert ChatConversation.objects.filter(conversation_id="shared").count() == 2
    mine = ChatConversation.objects.get(agent=offline_agent, conversation_id="shared")
    assert mine.messages.count() == 2 and other_conversation.messages.count() == 2


def test_key_never_reaches_another_agents_history_upstream(llm_agent, fake_llm):
    from agents.tests.factories import AgentFactory

    other_agent = AgentFactory(tenant=llm_agent.tenant)
    store_turn(ChatConversationFactory(agent=other_agent, conversation_id="shared"), "other secret", "other reply")
    key_client(key_for(llm_agent).raw_key).post(CHAT, {"message": "hi", "conversation_id": "shared"},
                                                format="json")
    contents = [m["content"] for m in fake_llm.last["body"]["messages"]]
    assert "other secret" not in contents and len(contents) == 2


def test_deleting_the_agent_cascades(offline_agent):
    key_client(key_for(offline_agent).raw_key).post(CHAT, {"message": "hi"}, format="json")
    offline_agent.delete()
    assert ChatMessage.objects.count() == 0 and ChatConversation.objects.count() == 0


def test_server_default_model_uses_the_server_key(db, fake_llm, settings, tmp_path, monkeypatch):
    from agents.tests.factories import AgentFactory

    path = tmp_path / "models.toml"
    path.write_text(f"""
[[api_providers]]
name = "FakeSystem"
base_url = "{fake_llm.base_url}"
client_type = "openai"

[[models]]
name = "Sys"
model_identifier = "sys-1"
api_provider = "FakeSystem"

[model_task_config.replyer]
model_list = ["Sys"]
""")
    settings.MAIMBOT_MODEL_CONFIG_PATH = str(path)
    monkeypatch.setenv("MAIMCONFIG_PROVIDER_KEY_FAKESYSTEM", "sk-server-secret")
    agent = AgentFactory(config={})
    response = key_client(key_for(agent).raw_key).post(CHAT, {"message": "hi"}, format="json")
    assert response.json()["data"]["model"] == "sys-1"
    assert fake_llm.last["headers"]["authorization"] == "Bearer sk-server-secret"
    assert b"sk-server-secret" not in response.content


def test_provider_key_never_logged_or_returned(llm_agent, fake_llm, caplog):
    fake_llm.status = 500
    fake_llm.error_body = {"error": {"message": "Incorrect API key provided: sk-agent-secret-123"}}
    response = key_client(key_for(llm_agent).raw_key).post(CHAT, {"message": "hi"}, format="json")
    assert response.status_code == 502
    assert any("upstream_body" in vars(record) for record in caplog.records)
    logged = " ".join(str(vars(record)) for record in caplog.records)  # extras (upstream_body) included
    assert "sk-agent-secret" not in logged and b"sk-agent-secret" not in response.content


def test_chat_metrics_are_exported(offline_agent):
    key_client(key_for(offline_agent).raw_key).post(CHAT, {"message": "hi"}, format="json")
    text = APIClient().get("/metrics").content.decode()
    assert 'maimconfig_chat_requests_total{outcome="ok",responder="offline",route="chat"}' in text
    assert offline_agent.id not in text and offline_agent.tenant_id not in text


def test_statement_count_of_a_turn(llm_agent, fake_llm, django_assert_max_num_queries):
    client = key_client(key_for(llm_agent).raw_key)
    client.post(CHAT, {"message": "warm up", "conversation_id": "q"}, format="json")
    # key lookup, usage update, agent, history, conversation, its timestamp, two inserts (+ savepoints)
    with django_assert_max_num_queries(12):
        assert client.post(CHAT, {"message": "hi", "conversation_id": "q"}, format="json").status_code == 200


def test_provider_key_cut_at_the_log_limit_leaks_no_prefix(llm_agent, fake_llm, caplog):
    # The key starts before the 500th character of the upstream body: redaction must come before truncation.
    fake_llm.status = 401
    fake_llm.error_body = {"error": {"message": "x" * 465 + " sk-agent-secret-123 refused"}}
    response = key_client(key_for(llm_agent).raw_key).post(CHAT, {"message": "hi"}, format="json")
    assert response.status_code == 502
    bodies = [record.upstream_body for record in caplog.records if hasattr(record, "upstream_body")]
    assert bodies and all("sk-agent" not in body and len(body) <= 500 for body in bodies)
