"""Issue 12, items 1 and 9: identifiers compare exactly on every database, and case folding never
overflows a name's normalized column (MariaDB's default collations fold case and accents)."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection, models
from django.utils import timezone

from activity.models import UsageLog
from activity.selectors import usage_log_summary
from activity.tests.factories import UsageLogFactory
from agents.tests.factories import AgentFactory
from chat.selectors import conversation_find
from chat.tests.factories import ChatConversationFactory
from core.models import CaseFoldKeyField
from tenants.models import Tenant
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

OUR_APPS = ("tenants", "agents", "apikeys", "activity", "plugins", "chat", "metering", "audit", "core")

# Text columns that are shown, never compared as keys (names keep their spelling; their uniqueness lives in
# `name_key`), or whose values are a closed set of lower-case choices validated before any query.
DISPLAY_ONLY = {
    ("tenants", "tenant", "tenant_name"), ("tenants", "tenant", "tenant_type"), ("tenants", "tenant", "status"),
    ("tenants", "tenant", "contact_email"), ("tenants", "tenant", "description"),
    ("agents", "agent", "name"), ("agents", "agent", "description"), ("agents", "agent", "status"),
    ("apikeys", "apikey", "name"), ("apikeys", "apikey", "description"),
    ("chat", "chatmessage", "role"), ("chat", "chatmessage", "responder"), ("chat", "chatmessage", "finish_reason"),
    ("chat", "chatmessage", "content"), ("agents", "agentconfigversion", "source"),
    ("metering", "usagecounter", "span"),  # "h" or "d", written by the code only
}


@pytest.mark.mariadb
def test_every_key_column_has_a_binary_collation():
    """An audit, not a sample: every text column of the project's models that is used as a key (ids, foreign
    keys, hashes, user ids, actions, conversation ids, model names, normalized names) is `utf8mb4_bin`."""
    wrong = []
    with connection.cursor() as cursor:
        for model in apps.get_models():
            if model._meta.app_label not in OUR_APPS:
                continue
            columns = {row.name: row.collation for row in
                       connection.introspection.get_table_description(cursor, model._meta.db_table)}
            for field in model._meta.concrete_fields:
                key = (model._meta.app_label, model._meta.model_name, field.name)
                is_text = isinstance(field, (models.CharField, models.TextField)) or (
                    isinstance(field, models.ForeignKey) and isinstance(field.target_field, models.CharField))
                if not is_text or key in DISPLAY_ONLY:
                    continue
                if field.column not in columns:  # a model ahead of its migration: `makemigrations --check` says so
                    continue
                if columns[field.column] != "utf8mb4_bin":
                    wrong.append(f"{model._meta.db_table}.{field.column}={columns.get(field.column)}")
    assert wrong == [], "\n".join(wrong)


def test_conversation_ids_differing_in_case_are_two_conversations():
    agent = AgentFactory()
    ChatConversationFactory(agent=agent, conversation_id="userabc")
    assert conversation_find(agent_id=agent.id, conversation_id="UserAbc") is None
    # and both can exist side by side (the unique constraint compares exactly too)
    ChatConversationFactory(agent=agent, conversation_id="UserAbc")
    assert conversation_find(agent_id=agent.id, conversation_id="userabc").conversation_id == "userabc"


def test_usage_actions_and_user_ids_compare_exactly():
    agent = AgentFactory()
    now = timezone.now()
    UsageLogFactory(agent=agent, action="Login", user_id="Alice", timestamp=now)
    UsageLogFactory(agent=agent, action="login", user_id="alice", timestamp=now)
    summary = usage_log_summary(tenant_id=agent.tenant_id, agent_id=None, since=now - timedelta(days=1),
                                until=now + timedelta(days=1))
    assert sorted((row["action"], row["count"]) for row in summary["by_action"]) == [("Login", 1), ("login", 1)]
    assert UsageLog.objects.filter(user_id="alice").count() == 1
    assert UsageLog.objects.filter(action="LOGIN").count() == 0


def test_an_id_in_another_case_names_no_object():
    tenant = TenantFactory()
    assert not Tenant.objects.filter(pk=tenant.id.upper()).exists()


def test_casefold_key_columns_hold_the_longest_folding_of_a_name():
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, CaseFoldKeyField):
                assert field.max_length >= 3 * 100, f"{model.__name__}.{field.name}"


def test_a_name_that_folds_longer_than_its_column_is_created(operator_client):
    """`"ß" * 60` folds to 120 characters: a 500 on MariaDB before the fix (issue 12, item 9)."""
    response = operator_client.post("/api/v2/tenants", {"tenant_name": "ß" * 60, "tenant_type": "personal"},
                                    format="json")
    assert response.status_code == 200, response.content
    assert Tenant.objects.get(id=response.json()["data"]["id"]).name_key == "ss" * 60
    # The folded names still collide: "ß"*50 and "ss"*50 are one name (spec §1.12).
    first = operator_client.post("/api/v2/tenants", {"tenant_name": "ß" * 50, "tenant_type": "personal"},
                                 format="json")
    second = operator_client.post("/api/v2/tenants", {"tenant_name": "SS" * 50, "tenant_type": "personal"},
                                  format="json")
    assert first.status_code == 200
    assert second.status_code == 409
    assert second.json()["error_code"] == "TENANT_002"
