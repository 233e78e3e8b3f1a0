"""Admin smoke tests: changelist, search, filters, add and change through the services."""

import json

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from activity.models import AgentActivity
from agents.configdoc import provider_api_key
from agents.models import Agent
from agents.tests.factories import AgentFactory
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def _form(agent=None, **overrides):
    data = {"name": "bot", "description": "", "template_id": "", "status": "active", "tags": "[]", "config": "{}"}
    if agent is None:
        data["tenant"] = TenantFactory().pk
    data.update(overrides)
    return data


def test_changelist_search_and_filters(admin_client):
    AgentFactory(name="Findable One")
    AgentFactory(name="Other", status="archived")
    url = reverse("admin:agents_agent_changelist")
    assert admin_client.get(url).status_code == 200
    response = admin_client.get(url, {"q": "findable"})
    assert response.status_code == 200 and b"Findable One" in response.content and b"Other" not in response.content
    response = admin_client.get(url, {"status__exact": "archived"})
    assert response.status_code == 200 and b"Findable One" not in response.content


def test_add_goes_through_the_service(admin_client):
    tenant = TenantFactory()
    config = {"persona": "A cat.", "config_overrides": {"model": {"api_providers": [{"name": "P", "api_key": "sk-a"}]}}}
    response = admin_client.post(reverse("admin:agents_agent_add"), _form(
        tenant=tenant.pk, name="Admin Bot", tags='["x", "x"]', config=json.dumps(config)))
    assert response.status_code == 302, response.content[:2000]
    agent = Agent.objects.get(name="Admin Bot")
    assert agent.tags == ["x"] and agent.config["persona"] == {"personality": "A cat."}
    assert provider_api_key(agent, "P") == "sk-a" and "sk-a" not in json.dumps(agent.config)
    assert AgentActivity.objects.filter(agent=agent).exists()  # created like the API does


def test_add_with_invalid_config_shows_the_errors(admin_client):
    tenant = TenantFactory()
    response = admin_client.post(reverse("admin:agents_agent_add"), _form(
        tenant=tenant.pk, config=json.dumps({"config_overrides": {"chat": {"max_context_size": 0}}})))
    assert response.status_code == 200
    assert b"config_overrides.chat.max_context_size: Must be an integer between 1 and 200." in response.content
    response = admin_client.post(reverse("admin:agents_agent_add"), _form(
        tenant=tenant.pk, config=json.dumps({"config_overrides": {"model": {"api_providers": [{"name": "OpenAI"}]}}})))
    assert b"system provider" in response.content
    assert not Agent.objects.exists()


def test_duplicate_name_is_refused_on_the_form_with_the_input_kept(admin_client):
    existing = AgentFactory(name="Taken")
    response = admin_client.post(reverse("admin:agents_agent_add"), _form(tenant=existing.tenant_id, name="taken",
                                                                          description="typed by the operator"))
    assert response.status_code == 200
    assert b"already exists" in response.content
    assert b"typed by the operator" in response.content and b'value="taken"' in response.content
    assert Agent.objects.filter(tenant=existing.tenant).count() == 1


def test_change_shows_masked_config_and_keeps_keys(admin_client):
    tenant = TenantFactory()
    admin_client.post(reverse("admin:agents_agent_add"), _form(tenant=tenant.pk, name="Keyed", config=json.dumps(
        {"config_overrides": {"model": {"api_providers": [{"name": "P", "api_key": "sk-keep"}]}}})))
    agent = Agent.objects.get(name="Keyed")
    url = reverse("admin:agents_agent_change", args=[quote(agent.pk)])
    page = admin_client.get(url)
    assert page.status_code == 200 and b"sk-keep" not in page.content and b"********" in page.content
    config = {"config_overrides": {"chat": {"talk_value": 0.4},
                                   "model": {"api_providers": [{"name": "P", "api_key": "********"}]}}}
    response = admin_client.post(url, _form(agent, name="Keyed", status="inactive", config=json.dumps(config)))
    assert response.status_code == 302, response.content[:3000]
    agent.refresh_from_db()
    assert agent.status == "inactive" and agent.config["config_overrides"]["chat"] == {"talk_value": 0.4}
    assert provider_api_key(agent, "P") == "sk-keep"
    assert not AgentActivity.objects.filter(agent=agent).exists()


def test_change_with_invalid_config_changes_nothing(admin_client):
    agent = AgentFactory(name="Stable", config={"persona": {"interest": "x"}})
    url = reverse("admin:agents_agent_change", args=[quote(agent.pk)])
    response = admin_client.post(url, _form(agent, name="Renamed", config=json.dumps({"persona": {"states": 3}})))
    assert response.status_code == 200 and b"persona.states" in response.content
    agent.refresh_from_db()
    assert agent.name == "Stable" and agent.config == {"persona": {"interest": "x"}}


def test_delete_through_the_service(admin_client):
    agent = AgentFactory()
    response = admin_client.post(reverse("admin:agents_agent_delete", args=[quote(agent.pk)]), {"post": "yes"})
    assert response.status_code == 302 and not Agent.objects.filter(pk=agent.pk).exists()
