"""Spec §5.1, §5.2 and §8 as the original's clients see them: `api_key` is always a string (the masked
hint outside create/rotate, never the secret), permissions may contain spaces and any letters, and
plugin names such as `天气插件` or `weather plugin` are accepted and kept exact."""

import pytest
from pydantic import BaseModel, ConfigDict
from rest_framework.test import APIClient

from agents.tests.factories import AgentFactory
from apikeys.models import ApiKey
from plugins.models import PluginSetting
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


class OriginalApiKeyItem(BaseModel):
    """The response model of a web backend written against the original: `api_key` is a required str."""

    model_config = ConfigDict(strict=True, extra="ignore")

    api_key_id: str
    tenant_id: str
    agent_id: str
    name: str
    description: str | None
    api_key: str
    permissions: list[str]
    status: str


class OriginalPluginSetting(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    plugin_name: str
    enabled: bool
    config: dict


@pytest.fixture
def client(open_mode) -> APIClient:
    return APIClient()


def _create_key(client, agent, **extra):
    body = {"tenant_id": agent.tenant_id, "agent_id": agent.agent_id, "name": "生产环境密钥", **extra}
    response = client.post("/api/v2/api-keys", body, format="json")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def test_key_list_parses_with_a_strict_model_and_never_shows_the_secret(client):
    agent = AgentFactory()
    created = _create_key(client, agent, permissions=["chat", "config_read"])
    secret = created["api_key"]
    assert secret.startswith("mmc_") and created["key_hint"] != secret

    items = client.get(f"/api/v2/api-keys?tenant_id={agent.tenant_id}").json()["data"]["items"]
    parsed = [OriginalApiKeyItem.model_validate(item) for item in items]
    assert [item.api_key for item in parsed] == [created["key_hint"]]
    detail = OriginalApiKeyItem.model_validate(
        client.get(f"/api/v2/api-keys/{created['api_key_id']}").json()["data"])
    assert detail.api_key == created["key_hint"]
    for path in (f"/api/v2/api-keys/{created['api_key_id']}/disable", f"/api/v2/api-keys/{created['api_key_id']}/enable"):
        assert client.post(path, {}, format="json").json()["data"]["api_key"] == created["key_hint"]
    updated = client.put(f"/api/v2/api-keys/{created['api_key_id']}", {"description": "x"}, format="json")
    assert updated.json()["data"]["api_key"] == created["key_hint"]
    everything = str(items) + str(detail) + updated.content.decode()
    assert secret not in everything and secret[4:] not in everything


def test_rotate_shows_the_new_secret_once(client):
    agent = AgentFactory()
    created = _create_key(client, agent)
    rotated = client.post(f"/api/v2/api-keys/{created['api_key_id']}/rotate", {}, format="json").json()["data"]
    assert rotated["api_key"].startswith("mmc_") and rotated["api_key"] != created["api_key"]
    detail = client.get(f"/api/v2/api-keys/{created['api_key_id']}").json()["data"]
    assert detail["api_key"] == rotated["key_hint"] != rotated["api_key"]


def test_openapi_says_api_key_is_a_string(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    key = next(component for name, component in schema.items()
               if name.startswith("ApiKey") and "key_hint" in component.get("properties", {}))
    assert key["properties"]["api_key"]["type"] == "string"
    assert not key["properties"]["api_key"].get("nullable")


@pytest.mark.parametrize("permission", ["config read", "聊天", "chat:send now", "x" * 64])
def test_permissions_with_spaces_and_letters(client, permission):
    agent = AgentFactory()
    created = _create_key(client, agent, permissions=["chat", f"  {permission}  ", permission])
    assert created["permissions"] == ["chat", permission]
    verdict = client.post("/api/v2/auth/check-permission",
                          {"api_key": created["api_key"], "permission": permission}, format="json").json()
    assert verdict["success"] is True and verdict["data"]["has_permission"] is True


@pytest.mark.parametrize("permission", ["", "   ", "x" * 65, "bad\x00perm", "tab\tbed", "del\x7f"])
def test_bad_permissions_are_400(client, permission):
    agent = AgentFactory()
    body = {"agent_id": agent.agent_id, "name": "k", "permissions": ["chat", permission]}
    response = client.post("/api/v2/api-keys", body, format="json")
    assert response.status_code == 400 and "permissions[1]" in response.json()["data"]["errors"]
    assert not ApiKey.objects.exists()


NAMES = ["天气插件", "weather plugin", "Weather Plugin", "weather_plugin", "插件 v2.0 (beta)!", "🌤 forecast",
         "x" * 100, "天" * 100]


def test_v1_plugin_names_as_the_original_accepted(client):
    tenant = TenantFactory()
    url = f"/api/v1/plugins/settings?tenant_id={tenant.tenant_id}"
    for name in NAMES:
        response = client.post(url, {"plugin_name": name, "enabled": True, "config": {"n": name}}, format="json")
        assert response.status_code == 200, (name, response.content)
        assert OriginalPluginSetting.model_validate(response.json()).plugin_name == name
    listed = [OriginalPluginSetting.model_validate(item) for item in client.get(url).json()]
    assert sorted(item.plugin_name for item in listed) == sorted(NAMES)
    # Names are compared exactly: a second write of each updates, never duplicates.
    for name in NAMES:
        client.post(url, {"plugin_name": name, "enabled": False, "config": {}}, format="json")
    assert PluginSetting.objects.count() == len(NAMES)
    assert set(PluginSetting.objects.values_list("plugin_name", flat=True)) == set(NAMES)


def test_v2_plugin_names_are_trimmed_and_exact(client):
    tenant = TenantFactory()
    first = client.post("/api/v2/plugin-settings", {"tenant_id": tenant.tenant_id, "plugin_name": "  天气插件 "},
                        format="json").json()["data"]
    assert first["plugin_name"] == "天气插件" and first["created"] is True
    again = client.post("/api/v2/plugin-settings", {"tenant_id": tenant.tenant_id, "plugin_name": "天气插件"},
                        format="json").json()["data"]
    assert again["created"] is False and again["id"] == first["id"]
    listed = client.get("/api/v2/plugin-settings", {"tenant_id": tenant.tenant_id, "plugin_name": "天气插件"})
    assert [item["id"] for item in listed.json()["data"]["items"]] == [first["id"]]


@pytest.mark.parametrize("name", ["", "   ", "a/b", "x" * 101, "bad\x07name", "line\nbreak"])
def test_bad_plugin_names_are_400(client, name):
    tenant = TenantFactory()
    response = client.post(f"/api/v1/plugins/settings?tenant_id={tenant.tenant_id}",
                           {"plugin_name": name, "enabled": True, "config": {}}, format="json")
    assert response.status_code == 400 and "plugin_name" in response.json()["errors"]
    assert not PluginSetting.objects.exists()
