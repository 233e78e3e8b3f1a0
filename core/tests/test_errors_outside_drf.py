"""A domain error raised outside DRF keeps what it carries: status override, tenant, message, headers."""

import pytest
from django.test import Client

from core.errors import ErrorCode

pytestmark = [pytest.mark.django_db, pytest.mark.urls("core.tests.urls_error_probe")]


def test_status_override_tenant_and_headers_survive():
    response = Client().get("/api/v2/probe/refused")
    assert response.status_code == 409 and response["X-Probe"] == "1"
    body = response.json()
    assert (body["success"], body["error_code"], body["tenant_id"]) == (False, "ACTIVITY_002", "tenant_abc")
    assert body["error"] == "Tenant 'tenant_abc' is not active."
    assert body["message"] == ErrorCode.ACTIVITY_002.spec.message


def test_401_and_403_carry_no_tenant():
    response = Client().get("/api/v2/probe/unauthenticated")
    assert response.status_code == 401 and "WWW-Authenticate" in response
    assert response.json()["tenant_id"] is None
