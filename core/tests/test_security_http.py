"""Issue 12, items 10, 11 and the Host half of 17: races with a delete, Django-level 400s in the §1.6 shape,
and a disallowed Host logged at WARNING."""

import logging

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework.views import APIView

from agents.models import Agent
from apikeys.tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def delete_agent_after_verification(monkeypatch):
    """Delete the key's agent once authentication has verified the key, before the view runs."""
    original = APIView.check_permissions

    def check_then_delete(self, request):
        original(self, request)
        auth = getattr(request, "_auth", None)
        if getattr(auth, "is_agent_key", False):
            Agent.objects.filter(pk=auth.agent_id).delete()

    monkeypatch.setattr(APIView, "check_permissions", check_then_delete)


@pytest.mark.mariadb  # SQLite checks foreign keys at commit, and its IMMEDIATE request transaction excludes the race
def test_usage_log_of_an_agent_deleted_after_verification_is_a_404(delete_agent_after_verification):
    key = ApiKeyFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    response = client.post("/api/v1/usage/log", {"action": "late"}, format="json")
    assert response.status_code == 404, response.content
    assert response.json()["error_code"] == "AGENT_004"


def test_vanished_agent_maps_only_foreign_key_failures_of_agent_key_requests():
    from django.db import IntegrityError

    from core.races import vanished_agent

    class Auth:
        is_agent_key = True

    class Request:
        _auth = Auth()

    fk = IntegrityError(1452, "Cannot add or update a child row: a foreign key constraint fails")
    assert vanished_agent(fk, Request()).code.value == "AGENT_004"
    assert vanished_agent(IntegrityError("FOREIGN KEY constraint failed"), Request()).status == 404
    assert vanished_agent(IntegrityError(1062, "Duplicate entry"), Request()) is None
    Request._auth = None  # an operator request: a foreign key failure there is not "the agent vanished"
    assert vanished_agent(fk, Request()) is None


# --- item 11: Django-level validation errors follow §1.6 -----------------------------------------------------

def test_disallowed_host_error_is_path_colon_message(operator_client):
    response = operator_client.get("/api/v2/tenants", HTTP_HOST="evil.example")
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "VALIDATION_ERROR"
    path, messages = next(iter(body["data"]["errors"].items()))
    assert path == "non_field_errors"
    assert body["error"] == f"{path}: {messages[0]}"
    assert "evil.example" not in response.content.decode()


# --- item 17 (Host half): a bad Host is a WARNING --------------------------------------------------------

def test_disallowed_host_is_logged_at_warning_not_error(api_client):
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("django.security.DisallowedHost")
    handler = Collect()
    logger.addHandler(handler)
    try:
        response = api_client.get("/health", HTTP_HOST="evil.example")
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 400
    assert records, "the disallowed Host was not logged"
    assert {r.levelno for r in records} == {logging.WARNING}
