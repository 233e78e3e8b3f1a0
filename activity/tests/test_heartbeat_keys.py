"""Heartbeats and go-offline with an agent key (spec §7.2, §7.4, §1.13)."""

import pytest
from rest_framework.test import APIClient

from activity.models import AgentActivity
from agents.models import Agent
from agents.tests.factories import AgentFactory
from apikeys.models import ApiKey
from apikeys.tests.helpers import set_fields
from apikeys.usage import shown

URL = "/api/v2/agent-activity"

pytestmark = pytest.mark.django_db(transaction=True)


def key_client(raw):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_key_heartbeat_defaults_to_its_agent(make_key):
    agent = AgentFactory()
    raw = make_key(agent)
    response = key_client(raw).put(URL, {"ttl_seconds": 30}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["tenant_id"] == agent.tenant_id
    assert body["data"]["agent_id"] == agent.id and body["data"]["ttl_seconds"] == 30
    assert AgentActivity.objects.get().agent_id == agent.id
    assert shown(ApiKey.objects.get().pk)[0] == 1  # stored + pending in Redis


def test_key_in_body(make_key, api_client):
    agent = AgentFactory()
    raw = make_key(agent)
    response = api_client.put(URL, {"api_key": raw, "tenant_id": agent.tenant_id, "agent_id": agent.id},
                              format="json")
    assert response.status_code == 200, response.content
    assert AgentActivity.objects.filter(agent_id=agent.id).exists()


def test_key_for_another_agent_is_403(make_key):
    agent = AgentFactory()
    other = AgentFactory(tenant=agent.tenant)
    raw = make_key(agent)
    response = key_client(raw).put(URL, {"agent_id": other.id}, format="json")
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    response = key_client(raw).put(URL, {"tenant_id": "tenant_000000000abc"}, format="json")
    assert response.status_code == 403
    assert not AgentActivity.objects.exists()
    assert shown(ApiKey.objects.get().pk)[0] == 0


def test_key_of_archived_agent_is_refused(make_key):
    agent = AgentFactory()
    raw = make_key(agent)
    set_fields(Agent, agent.pk, status=Agent.Status.ARCHIVED)
    response = key_client(raw).put(URL, {}, format="json")
    assert response.status_code == 403
    assert response.json()["error_code"] == "AUTH_007"
    assert not AgentActivity.objects.exists()


def test_key_heartbeat_statement_count(make_key, django_assert_max_num_queries):
    agent = AgentFactory()
    client = key_client(make_key(agent))
    client.put(URL, {}, format="json")
    # key verification (read) + use count (update) + the one upsert
    with django_assert_max_num_queries(3):
        assert client.put(URL, {}, format="json").status_code == 200


def test_key_go_offline(make_key):
    agent = AgentFactory()
    client = key_client(make_key(agent))
    client.put(URL, {}, format="json")
    response = client.delete(URL)
    assert response.status_code == 200, response.content
    assert response.json()["data"]["was_online"] is True
    assert not AgentActivity.objects.exists()
    other = AgentFactory(tenant=agent.tenant)
    assert client.delete(f"{URL}?agent_id={other.id}").status_code == 403


def test_key_may_not_list(make_key):
    agent = AgentFactory()
    response = key_client(make_key(agent, permissions=["chat", "plugins", "config"])).get(URL)
    assert response.status_code == 403
