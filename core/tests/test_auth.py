"""Operator authentication and the auth modes (spec §1.13)."""

import pytest
from django.test import Client
from core.services import operator_token_issue
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_no_credential_is_401_with_challenge(api_client):
    response = api_client.get("/api/v2/tenants")
    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"
    assert response["WWW-Authenticate"] == 'Bearer realm="maimconfig"'


@pytest.mark.parametrize("scheme", ["Token", "Bearer", "token", "bearer"])
def test_token_and_bearer_schemes(operator_token, scheme):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {operator_token}")
    assert client.get("/api/v2/tenants").status_code == 200


def test_unknown_token_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef")
    response = api_client.get("/api/v2/tenants")
    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"


def test_inactive_user_token_is_401(operator, operator_client):
    operator.is_active = False
    operator.save()
    assert operator_client.get("/api/v2/tenants").status_code == 401


def test_non_staff_token_is_403(django_user_model):
    user = django_user_model.objects.create_user(username="bob", password="x")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {operator_token_issue(user=user)[1]}")
    response = client.get("/api/v2/tenants")
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert response.json()["tenant_id"] is None


def test_admin_session_works_and_enforces_csrf(operator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.get("/api/v2/tenants").status_code == 200
    response = client.post("/api/v2/tenants", {"tenant_name": "A", "tenant_type": "personal"},
                           content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    client.get("/admin/")  # renders a form with the CSRF token, which sets the cookie
    token = client.cookies["csrftoken"].value
    response = client.post("/api/v2/tenants", {"tenant_name": "A", "tenant_type": "personal"},
                           content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content


def test_open_mode_serves_without_credentials(api_client, open_mode):
    assert api_client.get("/api/v2/tenants").status_code == 200
    response = api_client.post("/api/v2/tenants", {"tenant_name": "Open", "tenant_type": "personal"}, format="json")
    assert response.status_code == 200


def test_open_mode_still_verifies_a_presented_credential(api_client, open_mode):
    api_client.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert api_client.get("/api/v2/tenants").status_code == 401


def test_invalid_auth_mode_stops_start_up():
    import os
    import subprocess
    import sys

    env = {**os.environ, "MAIMCONFIG_AUTH_MODE": "sometimes", "SECRET_KEY": "x",
           "DJANGO_SETTINGS_MODULE": "maimconfig.settings.base"}
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "MAIMCONFIG_AUTH_MODE" in result.stderr


def test_missing_secret_key_without_debug_refuses_to_start():
    """The service (WSGI app) and every command that could serve, sign or encrypt refuse to start;
    commands that only inspect the code (makemigrations --check) still run."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    env.update({"DEBUG": "false", "DJANGO_SETTINGS_MODULE": "maimconfig.settings.base", "SECRET_KEY": ""})
    for command in ([sys.executable, "manage.py", "migrate"], [sys.executable, "manage.py", "create_operator", "x"],
                    [sys.executable, "-c", "import maimconfig.wsgi"]):
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        assert result.returncode != 0, command
        assert "SECRET_KEY is not set" in result.stderr, command
    result = subprocess.run([sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
