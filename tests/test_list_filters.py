"""A list filter that names no object, however long, is an empty list, never a 400 (spec §1.7)."""

import pytest

pytestmark = pytest.mark.django_db

LONG = "tenant_" + "f" * 300


@pytest.mark.parametrize("url", [
    f"/api/v2/agent-activity?tenant_id={LONG}",
    f"/api/v2/agent-activity?agent_id={LONG}&include_offline=true",
    f"/api/v2/usage-logs?tenant_id={LONG}",
    f"/api/v2/usage-logs?agent_id={LONG}",
    f"/api/v2/plugin-settings?tenant_id={LONG}",
    f"/api/v2/chat-agents?tenant_id={LONG}",
    f"/api/v2/api-keys?tenant_id={LONG}",
    f"/api/v2/api-keys?agent_id={LONG}",
])
def test_unknown_long_id_filter_gives_an_empty_list(operator_client, url):
    response = operator_client.get(url)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["tenant_id"] is None
    assert body["data"]["items"] == [] and body["data"]["pagination"]["total"] == 0


def test_v1_plugin_list_with_unknown_long_tenant_is_an_empty_array(operator_client):
    response = operator_client.get(f"/api/v1/plugins/settings?tenant_id={LONG}")
    assert response.status_code == 200
    assert response.json() == []
