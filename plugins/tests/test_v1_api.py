"""`/api/v1/plugins/settings`: the original's bare-JSON shapes, byte for byte (spec §8.1)."""

import json

import pytest

from agents.tests.factories import AgentFactory
from plugins.models import PluginSetting
from plugins.tests.factories import PluginSettingFactory
from tenants.tests.factories import TenantFactory

URL = "/api/v1/plugins/settings"

pytestmark = pytest.mark.django_db


def test_get_is_the_bare_array_of_the_spec_byte_for_byte(operator_client):
    tenant = TenantFactory()
    PluginSettingFactory(tenant=tenant, plugin_name="core_actions", enabled=True, config={})
    PluginSettingFactory(tenant=tenant, plugin_name="weather_plugin", enabled=False, config={"units": "metric"})
    response = operator_client.get(URL, {"tenant_id": tenant.id})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["X-Request-ID"]
    assert response.content == (
        b'[{"plugin_name": "weather_plugin", "enabled": false, "config": {"units": "metric"}}, '
        b'{"plugin_name": "core_actions", "enabled": true, "config": {}}]'
    )


def test_post_answers_the_bare_object_byte_for_byte(operator_client):
    tenant = TenantFactory()
    response = operator_client.post(f"{URL}?tenant_id={tenant.id}",
                                    {"plugin_name": "weather_plugin", "enabled": True, "config": {"units": "metric"}},
                                    format="json")
    assert response.status_code == 200, response.content
    assert response.content == b'{"plugin_name": "weather_plugin", "enabled": true, "config": {"units": "metric"}}'
    row = PluginSetting.objects.get()
    assert (row.tenant_id, row.agent_id, row.agent_scope, row.id[:3]) == (tenant.id, None, "", "ps_")
    assert len(row.id) == 15


def test_post_upserts_and_agent_override(operator_client):
    agent = AgentFactory()
    tenant_id = agent.tenant_id
    body = {"plugin_name": "p", "enabled": True, "config": {"a": 1}}
    operator_client.post(f"{URL}?tenant_id={tenant_id}", body, format="json")
    operator_client.post(f"{URL}?tenant_id={tenant_id}", {**body, "enabled": False, "config": {"b": 2}}, format="json")
    operator_client.post(f"{URL}?tenant_id={tenant_id}&agent_id={agent.id}", {**body, "config": {"c": 3}},
                         format="json")
    assert PluginSetting.objects.count() == 2
    defaults = json.loads(operator_client.get(URL, {"tenant_id": tenant_id}).content)
    assert defaults == [{"plugin_name": "p", "enabled": False, "config": {"b": 2}}]
    merged = json.loads(operator_client.get(URL, {"tenant_id": tenant_id, "agent_id": agent.id}).content)
    assert merged == [{"plugin_name": "p", "enabled": True, "config": {"c": 3}}]


def test_get_unknown_tenant_or_foreign_agent_is_empty(operator_client):
    setting = PluginSettingFactory()
    foreign = AgentFactory()
    assert operator_client.get(URL, {"tenant_id": "tenant_nope"}).content == b"[]"
    assert operator_client.get(URL, {"tenant_id": setting.tenant_id, "agent_id": foreign.id}).content == b"[]"
    assert operator_client.get(URL, {"tenant_id": setting.tenant_id, "agent_id": "agent_nope"}).content == b"[]"


def _error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) <= {"detail", "error_code", "request_id", "errors"}
    assert body["error_code"] == code
    assert body["request_id"] == response["X-Request-ID"]
    assert isinstance(body["detail"], str) and "Traceback" not in body["detail"]
    return body


def test_get_without_tenant_is_400(operator_client):
    body = _error(operator_client.get(URL), 400, "VALIDATION_ERROR")
    assert body["errors"] == {"tenant_id": ["This field is required."]}


