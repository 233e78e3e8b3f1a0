"""N concurrent validations add exactly N to usage_count (spec §1.15), on a real MariaDB."""

import pytest
from django.test import Client

from apikeys import redisstate
from apikeys.models import ApiKey
from apikeys.tests.factories import ApiKeyFactory
from apikeys.usage import flush_pending, shown
from core.testing import run_concurrently

THREADS = 8
PER_THREAD = 25


def _run_threads(raw_key: str) -> list:
    def hammer(_index):
        client = Client()
        results = []
        for _ in range(PER_THREAD):
            r = client.post("/api/v2/auth/validate-api-key", {"api_key": raw_key}, content_type="application/json")
            results.append((r.status_code, r.json()["success"], r.json()["data"]["usage_count"]))
        return results

    return [result for batch in run_concurrently(THREADS, hammer) for result in batch]


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_validations_count_exactly_on_mariadb():
    key = ApiKeyFactory(usage_count=5)
    results = _run_threads(key.raw_key)
    assert len(results) == THREADS * PER_THREAD
    assert all(status == 200 and success for status, success, _ in results)
    total = THREADS * PER_THREAD
    assert shown(key.pk)[0] == 5 + total  # stored + pending (with Redis)
    flush_pending()
    assert shown(key.pk)[0] == 5 + total
    if redisstate.enabled():  # write-behind: after a flush the database holds every use
        assert ApiKey.objects.get(pk=key.pk).usage_count == 5 + total
    assert all(6 <= count <= 5 + total for _, _, count in results)


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_name_give_one_key_and_409s(settings):
    from agents.tests.factories import AgentFactory
    from apikeys.services import apikey_create
    from core.exceptions import ApplicationError

    agent = AgentFactory()

    def create(i):
        try:
            apikey_create(agent_id=agent.id, name="Same Name" if i % 2 else "same name")
            return "ok"
        except ApplicationError as exc:
            return exc.code.value

    outcomes = run_concurrently(THREADS, create)
    assert sorted(outcomes) == ["KEY_002"] * (THREADS - 1) + ["ok"]
    assert ApiKey.objects.filter(agent=agent).count() == 1
