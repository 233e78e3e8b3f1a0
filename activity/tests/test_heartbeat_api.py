"""PUT/GET/DELETE /api/v2/agent-activity (spec §7)."""

import pytest

from activity.models import AgentActivity
from activity.tests.factories import AgentActivityFactory
from agents.models import Agent
from agents.tests.factories import AgentFactory
from tenants.models import Tenant
from tenants.tests.factories import TenantFactory

URL = "/api/v2/agent-activity"

# The heartbeat view runs outside the request transaction; DRF marks an enclosing test transaction as
# broken on an error answer, so these tests run without one (transactional_db).
pytestmark = pytest.mark.django_db(transaction=True)


def heartbeat(client, **body):
    return client.put(URL, body, format="json")


def test_heartbeat_creates_then_updates_one_row(operator_client, clock):
    agent = AgentFactory()
    response = heartbeat(operator_client, tenant_id=agent.tenant_id, agent_id=agent.id, ttl_seconds=60)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["success"] is True
    assert body["tenant_id"] == agent.tenant_id
    assert body["data"] == {
        "tenant_id": agent.tenant_id,
        "agent_id": agent.id,
        "last_seen_at": "2026-11-24T12:00:00.123456Z",
        "ttl_seconds": 60,
        "expires_at": "2026-11-24T12:01:00.123456Z",
        "online": True,
    }
    clock.advance(seconds=30)
    response = heartbeat(operator_client, tenant_id=agent.tenant_id, agent_id=agent.id)
    assert response.json()["data"]["ttl_seconds"] == 300
    row = AgentActivity.objects.get()
    assert row.agent_id == agent.id and row.ttl_seconds == 300
    assert row.expires_at.isoformat() == "2026-11-24T12:05:30.123456+00:00"


def test_heartbeat_trailing_slash(operator_client):
    agent = AgentFactory()
    response = operator_client.put(URL + "/", {"tenant_id": agent.tenant_id, "agent_id": agent.id}, format="json")
    assert response.status_code == 200


def test_heartbeat_runs_at_most_two_statements(operator_client, django_assert_max_num_queries):
    agent = AgentFactory()
    heartbeat(operator_client, tenant_id=agent.tenant_id, agent_id=agent.id)
    # Authentication (the operator token) + the one upsert statement.
    with django_assert_max_num_queries(2):
        response = heartbeat(operator_client, tenant_id=agent.tenant_id, agent_id=agent.id, ttl_seconds=10)
    assert response.status_code == 200


def test_heartbeat_service_is_one_statement_on_success(django_assert_num_queries):
    from activity.services import activity_heartbeat

    agent = AgentFactory()
    with django_assert_num_queries(1):
        activity_heartbeat(tenant_id=agent.tenant_id, agent_id=agent.id, ttl_seconds=5)
    with django_assert_num_queries(1):
        activity_heartbeat(tenant_id=agent.tenant_id, agent_id=agent.id, ttl_seconds=6)
    assert AgentActivity.objects.get().ttl_seconds == 6


@pytest.mark.parametrize("ttl", [0, -1, 604801, "300", 1.5, True, None])
def test_heartbeat_bad_ttl_is_400_and_writes_nothing(operator_client, ttl):
    agent = AgentFactory()
    response = heartbeat(operator_client, tenant_id=agent.tenant_id, agent_id=agent.id, ttl_seconds=ttl)
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    assert "ttl_seconds" in body["data"]["errors"]
    assert not AgentActivity.objects.exists()


@pytest.mark.parametrize("ttl", [1, 604800])
def test_heartbeat_ttl_bounds_accepted(operator_client, ttl):
    agent = AgentFactory()
    response = heartbeat(operator_client, tenant_id=agent.tenant_id, agent_id=agent.id, ttl_seconds=ttl)
    assert response.status_code == 200
    assert response.json()["data"]["ttl_seconds"] == ttl


def test_heartbeat_missing_ids_is_400(operator_client):
    response = heartbeat(operator_client)
    assert response.status_code == 400
    assert set(response.json()["data"]["errors"]) == {"tenant_id", "agent_id"}
    response = heartbeat(operator_client, tenant_id=1, agent_id=["x"])
    assert response.status_code == 400
    assert set(response.json()["data"]["errors"]) == {"tenant_id", "agent_id"}


def test_heartbeat_non_object_body_is_400(operator_client):
    response = operator_client.put(URL, [1, 2], format="json")
    assert response.status_code == 400
    response = operator_client.put(URL, b"{nope", content_type="application/json")
    assert response.status_code == 400
    assert not AgentActivity.objects.exists()


