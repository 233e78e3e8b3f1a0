"""Two concurrent creates of one name: one 200, one 409, never a 500 (real transactions, MariaDB)."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tenants.models import Tenant


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_name(operator_token):
    statuses: list[int] = []
    barrier = threading.Barrier(4)

    def create():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {operator_token}")
        barrier.wait()
        try:
            statuses.append(client.post("/api/v2/tenants", {"tenant_name": "Racer", "tenant_type": "personal"},
                                        format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409, 409, 409]
    assert Tenant.objects.filter(name_key="racer").count() == 1
