"""Admin of configuration versions: an agent's list, comparing two versions, a confirmed rollback through
the service; a config edit in the agent admin makes a version."""

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from agents import configdoc, services
from agents.models import AgentConfigVersion
from audit.models import AuditEvent
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent():
    agent = services.agent_create(tenant_id=TenantFactory().pk, name="helper", config={
        "persona": "Terse.", "config_overrides": {"model": {"api_providers": [
            {"name": "Mine", "base_url": "https://llm.example/v1", "api_key": "sk-first"}]}}})
    services.agent_config_write(agent=agent, document={"persona": "Chatty."})
    agent.refresh_from_db()
    return agent


def test_version_list_and_detail_mask_keys(admin_client, agent):
    changelist = reverse("admin:agents_agentconfigversion_changelist")
    response = admin_client.get(changelist, {"agent__id__exact": agent.pk})
    assert response.status_code == 200 and response.context["cl"].result_count == 2
    first = AgentConfigVersion.objects.get(agent=agent, number=1)
    html = admin_client.get(reverse("admin:agents_agentconfigversion_change", args=[quote(first.pk)])).content.decode()
    assert "sk-first" not in html and "gAAAA" not in html and "********" in html
    assert "Roll back to this version" in html


def test_compare_two_versions_side_by_side(admin_client, agent):
    url = reverse("admin:agents_agentconfigversion_compare", args=[agent.pk])
    response = admin_client.get(url, {"a": "1", "b": "2"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "persona.personality" in html and "Terse." in html and "Chatty." in html and "sk-first" not in html
    assert admin_client.get(url, {"a": "9"}).status_code == 404


def test_rollback_is_confirmed_then_goes_through_the_service(admin_client, admin_user, agent):
    first = AgentConfigVersion.objects.get(agent=agent, number=1)
    url = reverse("admin:agents_agentconfigversion_rollback", args=[first.pk])
    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and "Yes, roll back" in confirm.content.decode()
    agent.refresh_from_db()
    assert agent.config_version == 2  # nothing happens before the POST
    assert admin_client.post(url).status_code == 302
    agent.refresh_from_db()
    assert agent.config_version == 3 and agent.config["persona"] == {"personality": "Terse."}
    assert configdoc.provider_api_key(agent, "Mine") == "sk-first"
    event = AuditEvent.objects.filter(action="agent.config.rollback").get()
    assert event.actor == f"operator:{admin_user.username}"


def test_refused_rollback_shows_the_error_and_changes_nothing(admin_client, agent, settings, tmp_path):
    from catalogue import selectors as catalogue

    path = tmp_path / "models.toml"
    path.write_text('[[api_providers]]\nname = "mine"\nbase_url = "https://x.example/v1"\n')
    settings.MAIMBOT_MODEL_CONFIG_PATH = str(path)
    catalogue.clear_cache()
    first = AgentConfigVersion.objects.get(agent=agent, number=1)
    response = admin_client.post(reverse("admin:agents_agentconfigversion_rollback", args=[first.pk]), follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert any("Nothing was changed." in m for m in messages), messages
    agent.refresh_from_db()
    assert agent.config_version == 2


def test_config_edit_in_the_agent_admin_makes_a_version(admin_client, agent):
    response = admin_client.post(reverse("admin:agents_agent_change", args=[quote(agent.pk)]), {
        "name": agent.name, "description": "", "template_id": "", "status": "active", "tags": "[]",
        "config": '{"persona": "Edited in the admin."}'})
    assert response.status_code == 302, response.content[:3000]
    agent.refresh_from_db()
    assert agent.config_version == 3
    assert AgentConfigVersion.objects.get(agent=agent, number=3).changes["persona.personality"] == [
        "Chatty.", "Edited in the admin."]


def test_agent_change_page_links_to_its_versions(admin_client, agent):
    html = admin_client.get(reverse("admin:agents_agent_change", args=[quote(agent.pk)])).content.decode()
    assert f"?agent__id__exact={agent.pk}" in html
    assert reverse("admin:agents_agentconfigversion_compare", args=[agent.pk]) in html
