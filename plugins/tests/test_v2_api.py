"""`/api/v2/plugin-settings`: the enveloped resource (spec §8.2)."""

import pytest

from agents.tests.factories import AgentFactory
from plugins.models import PluginSetting
from plugins.tests.factories import PluginSettingFactory
from tenants.tests.factories import TenantFactory

URL = "/api/v2/plugin-settings"

pytestmark = pytest.mark.django_db


def items(response):
    assert response.status_code == 200, response.content
    return [(i["plugin_name"], i["scope"], i["config"]) for i in response.json()["data"]["items"]]


def test_upsert_creates_then_updates(operator_client, clock):
    tenant = TenantFactory()
    response = operator_client.post(URL, {"tenant_id": tenant.id, "plugin_name": "weather"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    data = body["data"]
    assert body["tenant_id"] == tenant.id and body["message"] == "Plugin setting created"
    assert data == {"id": data["id"], "tenant_id": tenant.id, "agent_id": None, "plugin_name": "weather",
                    "enabled": False, "config": {}, "scope": "tenant", "created_at": "2026-11-24T12:00:00.123456Z",
                    "updated_at": "2026-11-24T12:00:00.123456Z", "created": True}
    clock.advance(seconds=5)
    response = operator_client.post(URL, {"tenant_id": tenant.id, "plugin_name": "weather", "enabled": True},
                                    format="json")
    updated = response.json()["data"]
    assert updated["id"] == data["id"] and updated["created"] is False
    assert updated["enabled"] is True and updated["config"] == {}
    assert updated["updated_at"] == "2026-11-24T12:00:05.123456Z"
    clock.advance(seconds=5)
    same = operator_client.post(URL, {"tenant_id": tenant.id, "plugin_name": "weather", "enabled": True},
                                format="json").json()["data"]
    assert same["updated_at"] == updated["updated_at"]  # nothing changed
    assert PluginSetting.objects.count() == 1


def test_upsert_agent_override_and_null_agent(operator_client):
    agent = AgentFactory()
    r1 = operator_client.post(URL, {"tenant_id": agent.tenant_id, "agent_id": None, "plugin_name": "p"}, format="json")
    r2 = operator_client.post(URL, {"tenant_id": agent.tenant_id, "agent_id": agent.id, "plugin_name": "p",
                                    "config": {"x": 1}}, format="json")
    assert r1.json()["data"]["scope"] == "tenant"
    assert r2.json()["data"]["scope"] == "agent" and r2.json()["data"]["agent_id"] == agent.id
    assert r2.json()["data"]["created"] is True
    assert PluginSetting.objects.count() == 2


def test_plugin_names_are_case_sensitive_and_long_names_work(operator_client):
    tenant = TenantFactory()
    for name in ("Weather", "weather", "x" * 100, "a.b-c_1"):
        response = operator_client.post(URL, {"tenant_id": tenant.id, "plugin_name": name}, format="json")
        assert response.json()["data"]["created"] is True, name
    assert PluginSetting.objects.count() == 4


@pytest.mark.parametrize("body, paths", [
    ({}, {"tenant_id", "plugin_name"}),
    ({"tenant_id": "t", "plugin_name": "bad/name"}, {"plugin_name"}),
    ({"tenant_id": "t", "plugin_name": "p", "config": [1]}, {"config"}),
    ({"tenant_id": "t", "plugin_name": "p", "config": None}, {"config"}),
    ({"tenant_id": "t", "plugin_name": "p", "enabled": 1}, {"enabled"}),
    ({"tenant_id": 5, "plugin_name": "p"}, {"tenant_id"}),
])
def test_upsert_validation(operator_client, body, paths):
    response = operator_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert set(response.json()["data"]["errors"]) == paths
    assert not PluginSetting.objects.exists()


def test_upsert_unknown_references(operator_client):
    tenant = TenantFactory()
    response = operator_client.post(URL, {"tenant_id": "tenant_nope", "plugin_name": "p"}, format="json")
    assert response.status_code == 404 and response.json()["error_code"] == "TENANT_003"
    for agent_id in ("agent_nope", AgentFactory().id):
        response = operator_client.post(URL, {"tenant_id": tenant.id, "agent_id": agent_id, "plugin_name": "p"},
                                        format="json")
        assert response.status_code == 404 and response.json()["error_code"] == "AGENT_004"
        assert response.json()["tenant_id"] == tenant.id
    assert not PluginSetting.objects.exists()


# --- merged view -----------------------------------------------------------------------------------

@pytest.fixture
def layered():
    """Tenant defaults a, b, c; agent overrides b (disabled) and d; another agent overrides a."""
    agent = AgentFactory()
    tenant = agent.tenant
    PluginSettingFactory(tenant=tenant, plugin_name="a", config={"v": "default-a"})
    PluginSettingFactory(tenant=tenant, plugin_name="b", config={"v": "default-b", "keep": True})
    PluginSettingFactory(tenant=tenant, plugin_name="c", config={"v": "default-c"})
    PluginSettingFactory(agent=agent, plugin_name="b", enabled=False, config={"v": "agent-b"})
    PluginSettingFactory(agent=agent, plugin_name="d", config={"v": "agent-d"})
    PluginSettingFactory(agent=AgentFactory(tenant=tenant), plugin_name="a", config={"v": "other-a"})
    return agent


def test_defaults_only_without_agent(operator_client, layered):
    got = items(operator_client.get(URL, {"tenant_id": layered.tenant_id}))
    assert got == [("c", "tenant", {"v": "default-c"}), ("b", "tenant", {"v": "default-b", "keep": True}),
                   ("a", "tenant", {"v": "default-a"})]


def test_merged_view_whole_row_wins(operator_client, layered):
    response = operator_client.get(URL, {"tenant_id": layered.tenant_id, "agent_id": layered.id})
    assert response.json()["tenant_id"] == layered.tenant_id
    got = items(response)
    assert got == [("d", "agent", {"v": "agent-d"}), ("b", "agent", {"v": "agent-b"}),
                   ("c", "tenant", {"v": "default-c"}), ("a", "tenant", {"v": "default-a"})]
    b = next(i for i in response.json()["data"]["items"] if i["plugin_name"] == "b")
    assert b["enabled"] is False  # not combined with the default's enabled=True


def test_unmerged_and_filters(operator_client, layered):
    got = items(operator_client.get(URL, {"tenant_id": layered.tenant_id, "agent_id": layered.id,
                                          "merged": "false"}))
    assert got == [("d", "agent", {"v": "agent-d"}), ("b", "agent", {"v": "agent-b"})]
    got = items(operator_client.get(URL, {"tenant_id": layered.tenant_id, "agent_id": layered.id,
                                          "plugin_name": "c"}))
    assert got == [("c", "tenant", {"v": "default-c"})]
    body = operator_client.get(URL, {"tenant_id": layered.tenant_id, "agent_id": layered.id, "page_size": 3,
                                     "page": 2}).json()
    assert body["data"]["pagination"]["total"] == 4
    assert [i["plugin_name"] for i in body["data"]["items"]] == ["a"]


def test_merged_view_is_one_query(operator_client, layered, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        operator_client.get(URL, {"tenant_id": layered.tenant_id, "agent_id": layered.id})
    ours = [q["sql"] for q in ctx.captured_queries if "plugins_pluginsetting" in q["sql"]]
    assert len(ours) == 1  # the page, computing the merge in SQL (a page that is not full needs no COUNT)


def test_deleting_override_restores_default_and_deleting_default_keeps_overrides(operator_client, layered):
    override_b = PluginSetting.objects.get(agent=layered, plugin_name="b")
    response = operator_client.delete(f"{URL}/{override_b.id}")
    assert response.status_code == 200
    assert set(response.json()["data"]) == {"id", "deleted_at"}
    got = items(operator_client.get(URL, {"tenant_id": layered.tenant_id, "agent_id": layered.id}))
    assert ("b", "tenant", {"v": "default-b", "keep": True}) in got
    default_a = PluginSetting.objects.get(tenant=layered.tenant, agent=None, plugin_name="a")
    assert operator_client.delete(f"{URL}/{default_a.id}").status_code == 200
    assert PluginSetting.objects.filter(plugin_name="a", agent__isnull=False).count() == 1
    assert operator_client.delete(f"{URL}/{default_a.id}").status_code == 404


def test_list_edge_cases(operator_client, layered):
    assert operator_client.get(URL).status_code == 400
    body = operator_client.get(URL, {"tenant_id": "tenant_nope"}).json()
    assert body["data"]["items"] == [] and body["tenant_id"] is None
    assert items(operator_client.get(URL, {"tenant_id": layered.tenant_id, "agent_id": AgentFactory().id})) == []
    assert operator_client.get(URL, {"tenant_id": layered.tenant_id, "merged": "maybe"}).status_code == 400


# --- detail, update ------------------------------------------------------------------------------

def test_detail_update(operator_client, clock):
    setting = PluginSettingFactory(config={"a": 1}, enabled=True)
    response = operator_client.get(f"{URL}/{setting.id}/")
    assert response.status_code == 200 and response.json()["data"]["config"] == {"a": 1}
    clock.advance(seconds=1)
    response = operator_client.patch(f"{URL}/{setting.id}", {"config": {"b": 2}, "plugin_name": "ignored",
                                                             "tenant_id": "x", "agent_id": "y"}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["config"] == {"b": 2} and data["enabled"] is True and data["plugin_name"] == setting.plugin_name
    assert data["updated_at"] == "2026-11-24T12:00:01.123456Z"
    response = operator_client.put(f"{URL}/{setting.id}", {"enabled": False}, format="json")
    assert response.json()["data"]["enabled"] is False and response.json()["data"]["config"] == {"b": 2}
    clock.advance(seconds=1)
    unchanged = operator_client.put(f"{URL}/{setting.id}", {}, format="json").json()["data"]
    assert unchanged["updated_at"] == "2026-11-24T12:00:01.123456Z"
    for bad in ({"config": []}, {"config": None}, {"enabled": None}, {"enabled": "no"}):
        response = operator_client.patch(f"{URL}/{setting.id}", bad, format="json")
        assert response.status_code == 400, bad


@pytest.mark.parametrize("setting_id", ["ps_000000000999", "nope", "ps_" + "0" * 300])
def test_unknown_ids_are_plugin_001(operator_client, setting_id):
    for method in ("get", "patch", "put", "delete"):
        response = getattr(operator_client, method)(f"{URL}/{setting_id}", {}, format="json")
        assert response.status_code == 404, (method, response.content)
        assert response.json()["error_code"] == "PLUGIN_001"


# --- agent keys ------------------------------------------------------------------------------------

def test_agent_key_reads_its_own_scope(key_client, layered):
    client = key_client(layered)
    got = items(client.get(URL))
    assert [name for name, _, _ in got] == ["d", "b", "c", "a"]
    assert client.get(URL, {"tenant_id": TenantFactory().id}).status_code == 403
    other_agent = AgentFactory(tenant=layered.tenant)
    assert client.get(URL, {"agent_id": other_agent.id}).status_code == 403
    own = PluginSetting.objects.get(agent=layered, plugin_name="d")
    default = PluginSetting.objects.get(agent=None, plugin_name="a")
    foreign = PluginSetting.objects.get(agent__isnull=False, plugin_name="a")
    assert client.get(f"{URL}/{own.id}").status_code == 200
    assert client.get(f"{URL}/{default.id}").status_code == 200
    response = client.get(f"{URL}/{foreign.id}")
    assert response.status_code == 404 and response.json()["error_code"] == "PLUGIN_001"


def test_agent_key_without_plugins_and_writes(key_client, layered):
    assert key_client(layered, permissions=["chat"]).get(URL).status_code == 403
    client = key_client(layered)
    own = PluginSetting.objects.get(agent=layered, plugin_name="d")
    assert client.post(URL, {"tenant_id": layered.tenant_id, "plugin_name": "z"}, format="json").status_code == 403
    assert client.patch(f"{URL}/{own.id}", {"enabled": True}, format="json").status_code == 403
    assert client.delete(f"{URL}/{own.id}").status_code == 403
    assert PluginSetting.objects.filter(pk=own.pk, enabled=True).exists()


def test_cascades(operator_client, layered):
    layered.delete()
    assert not PluginSetting.objects.filter(agent_scope=layered.id).exists()
    assert PluginSetting.objects.filter(tenant=layered.tenant, agent=None).count() == 3
    layered.tenant.delete()
    assert not PluginSetting.objects.filter(tenant_id=layered.tenant_id).exists()


def test_update_validation_error_carries_the_settings_tenant(operator_client):
    setting = PluginSettingFactory()
    response = operator_client.patch(f"/api/v2/plugin-settings/{setting.pk}", {"enabled": "yes"}, format="json")
    assert response.status_code == 400
    assert response.json()["tenant_id"] == setting.tenant_id
