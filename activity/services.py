"""Writes on agent activity (heartbeats)."""

from datetime import timedelta

from django.utils import timezone

from activity.models import AgentActivity


def activity_upsert(*, agent, ttl_seconds: int) -> AgentActivity:
    """Mark `agent` alive for `ttl_seconds` from now: one atomic upsert on the unique agent row."""
    now = timezone.now()
    values = {"tenant_id": agent.tenant_id, "last_seen_at": now, "ttl_seconds": ttl_seconds,
              "expires_at": now + timedelta(seconds=ttl_seconds)}
    AgentActivity.objects.bulk_create(
        [AgentActivity(agent_id=agent.pk, **values)],
        update_conflicts=True,
        unique_fields=["agent"],
        update_fields=["last_seen_at", "ttl_seconds", "expires_at"],
    )
    return AgentActivity(agent_id=agent.pk, **values)


def activity_delete_for_agent(*, agent) -> int:
    return AgentActivity.objects.filter(agent_id=agent.pk).delete()[0]


def activity_delete_for_tenant(*, tenant) -> int:
    return AgentActivity.objects.filter(tenant_id=tenant.pk).delete()[0]
