"""Spec §16 configuration skeleton: the agent object's `config` always has `persona`, `bot_overrides` and
`config_overrides` objects (create, detail, list, update), while the stored document and the config
routes (§4.7) stay exactly as written."""

import pytest
from rest_framework.test import APIClient

from agents.models import Agent
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

SKELETON = ("persona", "bot_overrides", "config_overrides")


@pytest.fixture
def client(open_mode) -> APIClient:
    return APIClient()


def _assert_skeleton(config: dict) -> None:
    for section in SKELETON:
        assert isinstance(config[section], dict), section


def test_every_agent_response_has_the_skeleton(client):
    tenant = TenantFactory()
    created = client.post("/api/v2/agents", {"tenant_id": tenant.tenant_id, "name": "bare"}, format="json")
    data = created.json()["data"]
    assert data["config"] == {"persona": {}, "bot_overrides": {}, "config_overrides": {}}
    agent_id = data["agent_id"]

    _assert_skeleton(client.get(f"/api/v2/agents/{agent_id}").json()["data"]["config"])
    for item in client.get(f"/api/v2/agents?tenant_id={tenant.tenant_id}").json()["data"]["items"]:
        _assert_skeleton(item["config"])
    updated = client.put(f"/api/v2/agents/{agent_id}", {"description": "x"}, format="json").json()["data"]
    _assert_skeleton(updated["config"])
    # A UI of the original reads nested keys without guarding the section.
    assert updated["config"]["persona"].get("personality") is None

    # Stored document and the §4.7 routes: unchanged, no skeleton.
    assert Agent.objects.get(pk=agent_id).config == {}
    document = client.get(f"/api/v2/agents/{agent_id}/config").json()["data"]
    assert not set(SKELETON) & set(document)


def test_existing_sections_are_kept_and_missing_ones_filled(client):
    tenant = TenantFactory()
    config = {"persona": "A patient helper.", "config_overrides": {"chat": {"max_context_size": 20}}}
    data = client.post("/api/v2/agents", {"tenant_id": tenant.tenant_id, "name": "a", "config": config},
                       format="json").json()["data"]
    assert data["config"]["persona"] == {"personality": "A patient helper."}
    assert data["config"]["config_overrides"] == {"chat": {"max_context_size": 20}}
    assert data["config"]["bot_overrides"] == {}
    assert "bot_overrides" not in Agent.objects.get(pk=data["agent_id"]).config


def test_config_reset_to_null_still_answers_the_skeleton(client):
    tenant = TenantFactory()
    agent_id = client.post("/api/v2/agents", {"tenant_id": tenant.tenant_id, "name": "a",
                                              "config": {"bot_overrides": {"nickname": "n"}}},
                           format="json").json()["data"]["agent_id"]
    data = client.patch(f"/api/v2/agents/{agent_id}", {"config": None}, format="json").json()["data"]
    assert data["config"] == {"persona": {}, "bot_overrides": {}, "config_overrides": {}}
