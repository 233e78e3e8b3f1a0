from datetime import datetime, timedelta, timezone

import pytest

from metering.services import Increment, counters_add
from tenants.tests.factories import TenantFactory

NOW = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
URL = "/api/v2/usage/summary"


def _seed(tenant_id: str) -> None:
    yesterday = NOW - timedelta(days=1)
    counters_add(increments=[
        Increment(metric="validation.accepted", value=40, at=NOW, tenant_id=tenant_id, agent_id="agent_a"),
        Increment(metric="validation.refused", value=3, at=NOW, tenant_id=tenant_id, dimension="AUTH_003"),
        Increment(metric="validation.refused", value=1, at=yesterday, tenant_id=tenant_id, dimension="AUTH_004"),
        Increment(metric="chat.requests", value=5, at=NOW, tenant_id=tenant_id, agent_id="agent_a",
                  dimension="chat"),
        Increment(metric="chat.requests", value=2, at=yesterday, tenant_id=tenant_id, agent_id="agent_b",
                  dimension="openai"),
        # GPT-4o in the fallback catalogue: 5.0 in / 15.0 out per million tokens.
        Increment(metric="chat.tokens_in", value=200_000, at=NOW, tenant_id=tenant_id, agent_id="agent_a",
                  dimension="GPT-4o"),
        Increment(metric="chat.tokens_out", value=100_000, at=NOW, tenant_id=tenant_id, agent_id="agent_a",
                  dimension="GPT-4o"),
        Increment(metric="chat.tokens_in", value=999, at=NOW, tenant_id=tenant_id, agent_id="agent_a",
                  dimension="house-model"),
        Increment(metric="chat.upstream_errors", value=1, at=NOW, tenant_id=tenant_id, dimension="CHAT_002"),
        Increment(metric="chat.requests", value=60, at=NOW, tenant_id="tenant_other", agent_id="agent_z",
                  dimension="chat"),
        # Outside the default ranges.
        Increment(metric="chat.requests", value=1000, at=NOW - timedelta(days=40), tenant_id=tenant_id,
                  dimension="chat"),
    ])


@pytest.fixture
def seeded(settings, tmp_path):
    settings.MAIMBOT_MODEL_CONFIG_PATH = str(tmp_path / "absent.toml")  # the built-in fallback catalogue
    tenant = TenantFactory()
    _seed(tenant.id)
    return tenant


@pytest.mark.django_db
def test_daily_summary_of_one_tenant(operator_client, seeded):
    response = operator_client.get(URL, {"tenant_id": seeded.id})
    body = response.json()
    assert response.status_code == 200, body
    assert body["tenant_id"] == seeded.id and body["message"] == "Usage summarised"
    data = body["data"]
    assert data["granularity"] == "day" and len(data["series"]) == 30
    assert data["until"] == (NOW.replace(hour=0) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    totals = data["totals"]
    assert totals == {"validation_accepted": 40, "validation_refused": 4, "chat_requests": 7,
                      "tokens_in": 200_999, "tokens_out": 100_000, "upstream_errors": 1,
                      "estimated_cost": 2.5, "unpriced_tokens": 999}
    today, yesterday = data["series"][-1], data["series"][-2]
    assert (today["chat_requests"], yesterday["chat_requests"]) == (5, 2)
    assert (today["validation_refused"], yesterday["validation_refused"]) == (3, 1)
    assert today["estimated_cost"] == 2.5
    assert data["breakdowns"]["validation_refused_by_code"] == {"AUTH_003": 3, "AUTH_004": 1}
    assert data["breakdowns"]["chat_requests_by_route"] == {"chat": 5, "openai": 2}
    assert data["breakdowns"]["upstream_errors_by_code"] == {"CHAT_002": 1}
    assert [a["agent_id"] for a in data["top_agents"]] == ["agent_a", "agent_b"]
    assert data["top_agents"][0]["validations"] == 40 and data["top_agents"][0]["estimated_cost"] == 2.5
    assert [t["tenant_id"] for t in data["top_tenants"]] == [seeded.id]


@pytest.mark.django_db
def test_hourly_summary_of_the_fleet_and_of_an_agent(operator_client, seeded):
    data = operator_client.get(URL, {"granularity": "hour"}).json()["data"]
    assert len(data["series"]) == 48
    assert data["totals"]["chat_requests"] == 67
    assert [t["tenant_id"] for t in data["top_tenants"]] == ["tenant_other", seeded.id]
    agent = operator_client.get(URL, {"granularity": "hour", "agent_id": "agent_b"}).json()
    assert agent["tenant_id"] is None and agent["data"]["totals"]["chat_requests"] == 2


@pytest.mark.django_db
def test_explicit_range_is_aligned_on_whole_periods(operator_client, seeded):
    since = (NOW - timedelta(hours=1, minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = operator_client.get(URL, {"granularity": "hour", "since": since,
                                     "until": (NOW + timedelta(minutes=5)).isoformat()}).json()["data"]
    assert len(data["series"]) == 3
    assert data["totals"]["validation_accepted"] == 40


@pytest.mark.django_db
@pytest.mark.parametrize("query, path", [
    ({"granularity": "week"}, "granularity"),
    ({"since": "yesterday"}, "since"),
    ({"since": "2026-11-29T10:00:00Z", "until": "2026-11-29T10:00:00Z"}, "until"),
    ({"since": "2020-01-01T00:00:00Z", "granularity": "hour"}, "since"),
    ({"since": "2020-01-01T00:00:00Z", "until": "2022-01-01T00:00:00Z"}, "until"),
    ({"until": "9999-12-31T23:30:00Z"}, "until"),
    ({"until": "1000-01-01T00:30:00Z", "granularity": "hour"}, "until"),
    ({"since": "9999-12-31T23:00:00Z"}, "since"),
    ({"since": "1000-01-01T00:00:00Z", "granularity": "day"}, "since"),
])
def test_bad_input_is_a_400_in_the_envelope(operator_client, query, path):
    response = operator_client.get(URL, query)
    body = response.json()
    assert response.status_code == 400, body
    assert body["error_code"] == "VALIDATION_ERROR" and path in body["data"]["errors"]


@pytest.mark.django_db
def test_operators_only(api_client, django_user_model):
    assert api_client.get(URL).status_code == 401
    user = django_user_model.objects.create_user(username="u", password="pw-user-12345")
    api_client.force_authenticate(user)
    assert api_client.get(URL).status_code == 403
