"""Spec §16 legacy error status: domain refusals answer 200 (real status in X-MaimConfig-Status) when the
client asks for it; generic failures never do."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from agents.tests.factories import AgentFactory
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

LEGACY = {"HTTP_X_MAIMCONFIG_LEGACY_ERRORS": "1"}


@pytest.fixture
def client(open_mode) -> APIClient:
    return APIClient()


def _refusal(response, code: str, real_status: int):
    assert response.status_code == 200, response.content
    assert response["X-MaimConfig-Status"] == str(real_status)
    body = response.json()
    assert (body["success"], body["error_code"]) == (False, code)
    assert body["error"]
    return body


def test_duplicate_agent_name_is_200_with_the_header(client):
    agent = AgentFactory(name="helper")
    response = client.post("/api/v2/agents", {"tenant_id": agent.tenant_id, "name": "helper"}, format="json",
                           **LEGACY)
    body = _refusal(response, "AGENT_002", 409)
    assert body["tenant_id"] == agent.tenant_id and body["data"] is None
    assert list(body) == ["success", "message", "data", "timestamp", "request_id", "tenant_id",
                          "execution_time", "error", "error_code"]


def test_without_the_switch_the_real_status_is_kept(client):
    response = client.get("/api/v2/agents/agent_000000000000")
    assert response.status_code == 404 and "X-MaimConfig-Status" not in response
    assert response.json()["error_code"] == "AGENT_004"


@pytest.mark.parametrize("value", ["0", "", "no"])
def test_header_values_other_than_on_keep_the_status(client, value):
    response = client.get("/api/v2/tenants/tenant_000000000000", HTTP_X_MAIMCONFIG_LEGACY_ERRORS=value)
    assert response.status_code == 404


def test_server_wide_setting(client, settings):
    settings.MAIMCONFIG_LEGACY_ERROR_STATUS = True
    _refusal(client.get("/api/v2/tenants/tenant_000000000000"), "TENANT_003", 404)
    _refusal(client.get("/api/v2/api-keys/key_000000000000"), "KEY_001", 404)
    _refusal(client.get("/api/v2/plugin-settings/ps_000000000000"), "PLUGIN_001", 404)
    TenantFactory(tenant_name="Acme")
    _refusal(client.post("/api/v2/tenants", {"tenant_name": "acme", "tenant_type": "personal"}, format="json"),
             "TENANT_002", 409)


def test_info_reports_the_server_wide_setting(client, settings):
    assert client.get("/info").json()["architecture"]["legacy_error_status"] is False
    settings.MAIMCONFIG_LEGACY_ERROR_STATUS = True
    assert client.get("/info").json()["architecture"]["legacy_error_status"] is True


def test_invalid_agent_config_is_a_domain_code(client):
    tenant = TenantFactory()
    response = client.post("/api/v2/agents", {"tenant_id": tenant.tenant_id, "name": "a", "config": []},
                           format="json", **LEGACY)
    body = _refusal(response, "AGENT_012", 400)
    assert "config" in body["data"]["errors"]


def test_heartbeat_refusal_keeps_its_own_status_in_the_header(client):
    agent = AgentFactory(status="archived")
    response = client.put("/api/v2/agent-activity", {"tenant_id": agent.tenant_id, "agent_id": agent.agent_id,
                                                     "ttl_seconds": 60}, format="json", **LEGACY)
    assert response.status_code == 200
    assert response.json()["error_code"] == "ACTIVITY_002"
    assert response["X-MaimConfig-Status"] in ("404", "409")


def test_validation_error_keeps_400(client, settings):
    settings.MAIMCONFIG_LEGACY_ERROR_STATUS = True
    response = client.post("/api/v2/tenants", {"tenant_type": "enterprise"}, format="json", **LEGACY)
    assert response.status_code == 400 and "X-MaimConfig-Status" not in response
    assert response.json()["error_code"] == "VALIDATION_ERROR"


def test_authentication_failure_keeps_401(settings):
    """Operator mode, no credential: legacy errors never turn an auth failure into a 200."""
    settings.MAIMCONFIG_LEGACY_ERROR_STATUS = True
    response = APIClient().get("/api/v2/tenants", **LEGACY)
    assert response.status_code == 401 and response.json()["error_code"] == "NOT_AUTHENTICATED"


def test_agent_key_refusal_on_a_key_route_keeps_401(settings):
    settings.MAIMCONFIG_LEGACY_ERROR_STATUS = True
    agent = AgentFactory()
    response = APIClient().get(f"/api/v2/agents/{agent.agent_id}/config",
                               HTTP_AUTHORIZATION="Bearer mmc_bm90LWEta2V5", **LEGACY)
    assert response.status_code == 401 and response.json()["error_code"].startswith("AUTH_")


def test_body_guard_refusals_keep_their_status(client, settings):
    settings.MAIMCONFIG_LEGACY_ERROR_STATUS = True
    response = Client().post("/api/v2/tenants", data="tenant_name=x",
                             content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    settings.MAIMCONFIG_MAX_BODY_BYTES = 10
    response = Client().post("/api/v2/tenants", data='{"tenant_name": "long enough"}',
                             content_type="application/json")
    assert response.status_code == 413


def test_v1_plugin_bare_route(client):
    response = client.post("/api/v1/plugins/settings?tenant_id=tenant_000000000000",
                           {"plugin_name": "weather", "enabled": True, "config": {}}, format="json", **LEGACY)
    assert response.status_code == 200 and response["X-MaimConfig-Status"] == "404"
    body = response.json()
    assert body["error_code"] == "TENANT_003" and set(body) == {"detail", "error_code", "request_id"}


def test_v1_plugin_validation_keeps_400(client):
    response = client.post("/api/v1/plugins/settings?tenant_id=tenant_000000000000", {"enabled": True},
                           format="json", **LEGACY)
    assert response.status_code == 400


def test_v1_usage_log_unknown_tenant(client):
    response = client.post("/api/v1/usage/log", {"tenant_id": "tenant_000000000000", "action": "chat"},
                           format="json", **LEGACY)
    _refusal(response, "TENANT_003", 404)


def test_openai_routes_keep_their_status(settings):
    settings.MAIMCONFIG_LEGACY_ERROR_STATUS = True
    response = APIClient().get("/v1/models", HTTP_AUTHORIZATION="Bearer mmc_bm90LWEta2V5")
    assert response.status_code == 401


@pytest.mark.urls("core.tests.urls_error_probe")
def test_domain_error_outside_drf(settings):
    """The error path outside DRF (middleware) applies the same rule."""
    settings.MAIMCONFIG_LEGACY_ERROR_STATUS = True
    response = Client().get("/api/v2/probe/refused")
    assert response.status_code == 200 and response["X-MaimConfig-Status"] == "409"
    assert response["X-Probe"] == "1" and response.json()["error_code"] == "ACTIVITY_002"
    assert Client().get("/api/v2/probe/unauthenticated").status_code == 401


def test_cors_exposes_the_status_header(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://ui.example"]
    response = client.get("/api/v2/tenants/tenant_000000000000", HTTP_ORIGIN="https://ui.example", **LEGACY)
    assert "X-MaimConfig-Status" in response["Access-Control-Expose-Headers"]
    preflight = client.options("/api/v2/tenants", HTTP_ORIGIN="https://ui.example",
                               HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
                               HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-maimconfig-legacy-errors")
    assert "x-maimconfig-legacy-errors" in preflight["Access-Control-Allow-Headers"]