@pytest.mark.parametrize("body, paths", [
    ({}, {"plugin_name", "enabled", "config"}),
    ({"plugin_name": "p", "enabled": True}, {"config"}),
    ({"plugin_name": "p", "enabled": True, "config": None}, {"config"}),
    ({"plugin_name": "p", "enabled": True, "config": [1]}, {"config"}),
    ({"plugin_name": "p", "enabled": True, "config": "{}"}, {"config"}),
    ({"plugin_name": "p", "enabled": "yes", "config": {}}, {"enabled"}),
    ({"plugin_name": "bad\x07name", "enabled": True, "config": {}}, {"plugin_name"}),
    ({"plugin_name": "x" * 101, "enabled": True, "config": {}}, {"plugin_name"}),
    ({"plugin_name": "", "enabled": True, "config": {}}, {"plugin_name"}),
    ({"plugin_name": "p/..", "enabled": True, "config": {}}, {"plugin_name"}),
    ({"plugin_name": "p\nq", "enabled": True, "config": {}}, {"plugin_name"}),
    ({"plugin_name": "   ", "enabled": True, "config": {}}, {"plugin_name"}),
    ({"plugin_name": "p", "enabled": True, "config": {"x": "y" * 70000}}, {"config"}),
])
def test_post_bad_body_is_400_and_writes_nothing(operator_client, body, paths):
    tenant = TenantFactory()
    result = _error(operator_client.post(f"{URL}?tenant_id={tenant.id}", body, format="json"), 400,
                    "VALIDATION_ERROR")
    assert set(result["errors"]) == paths
    assert not PluginSetting.objects.exists()


def test_post_non_object_and_malformed_bodies(operator_client):
    tenant = TenantFactory()
    _error(operator_client.post(f"{URL}?tenant_id={tenant.id}", [1], format="json"), 400, "VALIDATION_ERROR")
    _error(operator_client.post(f"{URL}?tenant_id={tenant.id}", b"{x", content_type="application/json"), 400,
           "VALIDATION_ERROR")
    _error(operator_client.post(f"{URL}?tenant_id={tenant.id}", "a=b", content_type="text/plain"), 415,
           "UNSUPPORTED_MEDIA_TYPE")
    assert not PluginSetting.objects.exists()


def test_post_missing_tenant_is_400(operator_client):
    body = _error(operator_client.post(URL, {"plugin_name": "p", "enabled": True, "config": {}}, format="json"),
                  400, "VALIDATION_ERROR")
    assert set(body["errors"]) == {"tenant_id"}


def test_post_unknown_tenant_agent_and_foreign_agent_are_404(operator_client):
    tenant = TenantFactory()
    foreign = AgentFactory()
    body = {"plugin_name": "p", "enabled": True, "config": {}}
    _error(operator_client.post(f"{URL}?tenant_id=tenant_nope", body, format="json"), 404, "TENANT_003")
    _error(operator_client.post(f"{URL}?tenant_id={tenant.id}&agent_id=agent_nope", body, format="json"), 404,
           "AGENT_004")
    _error(operator_client.post(f"{URL}?tenant_id={tenant.id}&agent_id={foreign.id}", body, format="json"), 404,
           "AGENT_004")
    assert not PluginSetting.objects.exists()


def test_auth_errors_are_bare(api_client, key_client):
    _error(api_client.get(URL, {"tenant_id": "t"}), 401, "NOT_AUTHENTICATED")
    agent = AgentFactory()
    _error(key_client(agent, permissions=["chat"]).get(URL), 403, "AUTH_003")
    client = key_client(agent)
    _error(client.post(f"{URL}?tenant_id={agent.tenant_id}", {"plugin_name": "p", "enabled": True, "config": {}},
                       format="json"), 403, "PERMISSION_DENIED")
    _error(client.get(URL, {"tenant_id": TenantFactory().id}), 403, "PERMISSION_DENIED")


