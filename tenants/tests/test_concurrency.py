"""Two concurrent creates of one name: one 200, one 409, never a 500 (real transactions, MariaDB)."""

import pytest

from core.testing import run_concurrently, token_client
from tenants.models import Tenant


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_name(operator_token):
    statuses = run_concurrently(4, lambda i: token_client(operator_token).post(
        "/api/v2/tenants", {"tenant_name": "Racer", "tenant_type": "personal"}, format="json").status_code)
    assert sorted(statuses) == [200, 409, 409, 409]
    assert Tenant.objects.filter(name_key="racer").count() == 1
