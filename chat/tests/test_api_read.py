"""GET /api/v2/chat-agents (§10.5) and conversation history (§10.6)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from activity.models import AgentActivity
from agents.tests.factories import AgentFactory
from chat.tests.conftest import key_client, key_for, llm_document, stored
from chat.tests.factories import ChatConversationFactory, store_turn
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

AGENTS = "/api/v2/chat-agents"


def history_url(conversation_id: str) -> str:
    return f"/api/v2/chat/conversations/{conversation_id}/messages"


def test_operator_lists_active_agents_of_active_tenants(operator_client, fake_llm):
    tenant = TenantFactory()
    offline = AgentFactory(tenant=tenant, config={"bot_overrides": {"nickname": "Mai"}}, tags=["a"])
    llm = AgentFactory(tenant=tenant, config=stored(llm_document(fake_llm.base_url)))
    AgentFactory(tenant=tenant, status="inactive")
    AgentFactory(tenant=TenantFactory(status="suspended"))
    now = timezone.now()
    AgentActivity.objects.create(agent=llm, tenant=tenant, last_seen_at=now, ttl_seconds=60,
                                 expires_at=now + timedelta(seconds=60))
    response = operator_client.get(AGENTS, {"tenant_id": tenant.id})
    assert response.status_code == 200
    body = response.json()
    assert body["tenant_id"] == tenant.id
    items = body["data"]["items"]
    assert [item["id"] for item in items] == [llm.id, offline.id]  # newest first
    assert items[0]["responder"] == "llm" and items[0]["online"] is True and items[0]["last_seen_at"].endswith("Z")
    assert items[1] == {"id": offline.id, "agent_id": offline.id, "tenant_id": tenant.id, "name": offline.name,
                        "description": None, "nickname": "Mai", "tags": ["a"], "online": False,
                        "last_seen_at": None, "responder": "offline"}
    online = operator_client.get(AGENTS, {"tenant_id": tenant.id, "online": "true"}).json()["data"]["items"]
    assert [item["id"] for item in online] == [llm.id]
    unknown = operator_client.get(AGENTS, {"tenant_id": "tenant_ffffffffffff"}).json()
    assert unknown["data"]["items"] == [] and unknown["tenant_id"] is None
    assert operator_client.get(AGENTS, {"online": "maybe"}).status_code == 400


def test_key_sees_only_its_own_agent(offline_agent):
    AgentFactory(tenant=offline_agent.tenant)
    client = key_client(key_for(offline_agent).raw_key)
    body = client.get(AGENTS).json()
    assert [item["id"] for item in body["data"]["items"]] == [offline_agent.id]
    assert body["tenant_id"] == offline_agent.tenant_id
    response = client.get(AGENTS, {"tenant_id": "tenant_ffffffffffff"})
    assert response.status_code == 403 and response.json()["error_code"] == "PERMISSION_DENIED"
    no_chat = key_client(key_for(offline_agent, permissions=["config"]).raw_key)
    assert no_chat.get(AGENTS).status_code == 403


def test_anonymous_needs_open_mode(offline_agent, api_client, settings):
    assert api_client.get(AGENTS).status_code == 401
    settings.MAIMCONFIG_AUTH_MODE = "open"
    assert api_client.get(AGENTS).status_code == 200


def test_history_newest_first_paginated_for_operator(operator_client, offline_agent):
    conversation = ChatConversationFactory(agent=offline_agent, conversation_id="h1")
    base = timezone.now()
    for i in range(3):
        store_turn(conversation, f"q{i}", f"a{i}", at=base + timedelta(seconds=i))
    response = operator_client.get(history_url("h1"), {"agent_id": offline_agent.id, "page_size": 4})
    assert response.status_code == 200
    body = response.json()
    assert body["tenant_id"] == offline_agent.tenant_id
    assert [m["content"] for m in body["data"]["items"]] == ["a2", "q2", "a1", "q1"]
    assert body["data"]["pagination"]["total"] == 6 and body["data"]["pagination"]["has_next"] is True
    first = body["data"]["items"][0]
    assert set(first) == {"id", "conversation_id", "role", "content", "user_id", "model", "responder", "created_at"}
    assert first["conversation_id"] == "h1" and first["role"] == "assistant"


def test_history_errors_for_operator(operator_client, offline_agent):
    assert operator_client.get(history_url("h1")).status_code == 400
    response = operator_client.get(history_url("h1"), {"agent_id": "agent_ffffffffffff"})
    assert response.status_code == 404 and response.json()["error_code"] == "AGENT_004"
    response = operator_client.get(history_url("nope"), {"agent_id": offline_agent.id})
    assert response.status_code == 404 and response.json()["error_code"] == "CHAT_001"
    response = operator_client.get(history_url("bad id!"), {"agent_id": offline_agent.id})
    assert response.status_code == 404 and response.json()["error_code"] == "CHAT_001"


def test_key_reads_only_its_own_agents_conversations(offline_agent):
    other = AgentFactory(tenant=offline_agent.tenant)
    store_turn(ChatConversationFactory(agent=other, conversation_id="theirs"), "secret", "reply")
    store_turn(ChatConversationFactory(agent=offline_agent, conversation_id="mine"), "hello", "hi")
    client = key_client(key_for(offline_agent).raw_key)
    assert client.get(history_url("mine")).json()["data"]["pagination"]["total"] == 2
    response = client.get(history_url("theirs"))
    assert response.status_code == 404 and response.json()["error_code"] == "CHAT_001"
    response = client.get(history_url("theirs"), {"agent_id": other.id})
    assert response.status_code == 403 and response.json()["error_code"] == "PERMISSION_DENIED"
