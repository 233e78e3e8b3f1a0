"""N concurrent validations add exactly N to usage_count (spec §1.15), on a real MariaDB."""

import threading

import pytest
from django.db import connection
from django.test import Client

from apikeys.models import ApiKey
from apikeys.tests.factories import ApiKeyFactory

THREADS = 8
PER_THREAD = 25


def _hammer(raw_key: str, results: list, barrier: threading.Barrier):
    client = Client()
    barrier.wait()
    try:
        for _ in range(PER_THREAD):
            r = client.post("/api/v2/auth/validate-api-key", {"api_key": raw_key}, content_type="application/json")
            results.append((r.status_code, r.json()["success"], r.json()["data"]["usage_count"]))
    finally:
        connection.close()


def _run_threads(raw_key: str) -> list:
    results: list = []
    barrier = threading.Barrier(THREADS)
    threads = [threading.Thread(target=_hammer, args=(raw_key, results, barrier)) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_validations_count_exactly_on_mariadb():
    key = ApiKeyFactory(usage_count=5)
    results = _run_threads(key.raw_key)
    assert len(results) == THREADS * PER_THREAD
    assert all(status == 200 and success for status, success, _ in results)
    total = THREADS * PER_THREAD
    assert ApiKey.objects.get(pk=key.pk).usage_count == 5 + total
    assert all(6 <= count <= 5 + total for _, _, count in results)


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_name_give_one_key_and_409s(settings):
    from agents.tests.factories import AgentFactory
    from apikeys.services import apikey_create
    from core.exceptions import ApplicationError

    agent = AgentFactory()
    outcomes: list = []
    barrier = threading.Barrier(THREADS)

    def create(i):
        barrier.wait()
        try:
            apikey_create(agent_id=agent.id, name="Same Name" if i % 2 else "same name")
            outcomes.append("ok")
        except ApplicationError as exc:
            outcomes.append(exc.code.value)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["KEY_002"] * (THREADS - 1) + ["ok"]
    assert ApiKey.objects.filter(agent=agent).count() == 1
