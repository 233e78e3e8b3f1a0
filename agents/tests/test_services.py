"""agents.services: the write rules, without HTTP."""

import pytest

from activity.models import AgentActivity
from agents import services
from agents.configdoc import provider_api_key
from agents.models import Agent
from agents.tests.factories import AgentFactory
from core.errors import ErrorCode
from core.exceptions import ApplicationError
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def _code(call):
    with pytest.raises(ApplicationError) as info:
        call()
    return info.value.code


def test_create_writes_agent_config_and_activity(settings):
    settings.MAIMCONFIG_NEW_AGENT_TTL_SECONDS = 60
    tenant = TenantFactory()
    agent = services.agent_create(tenant_id=tenant.pk, name="Bot", tags=["a", "a", "b"],
                                  config={"config_overrides": {"model": {"api_providers": [
                                      {"name": "Mine", "api_key": "sk-1"}]}}})
    assert agent.name_key == "bot" and agent.tags == ["a", "b"] and agent.status == "active"
    assert AgentActivity.objects.get(agent=agent).ttl_seconds == 60
    assert provider_api_key(Agent.objects.get(pk=agent.pk), "MINE") == "sk-1"
    assert agent.created_at == agent.updated_at


def test_create_refusals_write_nothing():
    tenant = TenantFactory()
    services.agent_create(tenant_id=tenant.pk, name="Bot")
    assert _code(lambda: services.agent_create(tenant_id=tenant.pk, name="BOT")) == ErrorCode.AGENT_002
    assert _code(lambda: services.agent_create(tenant_id="tenant_000000000abc", name="x")) == ErrorCode.AGENT_001
    assert _code(lambda: services.agent_create(tenant_id=tenant.pk, name="y", config=[])) == ErrorCode.AGENT_012
    assert _code(lambda: services.agent_create(tenant_id=tenant.pk, name="y", config={
        "config_overrides": {"model": {"api_providers": [{"name": "OpenAI"}]}}})) == ErrorCode.AGENT_011
    inactive = TenantFactory(status="suspended")
    assert _code(lambda: services.agent_create(tenant_id=inactive.pk, name="x")) == ErrorCode.TENANT_008
    assert Agent.objects.count() == 1 and AgentActivity.objects.count() == 1


def test_update_only_bumps_updated_at_on_change():
    agent = AgentFactory(name="a", tags=["x"])
    before = agent.updated_at
    same = services.agent_update(agent=agent, data={"name": "a", "tags": ["x", "x"], "description": None})
    assert same.updated_at == before
    changed = services.agent_update(agent=agent, data={"description": "now"})
    assert changed.updated_at > before


def test_status_transitions_and_activity():
    from activity.services import activity_upsert

    agent = AgentFactory()
    activity_upsert(agent=agent, ttl_seconds=300)
    services.agent_update(agent=agent, data={"status": "archived"})
    assert not AgentActivity.objects.filter(agent=agent).exists()
    services.agent_update(agent=agent, data={"status": "active"})
    assert Agent.objects.get(pk=agent.pk).status == "active"


def test_config_write_merge_replace_and_noop():
    agent = AgentFactory()
    agent = services.agent_config_write(agent=agent, document={"persona": {"interest": "x"}})
    stamp = agent.updated_at
    agent = services.agent_config_write(agent=agent, document={})
    assert agent.updated_at == stamp
    agent = services.agent_config_write(agent=agent, document={"persona": "cat"})
    assert agent.config == {"persona": {"interest": "x", "personality": "cat"}}
    agent = services.agent_config_write(agent=agent, document={"bot_overrides": {}}, mode="replace")
    assert Agent.objects.get(pk=agent.pk).config == {"bot_overrides": {}}


def test_config_error_carries_the_tenant():
    agent = AgentFactory()
    with pytest.raises(ApplicationError) as info:
        services.agent_config_write(agent=agent, document={"persona": 1})
    assert info.value.tenant_id == agent.tenant_id and info.value.code == ErrorCode.AGENT_012


def test_delete_returns_the_ids():
    agent = AgentFactory()
    result = services.agent_delete(agent=agent)
    assert result["id"] == result["agent_id"] == agent.pk and result["deleted_at"]
    assert not Agent.objects.filter(pk=agent.pk).exists()


def test_tenant_delete_cascades():
    agent = AgentFactory()
    from activity.services import activity_upsert
    from tenants.services import tenant_delete

    activity_upsert(agent=agent, ttl_seconds=5)
    tenant_delete(tenant=agent.tenant)
    assert not Agent.objects.exists() and not AgentActivity.objects.exists()


def test_tenant_deactivation_takes_its_agents_offline():
    from activity.services import activity_upsert
    from tenants.services import tenant_update

    agent = AgentFactory()
    activity_upsert(agent=agent, ttl_seconds=5)
    tenant_update(tenant=agent.tenant, data={"status": "inactive"})
    assert not AgentActivity.objects.filter(agent=agent).exists()
