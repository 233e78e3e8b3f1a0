"""The recording layer: masking, diffs, actors, one event in the write's transaction."""

import json

import pytest
from django.db import transaction

from audit.models import AuditEvent
from audit.services import MASK, audit_purge, audit_record, changes_between, is_secret_name, redact
from audit.tests.factories import AuditEventFactory
from core.context import acting_as, current_actor


@pytest.mark.parametrize("name", ["api_key", "key_hash", "previous_key_hash", "token", "password", "webhookSecret",
                                  "Authorization", "client-credentials", "apiKey"])
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["name", "keywords", "monkey", "description", "tokenizer_model", "hashtags"])
def test_ordinary_names(name):
    assert not is_secret_name(name)


def test_redact_masks_at_any_depth_and_keeps_empty_values_visible():
    value = {"a": {"api_key": "sk-1", "b": [{"token": "t"}, {"password": ""}]}, "key_hash": None}
    assert redact(value) == {"a": {"api_key": MASK, "b": [{"token": MASK}, {"password": ""}]}, "key_hash": None}


def test_diff_of_nested_documents_names_leaves_and_masks_changed_secrets():
    before = {"config": {"persona": {"personality": "Terse."},
                         "config_overrides": {"model": {"api_providers": [{"name": "Mine", "api_key": "gAAAA-1"}]}}}}
    after = {"config": {"persona": {"personality": "Cheerful."},
                        "config_overrides": {"model": {"api_providers": [{"name": "Mine", "api_key": "gAAAA-2"}]}}}}
    changes = changes_between(before, after)
    assert changes == {
        "config.persona.personality": ["Terse.", "Cheerful."],
        "config.config_overrides.model.api_providers.0.api_key": [MASK, MASK],
    }
    assert "gAAAA" not in json.dumps(changes)


def test_diff_is_json_strict_and_reports_added_and_removed_members():
    assert changes_between({"a": 1, "b": True, "c": "x"}, {"a": True, "b": True, "d": "y"}) == {
        "a": [1, True], "c": ["x", None], "d": [None, "y"]}


def test_creation_and_deletion_diffs():
    assert changes_between(None, {"name": "n", "token": "t"}) == {"name": [None, "n"], "token": [None, MASK]}
    assert changes_between({"name": "n"}, None) == {"name": ["n", None]}


@pytest.mark.django_db
def test_actor_outside_a_request_is_system_or_the_command():
    assert current_actor() == "system"
    with acting_as("command:issue_api_key"):
        assert current_actor() == "command:issue_api_key"
        event = audit_record(action="tenant.update", target_type="tenant", target_id="tenant_1", tenant_id="tenant_1",
                             changes={"api_key": ["a", "b"]})
    assert current_actor() == "system"
    event.refresh_from_db()
    assert event.actor == "command:issue_api_key"
    assert event.request_id is None
    assert event.changes == {"api_key": [MASK, MASK]}


@pytest.mark.django_db(transaction=True)
def test_event_rolls_back_with_its_write():
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(action="tenant.update", target_type="tenant", target_id="tenant_1", changes={})
        raise RuntimeError
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_purge_deletes_only_events_older_than_the_retention(settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.MAIMCONFIG_AUDIT_RETENTION_DAYS = 30
    now = timezone.now()
    old = AuditEventFactory(occurred_at=now - timedelta(days=31))
    edge = AuditEventFactory(occurred_at=now - timedelta(days=29))
    assert audit_purge(now=now) == 1
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [edge.pk]
    assert not AuditEvent.objects.filter(pk=old.pk).exists()


def test_request_actor_names_the_agent_key_or_the_operator():
    from types import SimpleNamespace

    from core.context import current_request_id, current_request_var

    key_request = SimpleNamespace(auth=SimpleNamespace(is_agent_key=True, api_key_id="key_0123456789ab"),
                                  user=None, request_id="r-1")
    user = SimpleNamespace(is_authenticated=True, get_username=lambda: "Alice")
    operator_request = SimpleNamespace(auth=None, user=user, request_id="r-2")
    for request, actor in ((key_request, "agent_key:key_0123456789ab"), (operator_request, "operator:Alice")):
        token = current_request_var.set(request)
        try:
            with acting_as("command:runserver"):  # a request's credential wins over a command
                assert (current_actor(), current_request_id()) == (actor, request.request_id)
        finally:
            current_request_var.reset(token)
