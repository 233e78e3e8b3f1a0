"""Agent keys as credentials (spec §1.13): AgentKeyAuthentication, OperatorOrAgentKey, authorize_key_scope."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent
from agents.tests.factories import AgentFactory
from apikeys.models import ApiKey
from apikeys.usage import shown
from apikeys.tests.factories import ApiKeyFactory
from tenants.models import Tenant
from apikeys.tests.helpers import set_fields

pytestmark = [pytest.mark.django_db, pytest.mark.urls("apikeys.tests.urls_probe")]

WWW = 'Bearer realm="maimconfig"'


def usage(key) -> int:
    """Stored + pending in Redis (spec §1.15), as the API shows it."""
    return shown(key.pk)[0]


def bearer(client, key, scheme="Bearer"):
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key.raw_key if hasattr(key, 'raw_key') else key}")
    return client


@pytest.mark.parametrize("scheme", ["Bearer", "Token", "bearer"])
def test_key_with_permission_reads_its_own_agent(api_client, scheme):
    key = ApiKeyFactory(permissions=["config"])
    r = bearer(api_client, key, scheme).get(f"/api/v2/probe/config/{key.agent_id}")
    assert r.status_code == 200, r.json()
    assert r.json()["data"]["auth"] == "AgentKeyPrincipal" and r.json()["tenant_id"] == key.tenant_id
    assert usage(key) == 1


def test_config_read_is_accepted_for_config(api_client):
    key = ApiKeyFactory(permissions=["config_read"])
    assert bearer(api_client, key).get(f"/api/v2/probe/config/{key.agent_id}").status_code == 200


def test_missing_permission_is_auth_003_and_not_counted(api_client):
    key = ApiKeyFactory(permissions=["chat", "Config"])
    r = bearer(api_client, key).get(f"/api/v2/probe/config/{key.agent_id}")
    assert (r.status_code, r.json()["error_code"]) == (403, "AUTH_003")
    assert r.json()["tenant_id"] is None and usage(key) == 0


def test_another_agent_is_permission_denied_whether_or_not_it_exists(api_client):
    key = ApiKeyFactory(permissions=["config"])
    other = AgentFactory(tenant=key.tenant)
    for agent_id in (other.id, "agent_ffffffffffff", "whatever"):
        r = bearer(api_client, key).get(f"/api/v2/probe/config/{agent_id}")
        assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED")
    assert usage(key) == 0


@pytest.mark.parametrize("change, code, status", [
    ({"disabled_at": timezone.now()}, "AUTH_004", 401),
    ({"expires_at": timezone.now() - timedelta(seconds=1)}, "AUTH_002", 401),
])
def test_key_state_failures(api_client, change, code, status):
    key = ApiKeyFactory(permissions=["config"], **change)
    r = bearer(api_client, key).get(f"/api/v2/probe/config/{key.agent_id}")
    assert (r.status_code, r.json()["error_code"]) == (status, code)
    assert r["WWW-Authenticate"] == WWW and r.json()["tenant_id"] is None


def test_invalid_unknown_and_inactive_parents(api_client):
    key = ApiKeyFactory(permissions=["config"])
    url = f"/api/v2/probe/config/{key.agent_id}"
    r = bearer(api_client, "mmc_!!!").get(url)
    assert (r.status_code, r.json()["error_code"], r["WWW-Authenticate"]) == (401, "AUTH_001", WWW)
    rotated = ApiKeyFactory(agent=key.agent)
    set_fields(ApiKey, rotated.pk, key_hash="f" * 64)
    r = bearer(api_client, rotated).get(url)
    assert (r.status_code, r.json()["error_code"]) == (401, "AUTH_005")
    set_fields(Agent, key.agent_id, status="inactive")
    r = bearer(api_client, key).get(url)
    assert (r.status_code, r.json()["error_code"]) == (403, "AUTH_007")
    set_fields(Tenant, key.tenant_id, status="suspended")
    r = bearer(api_client, key).get(url)
    assert (r.status_code, r.json()["error_code"]) == (403, "AUTH_006")
    assert usage(key) == 0


def test_agent_key_on_an_operator_route_is_403(api_client, operator_token):
    key = ApiKeyFactory()
    r = bearer(api_client, key).get("/api/v2/probe/operator")
    assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {operator_token}")
    assert api_client.get("/api/v2/probe/operator").status_code == 200


def test_operator_passes_and_nothing_is_counted(operator_client):
    key = ApiKeyFactory(permissions=[])
    r = operator_client.get(f"/api/v2/probe/config/{key.agent_id}")
    assert r.status_code == 200 and r.json()["data"]["auth"] == "OperatorToken"  # not the agent-key principal
    assert usage(key) == 0


def test_no_credential_is_401_unless_open_mode(api_client, settings):
    agent = AgentFactory()
    r = api_client.get(f"/api/v2/probe/config/{agent.id}")
    assert (r.status_code, r.json()["error_code"], r["WWW-Authenticate"]) == (401, "NOT_AUTHENTICATED", WWW)
    settings.MAIMCONFIG_AUTH_MODE = "open"
    assert api_client.get(f"/api/v2/probe/config/{agent.id}").status_code == 200


def test_a_key_wins_over_an_operator_credential_in_open_mode_too(api_client, settings):
    settings.MAIMCONFIG_AUTH_MODE = "open"
    key = ApiKeyFactory(permissions=["config"])
    other = AgentFactory()
    r = bearer(api_client, key).get(f"/api/v2/probe/config/{other.id}")
    assert r.status_code == 403
    r = bearer(api_client, key).get("/api/v2/probe/operator")
    assert r.status_code == 403


def test_body_key_on_listed_routes(api_client):
    key = ApiKeyFactory(permissions=[])
    body = {"api_key": key.raw_key, "agent_id": key.agent_id}
    r = api_client.put("/api/v2/agent-activity", body, format="json")
    assert r.status_code == 200 and r.json()["data"] == {"tenant_id": key.tenant_id, "agent_id": key.agent_id}
    assert usage(key) == 1  # authorize_key_scope called twice, counted once
    # the same key in both places is fine; different keys are a 400 at api_key, nothing counted
    bearer(api_client, key)
    assert api_client.put("/api/v2/agent-activity", body, format="json").status_code == 200
    other = ApiKeyFactory()
    r = api_client.put("/api/v2/agent-activity", {**body, "api_key": other.raw_key}, format="json")
    assert (r.status_code, r.json()["error_code"]) == (400, "VALIDATION_ERROR")
    assert list(r.json()["data"]["errors"]) == ["api_key"]
    api_client.credentials()
    r = api_client.put("/api/v2/agent-activity", {**body, "api_key": 12}, format="json")
    assert r.status_code == 400 and "api_key" in r.json()["data"]["errors"]
    r = api_client.put("/api/v2/agent-activity", {**body, "api_key": "mmc_!!!"}, format="json")
    assert (r.status_code, r.json()["error_code"]) == (401, "AUTH_001")
    assert usage(key) == 2 and usage(other) == 0


def test_body_key_is_not_a_credential_elsewhere(api_client):
    key = ApiKeyFactory(permissions=["chat"])
    r = api_client.post("/api/v2/probe/chat", {"api_key": key.raw_key}, format="json")
    assert (r.status_code, r.json()["error_code"]) == (401, "NOT_AUTHENTICATED")


def test_scope_in_body_and_defaults(api_client):
    key = ApiKeyFactory()
    bearer(api_client, key)
    r = api_client.put("/api/v2/probe/heartbeat", {"tenant_id": "tenant_ffffffffffff"}, format="json")
    assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED")
    r = api_client.put("/api/v2/probe/heartbeat", {}, format="json")
    assert r.json()["data"] == {"tenant_id": key.tenant_id, "agent_id": key.agent_id}


def test_key_required_route(api_client, operator_client, settings):
    key = ApiKeyFactory(permissions=["chat"])
    assert bearer(api_client, key).post("/api/v2/probe/chat", {}, format="json").status_code == 200
    r = operator_client.post("/api/v2/probe/chat", {}, format="json")
    assert (r.status_code, r.json()["error_code"]) == (401, "NOT_AUTHENTICATED")
    settings.MAIMCONFIG_AUTH_MODE = "open"
    api_client.credentials()
    assert api_client.post("/api/v2/probe/chat", {}, format="json").status_code == 401
    nochat = ApiKeyFactory(permissions=["config"])
    r = bearer(api_client, nochat).post("/api/v2/probe/chat", {}, format="json")
    assert (r.status_code, r.json()["error_code"]) == (403, "AUTH_003")


def test_per_minute_limit_on_routes(api_client, frozen_clock):
    key = ApiKeyFactory(permissions=["config"], rate_limit_per_minute=2)
    url = f"/api/v2/probe/config/{key.agent_id}"
    bearer(api_client, key)
    # 15 s into a minute (frozen_clock): the window resets in 45 s
    r = api_client.get(url)
    assert (r["X-RateLimit-Limit"], r["X-RateLimit-Remaining"], r["X-RateLimit-Reset"]) == ("2", "1", "45")
    assert api_client.get(url)["X-RateLimit-Remaining"] == "0"
    r = api_client.get(url)
    assert (r.status_code, r.json()["error_code"]) == (429, "AUTH_008")
    assert r["Retry-After"] == "45" and r.json()["data"] == {"retry_after": 45}
    assert r["X-RateLimit-Remaining"] == "0"
    # out of scope is refused before the limit is consulted
    r = api_client.get("/api/v2/probe/config/agent_ffffffffffff")
    assert r.status_code == 403
    assert usage(key) == 2


def test_unlimited_key_has_no_rate_limit_headers(api_client):
    key = ApiKeyFactory(permissions=["config"])
    r = bearer(api_client, key).get(f"/api/v2/probe/config/{key.agent_id}")
    assert "X-RateLimit-Limit" not in r


def test_a_counted_use_survives_a_later_failure(api_client):
    key = ApiKeyFactory(permissions=["config"])
    bearer(api_client, key)
    r = api_client.get(f"/api/v2/probe/config/{key.agent_id}?fail=409")
    assert r.status_code == 409
    assert usage(key) == 1
    assert Agent.objects.get(pk=key.agent_id).description is None  # the view's own write was rolled back
    r = api_client.put("/api/v2/probe/heartbeat", {"ttl_seconds": 0}, format="json")
    assert r.status_code == 400 and usage(key) == 2


@pytest.mark.django_db(transaction=True)
def test_a_counted_use_survives_a_later_failure_with_real_transactions(api_client):
    key = ApiKeyFactory(permissions=["config"])
    bearer(api_client, key)
    assert api_client.get(f"/api/v2/probe/config/{key.agent_id}?fail=409").status_code == 409
    assert usage(key) == 1
    assert Agent.objects.get(pk=key.agent_id).description is None
    assert api_client.get(f"/api/v2/probe/config/{key.agent_id}").status_code == 200
    assert usage(key) == 2
    assert Agent.objects.get(pk=key.agent_id).description == "touched"


def test_errors_after_key_authentication_carry_the_keys_tenant(api_client):
    """Spec §1.3: a key-authenticated request is scoped to the key's tenant, errors included (429, 409),
    but never on 401/403."""
    key = ApiKeyFactory(permissions=["config"], rate_limit_per_minute=1)
    bearer(api_client, key)
    url = f"/api/v2/probe/config/{key.agent_id}"
    r = api_client.get(f"{url}?fail=400")  # raised without a tenant_id: the key's tenant is the scope
    assert (r.status_code, r.json()["tenant_id"]) == (400, key.tenant_id)
    r = api_client.get(url)
    assert (r.status_code, r.json()["error_code"], r.json()["tenant_id"]) == (429, "AUTH_008", key.tenant_id)
    r = api_client.get("/api/v2/probe/config/agent_ffffffffffff")
    assert (r.status_code, r.json()["tenant_id"]) == (403, None)
