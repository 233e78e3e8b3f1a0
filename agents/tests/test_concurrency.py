"""Races on MariaDB with real transactions: duplicate names and concurrent config merges."""

import pytest
from core.testing import run_concurrently, token_client

from agents.models import Agent
from tenants.tests.factories import TenantFactory


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_name(operator_token):
    tenant = TenantFactory()
    names = ["Racer", "racer"]
    statuses = run_concurrently(2, lambda i: token_client(operator_token).post(
        "/api/v2/agents", {"tenant_id": tenant.pk, "name": names[i]}, format="json").status_code)
    assert sorted(statuses) == [200, 409]
    assert Agent.objects.filter(tenant=tenant, name_key="racer").count() == 1


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_many_concurrent_creates_never_500(operator_token):
    tenant = TenantFactory()
    statuses = run_concurrently(6, lambda i: token_client(operator_token).post(
        "/api/v2/agents", {"tenant_id": tenant.pk, "name": "Same"}, format="json").status_code)
    assert sorted(statuses) == [200] + [409] * 5


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_renames_into_one_name(operator_token):
    tenant = TenantFactory()
    a = token_client(operator_token).post("/api/v2/agents", {"tenant_id": tenant.pk, "name": "a"}, format="json")
    b = token_client(operator_token).post("/api/v2/agents", {"tenant_id": tenant.pk, "name": "b"}, format="json")
    ids = [a.json()["data"]["id"], b.json()["data"]["id"]]
    statuses = run_concurrently(2, lambda i: token_client(operator_token).patch(
        f"/api/v2/agents/{ids[i]}", {"name": "Target"}, format="json").status_code)
    assert sorted(statuses) == [200, 409]


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_config_merges_lose_nothing(operator_token):
    tenant = TenantFactory()
    created = token_client(operator_token).post("/api/v2/agents", {"tenant_id": tenant.pk, "name": "m"}, format="json")
    agent_id = created.json()["data"]["id"]
    sections = ["tool", "voice", "jargon", "relationship", "telemetry", "response_post_process"]
    fields = {"tool": "enable_tool", "voice": "enable_asr", "jargon": "all_global",
              "relationship": "enable_relationship", "telemetry": "enable",
              "response_post_process": "enable_response_post_process"}
    statuses = run_concurrently(len(sections), lambda i: token_client(operator_token).patch(
        f"/api/v2/agents/{agent_id}/config", {"config_overrides": {sections[i]: {fields[sections[i]]: True}}},
        format="json").status_code)
    assert statuses == [200] * len(sections)
    stored = Agent.objects.get(pk=agent_id).config["config_overrides"]
    assert set(stored) == set(sections)
