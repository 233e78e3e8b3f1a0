"""Concurrent heartbeats on MariaDB: one row per agent, never an error, the last write wins."""

import pytest
from rest_framework.test import APIClient

from core.testing import run_concurrently

from activity.models import AgentActivity
from agents.tests.factories import AgentFactory

URL = "/api/v2/agent-activity"


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_heartbeats_make_one_row(operator_token):
    agent = AgentFactory()

    def beat(index):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {operator_token}")
        statuses = []
        for round_ in range(5):
            response = client.put(URL, {"tenant_id": agent.tenant_id, "agent_id": agent.id,
                                        "ttl_seconds": 100 + index}, format="json")
            statuses.append(response.status_code)
        return statuses

    results = run_concurrently(12, beat)
    assert all(status == 200 for statuses in results for status in statuses), results
    rows = list(AgentActivity.objects.filter(agent_id=agent.id))
    assert len(rows) == 1
    assert 100 <= rows[0].ttl_seconds < 112
    # The last write wins.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {operator_token}")
    client.put(URL, {"tenant_id": agent.tenant_id, "agent_id": agent.id, "ttl_seconds": 7}, format="json")
    assert AgentActivity.objects.get(agent_id=agent.id).ttl_seconds == 7


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_heartbeats_of_many_agents(operator_token):
    agents = [AgentFactory() for _ in range(4)]

    def beat(index):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {operator_token}")
        agent = agents[index % len(agents)]
        return client.put(URL, {"tenant_id": agent.tenant_id, "agent_id": agent.id}, format="json").status_code

    assert run_concurrently(16, beat) == [200] * 16
    assert AgentActivity.objects.count() == 4
