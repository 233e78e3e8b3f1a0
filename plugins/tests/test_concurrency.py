"""Concurrent upserts on MariaDB: exactly one row per (tenant, agent-or-default, plugin_name)."""

import pytest
from core.testing import run_concurrently, token_client

from agents.tests.factories import AgentFactory
from plugins.models import PluginSetting

V1 = "/api/v1/plugins/settings"
V2 = "/api/v2/plugin-settings"


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_default_upserts_leave_one_row(operator_token):
    agent = AgentFactory()
    tenant_id = agent.tenant_id

    def upsert(index):
        client = token_client(operator_token)
        if index % 2:
            response = client.post(f"{V1}?tenant_id={tenant_id}",
                                   {"plugin_name": "shared", "enabled": True, "config": {"n": index}}, format="json")
            return response.status_code, None
        response = client.post(V2, {"tenant_id": tenant_id, "agent_id": None, "plugin_name": "shared",
                                    "config": {"n": index}}, format="json")
        return response.status_code, response.json()["data"]["created"]

    results = run_concurrently(16, upsert)
    assert all(status == 200 for status, _ in results), results
    assert [created for _, created in results if created is not None].count(True) <= 1
    rows = list(PluginSetting.objects.filter(tenant_id=tenant_id, agent__isnull=True, plugin_name="shared"))
    assert len(rows) == 1
    assert rows[0].config["n"] in range(16)


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_override_upserts_leave_one_row_each(operator_token):
    agent = AgentFactory()

    def upsert(index):
        body = {"tenant_id": agent.tenant_id, "plugin_name": "p", "enabled": bool(index % 2)}
        if index % 3:
            body["agent_id"] = agent.id
        return token_client(operator_token).post(V2, body, format="json").status_code

    assert run_concurrently(12, upsert) == [200] * 12
    assert PluginSetting.objects.filter(agent=agent, plugin_name="p").count() == 1
    assert PluginSetting.objects.filter(agent=None, plugin_name="p").count() == 1
