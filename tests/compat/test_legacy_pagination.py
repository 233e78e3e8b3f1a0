"""Spec §16 legacy list fields: every paginated `data` carries the original's `total`, `page`, `size` and
`pages` beside `items` and `pagination`, and the OpenAPI description says so."""

import pytest
from rest_framework.test import APIClient

from activity.tests.factories import AgentActivityFactory, UsageLogFactory
from agents.tests.factories import AgentFactory
from apikeys.tests.factories import ApiKeyFactory
from plugins.tests.factories import PluginSettingFactory
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

LEGACY_FIELDS = ("total", "page", "size", "pages")


@pytest.fixture
def client(open_mode) -> APIClient:
    return APIClient()


def _page(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    pagination = data["pagination"]
    assert (data["total"], data["page"], data["size"], data["pages"]) == (
        pagination["total"], pagination["page"], pagination["page_size"], pagination["total_pages"])
    return data


def test_original_client_pages_tenants_with_page_and_size(client):
    for n in range(5):
        TenantFactory(tenant_name=f"tenant {n}")
    data = _page(client, "/api/v2/tenants?page=2&size=2")
    assert (data["total"], data["page"], data["size"], data["pages"]) == (5, 2, 2, 3)
    assert len(data["items"]) == 2
    last = _page(client, "/api/v2/tenants?page=3&size=2")
    assert len(last["items"]) == 1
    seen = {item["tenant_id"] for page in (1, 2, 3)
            for item in _page(client, f"/api/v2/tenants?page={page}&size=2")["items"]}
    assert len(seen) == 5


def test_empty_list_has_zero_pages(client):
    data = _page(client, "/api/v2/api-keys?tenant_id=tenant_000000000000")
    assert (data["total"], data["page"], data["size"], data["pages"]) == (0, 1, 20, 0)


def test_every_resource_list_carries_the_fields(client):
    key = ApiKeyFactory()
    agent = key.agent
    PluginSettingFactory(tenant=agent.tenant, agent=None)
    UsageLogFactory(tenant=agent.tenant, agent=agent)
    AgentActivityFactory(agent=agent)
    AgentFactory(tenant=agent.tenant)
    tenant = agent.tenant_id
    for url in ("/api/v2/tenants", f"/api/v2/agents?tenant_id={tenant}", f"/api/v2/api-keys?tenant_id={tenant}",
                f"/api/v2/agent-activity?tenant_id={tenant}&include_offline=true",
                f"/api/v2/plugin-settings?tenant_id={tenant}", f"/api/v2/usage-logs?tenant_id={tenant}",
                f"/api/v2/chat-agents?tenant_id={tenant}"):
        data = _page(client, url + ("&" if "?" in url else "?") + "size=1")
        assert data["size"] == 1 and data["total"] >= 1 and data["pages"] == data["total"], url


def test_openapi_documents_the_fields(client):
    schema = client.get("/openapi.json").json()
    pages = {name: component for name, component in schema["components"]["schemas"].items()
             if "pagination" in component.get("properties", {})}
    assert len(pages) >= 6
    for name, component in pages.items():
        for field in LEGACY_FIELDS:
            assert component["properties"][field]["type"] == "integer", (name, field)
            assert field in component["required"], (name, field)