def test_wrong_method_is_bare_405(operator_client):
    response = operator_client.delete(URL)
    _error(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response["Allow"]


def test_agent_key_reads_its_merged_view(key_client):
    agent = AgentFactory()
    PluginSettingFactory(tenant=agent.tenant, plugin_name="a", config={"from": "default"})
    PluginSettingFactory(agent=agent, plugin_name="a", config={"from": "override"})
    PluginSettingFactory(agent=AgentFactory(tenant=agent.tenant), plugin_name="a", config={"from": "other"})
    response = key_client(agent).get(URL)
    assert response.status_code == 200, response.content
    assert json.loads(response.content) == [{"plugin_name": "a", "enabled": True, "config": {"from": "override"}}]


def test_trailing_slash(operator_client):
    tenant = TenantFactory()
    assert operator_client.get(URL + "/", {"tenant_id": tenant.id}).content == b"[]"


def test_body_guard_errors_are_bare_too(operator_client, settings):
    settings.MAIMCONFIG_MAX_BODY_BYTES = 100
    tenant = TenantFactory()
    body = {"plugin_name": "p", "enabled": True, "config": {"x": "y" * 200}}
    _error(operator_client.post(f"{URL}?tenant_id={tenant.id}", body, format="json"), 413, "PAYLOAD_TOO_LARGE")
    assert not PluginSetting.objects.exists()


def test_v1_list_is_the_merged_list_in_one_statement(key_client, operator_client):
    """The v1 read (a hand-written statement) answers the rows and order of the ORM's merged list, with
    case-sensitive names, for tenant defaults, an agent's merged view and a foreign agent; an agent key's
    read is one statement besides the key's authentication."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from plugins import selectors

    tenant, other = TenantFactory(), TenantFactory()
    agent, sibling, foreign = AgentFactory(tenant=tenant), AgentFactory(tenant=tenant), AgentFactory(tenant=other)
    for name, config in (("Weather", {"a": 1}), ("weather", {"b": [1, "二"]}), ("天气插件", {}), ("x", {"n": None})):
        PluginSettingFactory(tenant=tenant, plugin_name=name, enabled=name != "x", config=config)
    PluginSettingFactory(tenant=tenant, agent=agent, plugin_name="weather", enabled=False, config={"o": True})
    PluginSettingFactory(tenant=tenant, agent=agent, plugin_name="only_agent", enabled=True, config={})
    PluginSettingFactory(tenant=tenant, agent=sibling, plugin_name="x", enabled=True, config={"s": 1})
    PluginSettingFactory(tenant=other, plugin_name="weather", enabled=True, config={})

    def orm(tenant_id, agent_id=None):
        return [{"plugin_name": s.plugin_name, "enabled": s.enabled, "config": s.config}
                for s in selectors.plugin_setting_list(tenant_id=tenant_id, agent_id=agent_id, merged=True)]

    for tenant_id, agent_id in ((tenant.pk, None), (tenant.pk, agent.pk), (tenant.pk, sibling.pk),
                                (tenant.pk, foreign.pk), (other.pk, None), (other.pk, agent.pk),
                                ("tenant_000000000000", None)):
        expected = orm(tenant_id, agent_id)
        assert selectors.plugin_setting_v1_list(tenant_id=tenant_id, agent_id=agent_id) == expected
        query = {"tenant_id": tenant_id} | ({"agent_id": agent_id} if agent_id else {})
        assert json.loads(operator_client.get(URL, query).content) == expected
    assert len(orm(tenant.pk, agent.pk)) == 5

    client = key_client(agent)
    assert client.get(URL).status_code == 200  # warms the key state
    with CaptureQueriesContext(connection) as context:
        response = client.get(URL, {"tenant_id": tenant.pk, "agent_id": agent.pk})
    assert response.status_code == 200 and json.loads(response.content) == orm(tenant.pk, agent.pk)
    statements = [q["sql"] for q in context.captured_queries
                  if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))]
    route = [sql for sql in statements if "apikeys_apikey" not in sql]  # the rest is the key's authentication
    assert len(route) == 1 and "plugins_pluginsetting" in route[0], route
