"""Reads on agents. Every read that returns agents to clients goes through here, so the liveness
columns (`is_online`, `last_seen_at`) come from one LEFT JOIN on the activity row: the query count of a
list page or a detail is constant, whatever the page size."""

import re

from django.db import connection
from django.db.models import BooleanField, F, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext

from agents.models import Agent, AgentConfigVersion
from core.errors import ErrorCode
from core.exceptions import ApplicationError
from core.ids import id_pattern
from core.models import casefold_name

_AGENT_ID = re.compile(id_pattern("agent_"))


def agents_with_liveness() -> QuerySet[Agent]:
    """Agents annotated with `activity_last_seen_at` / `activity_expires_at` (NULL without a row)."""
    return Agent.objects.annotate(
        activity_last_seen_at=F("activity__last_seen_at"),
        activity_expires_at=F("activity__expires_at"),
    )


def agent_get(*, agent_id: str, tenant_id: str | None = None) -> Agent:
    """The agent (with liveness), or AGENT_004; a malformed id is simply not found (spec §1.10)."""
    agent = None
    if isinstance(agent_id, str) and _AGENT_ID.match(agent_id):
        query = agents_with_liveness().filter(pk=agent_id)
        if tenant_id is not None:
            query = query.filter(tenant_id=tenant_id)
        agent = query.first()
    if agent is None:
        raise ApplicationError(ErrorCode.AGENT_004, "The agent does not exist.")
    return agent


def _with_tag(query: QuerySet[Agent], tag: str) -> QuerySet[Agent]:
    """Agents whose `tags` array contains exactly `tag`."""
    if connection.vendor == "sqlite":
        table = Agent._meta.db_table
        return query.annotate(
            _has_tag=RawSQL(f'EXISTS (SELECT 1 FROM json_each("{table}"."tags") WHERE json_each.value = %s)',
                            [tag], output_field=BooleanField())
        ).filter(_has_tag=True)
    return query.filter(tags__contains=[tag])


def agent_list(*, tenant_id: str | None = None, status: str | None = None, tag: str | None = None,
               search: str | None = None) -> QuerySet[Agent]:
    """Agents newest first. An unknown `tenant_id` is 404 AGENT_001 (spec §4.3)."""
    query = agents_with_liveness()
    if tenant_id is not None:
        from tenants.models import Tenant

        if not Tenant.objects.filter(pk=tenant_id).exists():
            raise ApplicationError(ErrorCode.AGENT_001, gettext("Tenant '%(tenant_id)s' does not exist.") % {"tenant_id": tenant_id[:100]})
        query = query.filter(tenant_id=tenant_id)
    if status:
        query = query.filter(status=status)
    if tag:
        query = _with_tag(query, tag)
    if search:
        # name_key is the case-folded name (binary collation on MariaDB): a case-folded substring
        # search is case-insensitive on every database.
        query = query.filter(name_key__contains=casefold_name(search))
    return query.order_by("-created_at", "-id")


def config_version_list(*, agent: Agent) -> QuerySet[AgentConfigVersion]:
    """The agent's configuration versions newest first, without their documents."""
    return AgentConfigVersion.objects.filter(agent_id=agent.pk).defer("document").order_by("-number")
