"""Integrity errors that reach the exception handler (issue 15): a duplicate → 409 `CONFLICT`, a value the
database refuses → 400 `VALIDATION_ERROR`; never a 500, nothing stored. Real constraints of the real
database (SQLite, and MariaDB with DATABASE_URL=mysql://…)."""

import pytest
from django.test import Client

from activity.models import UsageLog
from tenants.models import Tenant

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("core.tests.urls_db_probe")]


@pytest.mark.parametrize("route", ["drf", "plain"])
def test_a_duplicate_is_a_409_conflict_and_nothing_is_stored(route):
    response = Client().post(f"/api/v2/probe/{route}/duplicate", content_type="application/json")
    body = response.json()
    assert response.status_code == 409 and body["error_code"] == "CONFLICT" and body["success"] is False
    assert "Twin" not in body["error"] and "UNIQUE" not in body["error"].upper()
    assert not Tenant.objects.filter(tenant_name="Twin").exists()  # the request's transaction rolled back


@pytest.mark.parametrize("route", ["drf", "plain"])
def test_a_refused_value_is_a_400_validation_error(route):
    response = Client().post(f"/api/v2/probe/{route}/check", content_type="application/json")
    body = response.json()
    assert response.status_code == 400 and body["error_code"] == "VALIDATION_ERROR"
    assert body["data"]["errors"] == {"non_field_errors": ["The database refused a value of this request."]}
    assert not UsageLog.objects.filter(action="").exists()
