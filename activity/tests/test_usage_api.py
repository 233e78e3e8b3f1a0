"""The usage log (spec §9): write (v1 and v2), list, summary."""

from datetime import datetime
from datetime import timezone as dt_timezone

import pytest
from rest_framework.test import APIClient

from activity.models import UsageLog
from activity.tests.factories import UsageLogFactory
from agents.tests.factories import AgentFactory
from tenants.tests.factories import TenantFactory

V1 = "/api/v1/usage/log"
V2 = "/api/v2/usage-logs"
SUMMARY = "/api/v2/usage-logs/summary"

pytestmark = pytest.mark.django_db


def utc(*args):
    return datetime(*args, tzinfo=dt_timezone.utc)


@pytest.mark.parametrize("url", [V1, V2, V1 + "/", V2 + "/"])
def test_operator_writes_an_entry(operator_client, url, clock):
    agent = AgentFactory()
    response = operator_client.post(url, {"tenant_id": agent.tenant_id, "agent_id": agent.id, "action": "login",
                                          "user_id": "u-1", "details": {"k": [1, 2]}}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    entry = UsageLog.objects.get()
    assert body["tenant_id"] == agent.tenant_id
    assert body["message"] == "Usage logged"
    assert body["data"] == {
        "id": entry.id, "tenant_id": agent.tenant_id, "agent_id": agent.id, "api_key_id": None,
        "user_id": "u-1", "action": "login", "details": {"k": [1, 2]},
        "timestamp": "2026-11-24T12:00:00.123456Z", "created_at": "2026-11-24T12:00:00.123456Z",
    }


def test_minimal_entry_and_client_timestamp(operator_client):
    response = operator_client.post(V2, {"action": "ping", "timestamp": "2026-11-20 08:00:00+02:00"}, format="json")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["tenant_id"] is None and data["agent_id"] is None and data["details"] is None
    assert data["timestamp"] == "2026-11-20T06:00:00.000000Z"
    assert response.json()["tenant_id"] is None


def test_agent_only_takes_its_tenant(operator_client):
    agent = AgentFactory()
    response = operator_client.post(V2, {"agent_id": agent.id, "action": "x"}, format="json")
    assert response.json()["data"]["tenant_id"] == agent.tenant_id


def test_action_is_trimmed(operator_client):
    response = operator_client.post(V2, {"action": "  ping  "}, format="json")
    assert response.json()["data"]["action"] == "ping"


@pytest.mark.parametrize("body, path", [
    ({}, "action"),
    ({"action": ""}, "action"),
    ({"action": "   "}, "action"),
    ({"action": "x" * 101}, "action"),
    ({"action": 5}, "action"),
    ({"action": "a", "details": [1]}, "details"),
    ({"action": "a", "details": "text"}, "details"),
    ({"action": "a", "details": {"big": "x" * 16400}}, "details"),
    ({"action": "a", "timestamp": "garbage"}, "timestamp"),
    ({"action": "a", "timestamp": "2026-11-24"}, "timestamp"),
    ({"action": "a", "timestamp": 1700000000}, "timestamp"),
    ({"action": "a", "user_id": "u" * 129}, "user_id"),
    ({"action": "a", "tenant_id": 12}, "tenant_id"),
])
def test_bad_input_is_400_and_writes_nothing(operator_client, body, path):
    for url in (V1, V2):
        response = operator_client.post(url, body, format="json")
        assert response.status_code == 400, (body, response.content)
        payload = response.json()
        assert payload["error_code"] == "VALIDATION_ERROR"
        assert path in payload["data"]["errors"]
    assert not UsageLog.objects.exists()


def test_details_limit_is_16_kib(operator_client):
    filler = "x" * (16 * 1024 - len('{"f":""}'))
    assert operator_client.post(V2, {"action": "a", "details": {"f": filler}}, format="json").status_code == 200
    assert operator_client.post(V2, {"action": "a", "details": {"f": filler + "x"}}, format="json").status_code == 400


def test_infinite_number_in_details_is_400_not_500(operator_client):
    for url in (V1, V2):
        response = operator_client.post(url, '{"action": "a", "details": {"n": -1e999}}',
                                        content_type="application/json")
        assert response.status_code == 400, response.content
        assert list(response.json()["data"]["errors"]) == ["details"]
    assert not UsageLog.objects.exists()


def test_non_object_body_is_400(operator_client):
    response = operator_client.post(V2, [1], format="json")
    assert response.status_code == 400
    assert not UsageLog.objects.exists()


def test_unknown_references_are_404_and_write_nothing(operator_client):
    agent = AgentFactory()
    response = operator_client.post(V2, {"tenant_id": "tenant_nope", "action": "a"}, format="json")
    assert response.status_code == 404 and response.json()["error_code"] == "TENANT_003"
    response = operator_client.post(V2, {"agent_id": "agent_nope", "action": "a"}, format="json")
    assert response.status_code == 404 and response.json()["error_code"] == "AGENT_004"
    response = operator_client.post(V2, {"tenant_id": TenantFactory().id, "agent_id": agent.id, "action": "a"},
                                    format="json")
    assert response.status_code == 404 and response.json()["error_code"] == "AGENT_004"
    assert not UsageLog.objects.exists()


def test_needs_a_credential(api_client):
    response = api_client.post(V1, {"action": "a"}, format="json")
    assert response.status_code == 401
    assert not UsageLog.objects.exists()


def test_form_body_is_415(operator_client):
    response = operator_client.post(V1, "action=a", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415


# --- agent keys ------------------------------------------------------------------------------------

def test_agent_key_write_is_one_insert(make_key, django_assert_num_queries):
    agent = AgentFactory()
    raw = make_key(agent)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.post(V2, {"action": "warm-up"}, format="json")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.post(V2, {"action": "message_sent", "details": {"n": 1}}, format="json")
    assert response.status_code == 200, response.content
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    ours = [q["sql"] for q in queries.captured_queries if "activity_usagelog" in q["sql"]]
    assert len(ours) == 1 and ours[0].upper().startswith("INSERT")
    # Everything else is authentication: the key read and its use count.
    assert statements.count("INSERT") == 1
    data = response.json()["data"]
    assert (data["tenant_id"], data["agent_id"]) == (agent.tenant_id, agent.id)
    assert data["api_key_id"].startswith("key_")


@pytest.mark.parametrize("url", [V1, V2])
def test_agent_key_in_body_and_scope(make_key, api_client, url):
    agent = AgentFactory()
    raw = make_key(agent)
    response = api_client.post(url, {"api_key": raw, "action": "a"}, format="json")
    assert response.status_code == 200, response.content
    other = AgentFactory(tenant=agent.tenant)
    response = api_client.post(url, {"api_key": raw, "action": "a", "agent_id": other.id}, format="json")
    assert response.status_code == 403
    response = api_client.post(url, {"api_key": raw, "action": "a", "tenant_id": other.tenant_id,
                                     "agent_id": agent.id}, format="json")
    assert response.status_code == 200
    assert UsageLog.objects.count() == 2


def test_agent_key_may_not_read(make_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_key(AgentFactory())}")
    assert client.get(V2).status_code == 403
    assert client.get(SUMMARY, {"tenant_id": "x"}).status_code == 403


# --- list ------------------------------------------------------------------------------------------

def test_list_filters_and_order(operator_client):
    a1 = AgentFactory()
    a2 = AgentFactory(tenant=a1.tenant)
    e1 = UsageLogFactory(agent=a1, action="login", timestamp=utc(2026, 11, 20, 10))
    e2 = UsageLogFactory(agent=a2, action="message_sent", timestamp=utc(2026, 11, 21, 10), user_id="u")
    e3 = UsageLogFactory(agent=a1, action="message_sent", timestamp=utc(2026, 11, 21, 10))
    e4 = UsageLogFactory(agent=None, tenant=None, action="login", timestamp=utc(2026, 11, 22, 10),
                         api_key_id="key_000000000001")

    def ids(params):
        body = operator_client.get(V2, params).json()
        return [i["id"] for i in body["data"]["items"]]

    assert ids({}) == [e4.id, e3.id, e2.id, e1.id]  # timestamp desc, then id desc
    assert ids({"tenant_id": a1.tenant_id}) == [e3.id, e2.id, e1.id]
    assert ids({"agent_id": a1.id}) == [e3.id, e1.id]
    assert ids({"action": "login"}) == [e4.id, e1.id]
    assert ids({"user_id": "u"}) == [e2.id]
    assert ids({"api_key_id": "key_000000000001"}) == [e4.id]
    assert ids({"since": "2026-11-21T10:00:00Z"}) == [e4.id, e3.id, e2.id]
    assert ids({"until": "2026-11-21T10:00:00Z"}) == [e1.id]
    assert ids({"since": "2026-11-21T00:00:00Z", "until": "2026-11-22T00:00:00Z"}) == [e3.id, e2.id]
    assert ids({"tenant_id": "tenant_nope"}) == []
    assert ids({"agent_id": "agent_nope"}) == []
    body = operator_client.get(V2, {"tenant_id": a1.tenant_id, "page_size": 2, "page": 2}).json()
    assert body["tenant_id"] == a1.tenant_id
    assert [i["id"] for i in body["data"]["items"]] == [e1.id]
    assert body["data"]["pagination"]["total"] == 3
    assert operator_client.get(V2, {"tenant_id": "tenant_nope"}).json()["tenant_id"] is None


@pytest.mark.parametrize("params, path", [
    ({"since": "nope"}, "since"),
    ({"until": "2026-11-24"}, "until"),
    ({"since": "2026-11-22T00:00:00Z", "until": "2026-11-21T00:00:00Z"}, "until"),
    ({"since": "2026-11-22T00:00:00Z", "until": "2026-11-22T00:00:00Z"}, "until"),
    ({"page_size": "0"}, "page_size"),
])
def test_list_bad_query(operator_client, params, path):
    response = operator_client.get(V2, params)
    assert response.status_code == 400
    assert path in response.json()["data"]["errors"]


def test_list_constant_queries(operator_client, assert_max_statements):
    tenant = TenantFactory()
    for _ in range(6):
        UsageLogFactory(agent=AgentFactory(tenant=tenant))
    with assert_max_statements(4):  # token, tenant exists, COUNT, page
        body = operator_client.get(V2, {"tenant_id": tenant.id}).json()
    assert len(body["data"]["items"]) == 6


# --- summary ---------------------------------------------------------------------------------------

@pytest.fixture
def known_entries():
    """A fixed data set: tenant T (agents A, B) and another tenant."""
    a = AgentFactory()
    b = AgentFactory(tenant=a.tenant)
    other = AgentFactory()
    rows = [
        (a, "message_sent", utc(2026, 11, 22, 0, 0, 0)),
        (a, "message_sent", utc(2026, 11, 22, 23, 59, 59)),
        (b, "message_sent", utc(2026, 11, 22, 12)),
        (a, "login", utc(2026, 11, 24, 1)),
        (b, "login", utc(2026, 11, 24, 2)),
        (b, "message_sent", utc(2026, 11, 24, 3)),
        (a, "message_sent", utc(2026, 11, 19, 23, 59, 59)),  # before the range
        (a, "message_sent", utc(2026, 11, 25, 0, 0, 0)),  # at `until`: excluded
        (other, "message_sent", utc(2026, 11, 23)),  # another tenant
    ]
    for agent, action, ts in rows:
        UsageLogFactory(agent=agent, action=action, timestamp=ts)
    return a, b, other


RANGE = {"since": "2026-11-20T00:00:00Z", "until": "2026-11-25T00:00:00Z"}


def test_summary_for_a_tenant(operator_client, known_entries, assert_max_statements):
    a, _, _ = known_entries
    with assert_max_statements(4):  # token, GROUP BY action, GROUP BY day, tenant exists
        response = operator_client.get(SUMMARY, {"tenant_id": a.tenant_id, **RANGE})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["tenant_id"] == a.tenant_id
    assert body["data"] == {
        "range": {"since": "2026-11-20T00:00:00.000000Z", "until": "2026-11-25T00:00:00.000000Z"},
        "by_action": [{"action": "message_sent", "count": 4}, {"action": "login", "count": 2}],
        "by_day": [{"date": "2026-11-22", "count": 3}, {"date": "2026-11-24", "count": 3}],
        "total": 6,
    }


def test_summary_for_an_agent_and_both(operator_client, known_entries):
    a, b, _ = known_entries
    data = operator_client.get(SUMMARY, {"agent_id": b.id, **RANGE}).json()["data"]
    assert data["by_action"] == [{"action": "message_sent", "count": 2}, {"action": "login", "count": 1}]
    assert data["by_day"] == [{"date": "2026-11-22", "count": 1}, {"date": "2026-11-24", "count": 2}]
    assert data["total"] == 3
    data = operator_client.get(SUMMARY, {"agent_id": a.id, "tenant_id": a.tenant_id, **RANGE}).json()["data"]
    assert data["total"] == 3
    assert data["by_action"] == [{"action": "message_sent", "count": 2}, {"action": "login", "count": 1}]
    # ties: count desc then action asc
    data = operator_client.get(SUMMARY, {"agent_id": a.id, "since": "2026-11-22T12:00:00Z",
                                         "until": "2026-11-25T00:00:00Z"}).json()["data"]
    assert data["by_action"] == [{"action": "login", "count": 1}, {"action": "message_sent", "count": 1}]


def test_summary_unknown_ids_are_zero(operator_client, known_entries):
    for params in ({"tenant_id": "tenant_nope"}, {"agent_id": "agent_nope"}):
        body = operator_client.get(SUMMARY, {**params, **RANGE}).json()
        assert body["success"] is True and body["tenant_id"] is None
        assert body["data"]["total"] == 0 and body["data"]["by_action"] == [] and body["data"]["by_day"] == []


def test_summary_default_range_is_seven_days_to_now(operator_client, clock):
    tenant = TenantFactory()
    UsageLogFactory(agent=AgentFactory(tenant=tenant), timestamp=utc(2026, 11, 17, 12, 0, 1))
    UsageLogFactory(agent=AgentFactory(tenant=tenant), timestamp=utc(2026, 11, 17, 11))
    data = operator_client.get(SUMMARY, {"tenant_id": tenant.id}).json()["data"]
    assert data["range"] == {"since": "2026-11-17T12:00:00.123456Z", "until": "2026-11-24T12:00:00.123456Z"}
    assert data["total"] == 1
    data = operator_client.get(SUMMARY, {"tenant_id": tenant.id, "until": "2026-11-18T00:00:00Z"}).json()["data"]
    assert data["range"]["since"] == "2026-11-11T00:00:00.000000Z" and data["total"] == 2


@pytest.mark.parametrize("params, path", [
    ({}, "tenant_id"),
    ({"tenant_id": "t", "since": "2026-11-25T00:00:00Z", "until": "2026-11-25T00:00:00Z"}, "until"),
    ({"tenant_id": "t", "since": "2026-11-26T00:00:00Z", "until": "2026-11-25T00:00:00Z"}, "until"),
    ({"tenant_id": "t", "since": "2025-01-01T00:00:00Z", "until": "2026-01-03T00:00:00Z"}, "until"),
    ({"tenant_id": "t", "since": "2020-01-01T00:00:00Z"}, "since"),
    ({"tenant_id": "t", "since": "2999-01-01T00:00:00Z"}, "since"),
    ({"tenant_id": "t", "since": "bad"}, "since"),
])
def test_summary_bad_range_is_400(operator_client, params, path):
    response = operator_client.get(SUMMARY, params)
    assert response.status_code == 400, response.content
    assert list(response.json()["data"]["errors"]) == [path]


def test_years_before_1000_are_a_400_not_a_500(operator_client):
    """Dates print as four-digit years (spec §1.9); earlier years are refused on input."""
    response = operator_client.get(SUMMARY, {"tenant_id": "t", "until": "0001-01-02T00:00:00Z"})
    assert response.status_code == 400
    assert list(response.json()["data"]["errors"]) == ["until"]
    response = operator_client.get(SUMMARY, {"tenant_id": "t", "until": "1000-01-08T00:00:00Z"})
    assert response.status_code == 200, response.content
    assert response.json()["data"]["total"] == 0


def test_summary_366_days_is_allowed(operator_client):
    response = operator_client.get(SUMMARY, {"tenant_id": "t", "since": "2025-01-01T00:00:00Z",
                                             "until": "2026-01-02T00:00:00Z"})
    assert response.status_code == 200


def test_agent_delete_keeps_entries_with_null_agent(operator_client):
    entry = UsageLogFactory()
    entry.agent.delete()
    entry.refresh_from_db()
    assert entry.agent_id is None and entry.tenant_id is not None
    entry.tenant.delete()
    assert not UsageLog.objects.exists()


def test_timestamp_before_year_1000_is_refused_and_nothing_written(operator_client):
    from activity.models import UsageLog

    response = operator_client.post(V2, {"action": "x", "timestamp": "0292-08-08T12:49:43Z"}, format="json")
    assert response.status_code == 400 and "timestamp" in response.json()["data"]["errors"]
    assert UsageLog.objects.count() == 0