def _refusal(response, status, reason):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error_code"] == "ACTIVITY_002"
    assert body["data"] == {"reason": reason}
    assert body["success"] is False
    assert not AgentActivity.objects.exists()
    return body


def test_heartbeat_unknown_tenant(operator_client):
    agent = AgentFactory()
    body = _refusal(heartbeat(operator_client, tenant_id="tenant_000000000999", agent_id=agent.id),
                    404, "tenant_not_found")
    assert body["tenant_id"] is None


def test_heartbeat_unknown_agent(operator_client):
    tenant = TenantFactory()
    _refusal(heartbeat(operator_client, tenant_id=tenant.id, agent_id="agent_nope"), 404, "agent_not_found")


def test_heartbeat_agent_of_another_tenant(operator_client):
    agent = AgentFactory()
    other = TenantFactory()
    _refusal(heartbeat(operator_client, tenant_id=other.id, agent_id=agent.id), 404, "agent_tenant_mismatch")


@pytest.mark.parametrize("status", [Tenant.Status.INACTIVE, Tenant.Status.SUSPENDED])
def test_heartbeat_inactive_tenant(operator_client, status):
    agent = AgentFactory(tenant=TenantFactory(status=status))
    _refusal(heartbeat(operator_client, tenant_id=agent.tenant_id, agent_id=agent.id), 409, "tenant_not_active")


@pytest.mark.parametrize("status", [Agent.Status.INACTIVE, Agent.Status.ARCHIVED])
def test_heartbeat_inactive_or_archived_agent(operator_client, status):
    agent = AgentFactory(status=status)
    _refusal(heartbeat(operator_client, tenant_id=agent.tenant_id, agent_id=agent.id), 409, "agent_not_active")


def test_heartbeat_needs_a_credential(api_client):
    agent = AgentFactory()
    response = heartbeat(api_client, tenant_id=agent.tenant_id, agent_id=agent.id)
    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"
    assert not AgentActivity.objects.exists()


def test_heartbeat_open_mode_without_credential(api_client, open_mode):
    agent = AgentFactory()
    assert heartbeat(api_client, tenant_id=agent.tenant_id, agent_id=agent.id).status_code == 200


