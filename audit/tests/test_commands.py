"""Management commands: retention purge, and writes of commands attributed to `command:<name>`."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import AuditEvent
from audit.tests.factories import AuditEventFactory

pytestmark = pytest.mark.django_db


def test_purge_audit_events_uses_the_setting_and_reports(settings):
    settings.MAIMCONFIG_AUDIT_RETENTION_DAYS = 10
    AuditEventFactory(occurred_at=timezone.now() - timedelta(days=11))
    kept = AuditEventFactory(occurred_at=timezone.now() - timedelta(days=9))
    out = StringIO()
    call_command("purge_audit_events", stdout=out)
    assert "Deleted 1 audit events older than 10 days." in out.getvalue()
    assert list(AuditEvent.objects.values_list("pk", flat=True)) == [kept.pk]


def test_purge_audit_events_days_option():
    AuditEventFactory(occurred_at=timezone.now() - timedelta(days=2))
    call_command("purge_audit_events", "--days", "1", stdout=StringIO())
    assert not AuditEvent.objects.exists()


def test_purge_audit_events_refuses_negative_days():
    with pytest.raises(CommandError):
        call_command("purge_audit_events", "--days", "-1", stdout=StringIO())


def test_issue_api_key_is_attributed_to_the_command():
    from agents.tests.factories import AgentFactory

    agent = AgentFactory()
    call_command("issue_api_key", "--tenant", agent.tenant_id, "--agent", agent.pk, "--name", "cli key",
                 stdout=StringIO())
    event = AuditEvent.objects.get()
    assert (event.actor, event.action, event.tenant_id) == ("command:issue_api_key", "api_key.create", agent.tenant_id)
    assert event.changes["key_hash"] == [None, "********"]
    assert event.changes["name"] == [None, "cli key"]


def test_create_operator_token_is_recorded_without_the_token():
    out = StringIO()
    call_command("create_operator", "alice", stdout=out)
    event = AuditEvent.objects.get()
    assert (event.actor, event.action, event.target_type, event.target_id) == (
        "command:create_operator", "operator_token.create", "operator", "alice")
    assert event.changes == {"token": [None, "********"], "user": [None, "alice"]}
    call_command("create_operator", "alice", "--rotate", stdout=out)
    rotated = AuditEvent.objects.order_by("-id").first()
    assert rotated.action == "operator_token.rotate"
    assert rotated.changes == {"token": ["********", "********"]}
