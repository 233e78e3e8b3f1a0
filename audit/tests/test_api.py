"""Each audited write through the API records exactly one event with the right actor and a secret-free
diff; refused writes record none; GET /api/v2/audit-events filters, paginates and is operator-only."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from agents.tests.factories import AgentFactory
from apikeys.tests.factories import ApiKeyFactory
from audit.models import AuditEvent
from audit.tests.factories import AuditEventFactory
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db
URL = "/api/v2/audit-events"


def _only_event():
    events = list(AuditEvent.objects.all())
    assert len(events) == 1, [(e.action, e.changes) for e in events]
    return events[0]


def _no_secret(event, *secrets):
    text = json.dumps(event.changes)
    for secret in secrets:
        assert secret not in text


def test_tenant_create_update_delete(operator_client):
    response = operator_client.post("/api/v2/tenants", {"tenant_name": "Acme", "tenant_type": "enterprise"},
                                    format="json", HTTP_X_REQUEST_ID="req-1")
    tenant_id = response.json()["data"]["id"]
    event = _only_event()
    assert (event.actor, event.action, event.target_type, event.target_id, event.tenant_id, event.request_id) == (
        "operator:operator", "tenant.create", "tenant", tenant_id, tenant_id, "req-1")
    assert event.changes["tenant_name"] == [None, "Acme"]
    AuditEvent.objects.all().delete()
    operator_client.put(f"/api/v2/tenants/{tenant_id}", {"description": "Robots"}, format="json")
    assert _only_event().changes == {"description": [None, "Robots"]}
    AuditEvent.objects.all().delete()
    operator_client.put(f"/api/v2/tenants/{tenant_id}", {"description": "Robots"}, format="json")  # no change
    assert not AuditEvent.objects.exists()
    operator_client.delete(f"/api/v2/tenants/{tenant_id}")
    event = _only_event()
    assert (event.action, event.changes["tenant_name"]) == ("tenant.delete", ["Acme", None])


def test_refused_writes_record_nothing(operator_client):
    tenant = TenantFactory(tenant_name="Taken")
    assert operator_client.post("/api/v2/tenants", {"tenant_name": "taken", "tenant_type": "enterprise"},
                                format="json").status_code == 409
    agent = AgentFactory(tenant=tenant)
    bad = operator_client.patch(f"/api/v2/agents/{agent.pk}/config", {"persona": 5}, format="json")
    assert bad.status_code == 400
    assert operator_client.post("/api/v2/agents", {"tenant_id": "tenant_000000000bad", "name": "x"},
                                format="json").status_code == 404
    assert not AuditEvent.objects.exists()


def test_agent_config_update_records_the_diff_with_provider_keys_masked(operator_client):
    agent = AgentFactory()
    body = {"persona": "Cheerful.", "config_overrides": {"model": {"api_providers": [
        {"name": "Mine", "base_url": "https://llm.example/v1", "api_key": "sk-very-secret"}]}}}
    assert operator_client.patch(f"/api/v2/agents/{agent.pk}/config", body, format="json").status_code == 200
    event = _only_event()
    assert (event.action, event.target_id, event.tenant_id) == ("agent.config.update", agent.pk, agent.tenant_id)
    assert event.changes["config.persona.personality"] == [None, "Cheerful."]
    assert event.changes["config.config_overrides.model.api_providers.0.api_key"] == [None, "********"]
    assert event.changes["config_version"] == [1, 2]
    _no_secret(event, "sk-very-secret", "gAAAA")


def test_agent_update_with_other_fields_is_one_agent_update(operator_client):
    agent = AgentFactory()
    operator_client.patch(f"/api/v2/agents/{agent.pk}", {"description": "d", "config": {"persona": "P."}},
                          format="json")
    event = _only_event()
    assert event.action == "agent.update"
    assert event.changes == {"description": [None, "d"], "config.persona.personality": [None, "P."],
                             "config_version": [1, 2]}


def test_agent_create_and_delete(operator_client):
    tenant = TenantFactory()
    agent_id = operator_client.post("/api/v2/agents", {"tenant_id": tenant.pk, "name": "bot"},
                                    format="json").json()["data"]["id"]
    assert (_only_event().action, _only_event().target_id) == ("agent.create", agent_id)
    AuditEvent.objects.all().delete()
    operator_client.delete(f"/api/v2/agents/{agent_id}")
    assert _only_event().action == "agent.delete"


def test_api_key_lifecycle_never_records_the_secret(operator_client):
    agent = AgentFactory()
    created = operator_client.post("/api/v2/api-keys", {"tenant_id": agent.tenant_id, "agent_id": agent.pk,
                                                        "name": "bot key", "permissions": ["chat"]}, format="json")
    assert created.status_code == 200, created.json()
    data = created.json()["data"]
    raw, key_id = data["api_key"], data["id"]
    event = _only_event()
    assert (event.action, event.target_type, event.target_id) == ("api_key.create", "api_key", key_id)
    assert event.changes["key_hash"] == [None, "********"]
    seen = [raw]
    for method, tail, body, action in (
        ("post", "/disable", None, "api_key.disable"),
        ("post", "/enable", None, "api_key.enable"),
        ("put", "", {"description": "rotating soon"}, "api_key.update"),
        ("post", "/rotate", None, "api_key.rotate"),
        ("delete", "", None, "api_key.delete"),
    ):
        AuditEvent.objects.all().delete()
        response = getattr(operator_client, method)(f"/api/v2/api-keys/{key_id}{tail}", body, format="json")
        assert response.status_code == 200, (tail, response.json())
        if tail == "/rotate":
            seen.append(response.json()["data"]["api_key"])
        event = _only_event()
        assert event.action == action
        _no_secret(event, *seen)
    assert event.changes["key_hash"] == ["********", None]


def test_plugin_setting_upsert_update_delete(operator_client):
    tenant = TenantFactory()
    body = {"tenant_id": tenant.pk, "plugin_name": "weather", "enabled": True, "config": {"api_token": "t-123"}}
    created = operator_client.post("/api/v2/plugin-settings", body, format="json")
    assert created.status_code in (200, 201), created.json()
    event = _only_event()
    assert (event.action, event.tenant_id) == ("plugin_setting.create", tenant.pk)
    assert event.changes["config.api_token"] == [None, "********"]
    _no_secret(event, "t-123")
    AuditEvent.objects.all().delete()
    operator_client.post("/api/v2/plugin-settings", {**body, "enabled": False}, format="json")
    assert _only_event().changes == {"enabled": [True, False]}
    AuditEvent.objects.all().delete()
    operator_client.delete(f"/api/v2/plugin-settings/{created.json()['data']['id']}")
    assert _only_event().action == "plugin_setting.delete"


def test_bot_traffic_is_not_audited(api_client):
    key = ApiKeyFactory(permissions=["heartbeat", "config"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    api_client.put("/api/v2/agent-activity", {"tenant_id": key.tenant_id, "agent_id": key.agent_id}, format="json")
    api_client.get(f"/api/v2/agents/{key.agent_id}/config")
    api_client.post("/api/v2/auth/validate-api-key", {"api_key": key.raw_key}, format="json")
    assert not AuditEvent.objects.exists()


def test_open_mode_writes_are_attributed_to_an_anonymous_operator(api_client, open_mode):
    api_client.post("/api/v2/tenants", {"tenant_name": "Open", "tenant_type": "personal"}, format="json")
    assert _only_event().actor == "operator:anonymous"


# --- listing --------------------------------------------------------------------------------------------------


def test_list_filters_newest_first_and_pagination(operator_client):
    now = timezone.now()
    tenant = TenantFactory()
    a = AuditEventFactory(occurred_at=now - timedelta(hours=3), tenant_id=tenant.pk, actor="operator:alice",
                          action="agent.update", target_type="agent", target_id="agent_000000000001")
    b = AuditEventFactory(occurred_at=now - timedelta(hours=2), tenant_id=tenant.pk, actor="operator:Alice")
    c = AuditEventFactory(occurred_at=now - timedelta(hours=1), tenant_id="tenant_gone00000000")

    def ids(**params):
        body = operator_client.get(URL, params).json()
        assert body["success"], body
        return [item["id"] for item in body["data"]["items"]]

    assert ids() == [c.pk, b.pk, a.pk]
    assert ids(tenant_id=tenant.pk) == [b.pk, a.pk]
    assert ids(tenant_id="tenant_gone00000000") == [c.pk]
    assert ids(actor="operator:alice") == [a.pk]  # exact, case-sensitive on every database
    assert ids(action="agent.update", target_type="agent", target_id="agent_000000000001") == [a.pk]
    assert ids(since=(now - timedelta(hours=2)).isoformat()) == [c.pk, b.pk]
    assert ids(until=(now - timedelta(hours=2)).isoformat()) == [a.pk]
    page = operator_client.get(URL, {"page_size": 2, "page": 2}).json()["data"]
    assert [item["id"] for item in page["items"]] == [a.pk]
    assert page["pagination"]["total"] == 3 and page["pagination"]["has_prev"] is True
    body = operator_client.get(URL, {"tenant_id": tenant.pk}).json()
    assert body["tenant_id"] == tenant.pk and body["message"] == "Audit events listed"
    assert set(body["data"]["items"][0]) >= {"id", "occurred_at", "actor", "action", "target_type", "target_id",
                                              "tenant_id", "request_id", "changes"}


def test_list_refuses_bad_filters(operator_client):
    for params, field in (({"action": "tenant.explode"}, "action"), ({"since": "yesterday"}, "since"),
                          ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
                          ({"page_size": "0"}, "page_size")):
        body = operator_client.get(URL, params).json()
        assert body["error_code"] == "VALIDATION_ERROR" and field in body["data"]["errors"], (params, body)


def test_list_is_operator_only(api_client):
    assert api_client.get(URL).status_code == 401
    key = ApiKeyFactory(permissions=["chat", "config"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    assert api_client.get(URL).status_code == 403


def test_list_query_count_does_not_grow_with_the_page(operator_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    operator_client.get(URL)  # warm-up: the first request of a token may do one-off work

    def queries(n):
        AuditEvent.objects.all().delete()
        for _ in range(n):
            AuditEventFactory()
        with CaptureQueriesContext(connection) as captured:
            assert len(operator_client.get(URL, {"page_size": 50}).json()["data"]["items"]) == n
        return len(captured)

    assert queries(1) == queries(30)


def test_a_write_after_a_request_is_not_attributed_to_that_request(operator_client):
    from tenants.services import tenant_create

    operator_client.get(URL)
    tenant_create(tenant_name="Later", tenant_type="personal")
    event = _only_event()
    assert (event.actor, event.request_id) == ("system", None)


def test_cost_is_one_insert_per_write_and_nothing_on_bot_paths(operator_client, api_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    agent = AgentFactory()

    def audit_statements(call):
        with CaptureQueriesContext(connection) as captured:
            call()
        return [q["sql"].split()[0].upper() for q in captured.captured_queries
                if "audit_auditevent" in q["sql"] or "agentconfigversion" in q["sql"]]

    assert audit_statements(lambda: operator_client.put(f"/api/v2/tenants/{agent.tenant_id}",
                                                        {"description": "x"}, format="json")) == ["INSERT"]
    # a config write: its audit event and its version
    assert sorted(audit_statements(lambda: operator_client.patch(
        f"/api/v2/agents/{agent.pk}/config", {"persona": "P."}, format="json"))) == ["INSERT", "INSERT"]
    key = ApiKeyFactory(agent=agent, permissions=["heartbeat", "config"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    assert audit_statements(lambda: api_client.put("/api/v2/agent-activity", {
        "tenant_id": key.tenant_id, "agent_id": key.agent_id}, format="json")) == []
    assert audit_statements(lambda: api_client.post("/api/v2/auth/validate-api-key", {"api_key": key.raw_key},
                                                    format="json")) == []