def test_heartbeat_non_json_is_415(operator_client):
    response = operator_client.put(URL, "tenant_id=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


# --- expiry with a controlled clock -----------------------------------------------------------------

def test_agent_goes_offline_after_ttl(operator_client, clock):
    agent = AgentFactory()
    heartbeat(operator_client, tenant_id=agent.tenant_id, agent_id=agent.id, ttl_seconds=60)
    clock.advance(seconds=59)
    items = operator_client.get(URL).json()["data"]["items"]
    assert [(i["agent_id"], i["online"]) for i in items] == [(agent.id, True)]
    clock.advance(seconds=1)  # expires_at == now: offline (online only while expires_at > now)
    assert operator_client.get(URL).json()["data"]["items"] == []
    items = operator_client.get(URL, {"include_offline": "true"}).json()["data"]["items"]
    assert [(i["agent_id"], i["online"]) for i in items] == [(agent.id, False)]
    # A new heartbeat brings it back.
    heartbeat(operator_client, tenant_id=agent.tenant_id, agent_id=agent.id, ttl_seconds=60)
    assert operator_client.get(URL).json()["data"]["items"][0]["online"] is True


# --- list ------------------------------------------------------------------------------------------

def test_list_filters_order_and_pagination(operator_client, clock):
    tenant = TenantFactory()
    agents = [AgentFactory(tenant=tenant) for _ in range(3)]
    other = AgentFactory()
    for agent in [*agents, other]:
        clock.advance(seconds=1)
        heartbeat(operator_client, tenant_id=agent.tenant_id, agent_id=agent.id)
    body = operator_client.get(URL, {"tenant_id": tenant.id, "page_size": 2}).json()
    assert body["tenant_id"] == tenant.id
    assert [i["agent_id"] for i in body["data"]["items"]] == [agents[2].id, agents[1].id]
    assert body["data"]["pagination"] == {"page": 1, "page_size": 2, "total": 3, "total_pages": 2,
                                          "has_next": True, "has_prev": False}
    body = operator_client.get(URL, {"tenant_id": tenant.id, "page_size": 2, "page": 2}).json()
    assert [i["agent_id"] for i in body["data"]["items"]] == [agents[0].id]
    body = operator_client.get(URL, {"agent_id": other.id}).json()
    assert [i["agent_id"] for i in body["data"]["items"]] == [other.id]
    assert body["tenant_id"] is None


def test_list_ties_broken_by_agent_id_desc(operator_client, clock):
    tenant = TenantFactory()
    ids = sorted(AgentFactory(tenant=tenant).id for _ in range(3))
    for agent_id in ids:
        heartbeat(operator_client, tenant_id=tenant.id, agent_id=agent_id)
    items = operator_client.get(URL).json()["data"]["items"]
    assert [i["agent_id"] for i in items] == sorted(ids, reverse=True)


def test_list_unknown_filters_give_empty_list(operator_client):
    AgentActivityFactory()
    for params in ({"tenant_id": "tenant_nope"}, {"agent_id": "agent_nope"}):
        body = operator_client.get(URL, params).json()
        assert body["success"] is True
        assert body["data"]["items"] == [] and body["data"]["pagination"]["total"] == 0
        assert body["tenant_id"] is None


@pytest.mark.parametrize("params", [{"include_offline": "yes"}, {"page": "0"}, {"page_size": "101"},
                                    {"size": "abc"}])
def test_list_bad_query_is_400(operator_client, params):
    response = operator_client.get(URL, params)
    assert response.status_code == 400
    assert set(response.json()["data"]["errors"]) == set(params)


def test_list_is_constant_queries(operator_client, django_assert_max_num_queries):
    for _ in range(5):
        AgentActivityFactory()
    # token + tenant check (skipped without tenant filter) + COUNT + page
    with django_assert_max_num_queries(3):
        response = operator_client.get(URL)
    assert len(response.json()["data"]["items"]) == 5


def test_list_is_operator_only(api_client, django_user_model):
    from core.services import operator_token_issue

    user = django_user_model.objects.create_user(username="plain", password="x")
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {operator_token_issue(user=user)[1]}")
    assert api_client.get(URL).status_code == 403


# --- go offline ------------------------------------------------------------------------------------

def test_go_offline(operator_client, clock):
    agent = AgentFactory()
    heartbeat(operator_client, tenant_id=agent.tenant_id, agent_id=agent.id)
    response = operator_client.delete(f"{URL}?agent_id={agent.id}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["data"] == {"tenant_id": agent.tenant_id, "agent_id": agent.id, "was_online": True,
                            "offline_at": "2026-11-24T12:00:00.123456Z"}
    assert body["tenant_id"] == agent.tenant_id
    assert not AgentActivity.objects.exists()
    # Idempotent.
    response = operator_client.delete(f"{URL}?agent_id={agent.id}&tenant_id={agent.tenant_id}")
    assert response.status_code == 200
    assert response.json()["data"]["was_online"] is False


def test_go_offline_expired_row_was_not_online(operator_client, clock):
    agent = AgentFactory()
    heartbeat(operator_client, tenant_id=agent.tenant_id, agent_id=agent.id, ttl_seconds=5)
    clock.advance(seconds=10)
    assert operator_client.delete(f"{URL}?agent_id={agent.id}").json()["data"]["was_online"] is False
    assert not AgentActivity.objects.exists()


def test_go_offline_errors(operator_client):
    agent = AgentFactory()
    AgentActivityFactory(agent=agent)
    response = operator_client.delete(URL)
    assert response.status_code == 400 and "agent_id" in response.json()["data"]["errors"]
    response = operator_client.delete(f"{URL}?agent_id=agent_nope")
    assert response.status_code == 404 and response.json()["data"] == {"reason": "agent_not_found"}
    response = operator_client.delete(f"{URL}?agent_id={agent.id}&tenant_id={TenantFactory().id}")
    assert response.status_code == 404 and response.json()["data"] == {"reason": "agent_tenant_mismatch"}
    assert AgentActivity.objects.count() == 1


def test_wrong_method_is_405(operator_client):
    response = operator_client.post(URL, {}, format="json")
    assert response.status_code == 405
    assert response.json()["error_code"] == "METHOD_NOT_ALLOWED"


def test_list_statements(operator_client, assert_max_statements):
    """The activity list of a tenant: the page alone when it tells the total and shows the tenant."""
    from activity.services import activity_upsert
    from agents.tests.factories import AgentFactory

    agent = AgentFactory()
    activity_upsert(agent=agent, ttl_seconds=60)
    with assert_max_statements(2) as context:  # the operator token + the page
        response = operator_client.get("/api/v2/agent-activity", {"tenant_id": agent.tenant_id})
    body = response.json()
    assert body["tenant_id"] == agent.tenant_id and body["data"]["total"] == 1
    assert body["data"]["items"][0]["agent_id"] == agent.pk
    assert not any("COUNT" in q["sql"].upper() for q in context.captured_queries)
