"""What the fleet dashboard shows, read with a handful of grouped queries (no raw-log scan).

Liveness: an agent is *online* when a real heartbeat (`AgentActivity.heartbeat_at`) keeps its row alive
(`expires_at > now`); *offline* when its last real heartbeat has expired; *never seen* when no bot ever sent
one (creation alone writes a 12-hour row, spec §4.2, with `heartbeat_at` empty). Usage figures come from
the metering counters (`metering.selectors.usage_summary`).
"""

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q

from metering import selectors as usage

ONLINE, OFFLINE, NEVER_SEEN = "online", "offline", "never_seen"
EXPIRING_WITHIN = timedelta(days=7)


def agent_liveness_q(state: str, *, now: datetime, prefix: str = "") -> Q:
    """A filter on Agent (or `prefix`-related agents) for one liveness state."""
    seen = f"{prefix}activity__heartbeat_at"
    expires = f"{prefix}activity__expires_at"
    if state == ONLINE:
        return Q(**{f"{seen}__isnull": False, f"{expires}__gt": now})
    if state == OFFLINE:
        return Q(**{f"{seen}__isnull": False, f"{expires}__lte": now})
    return Q(**{f"{seen}__isnull": True})


def agent_counts(*, now: datetime) -> dict[str, int]:
    from agents.models import Agent

    return Agent.objects.aggregate(
        total=Count("pk"),
        active=Count("pk", filter=Q(status=Agent.Status.ACTIVE)),
        online=Count("pk", filter=agent_liveness_q(ONLINE, now=now)),
        offline=Count("pk", filter=agent_liveness_q(OFFLINE, now=now)),
        never_seen=Count("pk", filter=agent_liveness_q(NEVER_SEEN, now=now)),
    )


def tenant_counts() -> dict[str, int]:
    from tenants.models import Tenant

    return Tenant.objects.aggregate(total=Count("pk"), active=Count("pk", filter=Q(status=Tenant.Status.ACTIVE)))


def key_counts(*, now: datetime) -> dict[str, int]:
    from apikeys.models import ApiKey

    live = Q(disabled_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    return ApiKey.objects.aggregate(
        total=Count("pk"),
        active=Count("pk", filter=live),
        disabled=Count("pk", filter=Q(disabled_at__isnull=False)),
        expired=Count("pk", filter=Q(disabled_at__isnull=True, expires_at__lte=now)),
        expiring=Count("pk", filter=Q(disabled_at__isnull=True, expires_at__gt=now,
                                      expires_at__lte=now + EXPIRING_WITHIN)),
    )


def _names(model, ids, field: str) -> dict[str, str]:
    return dict(model.objects.filter(pk__in=list(ids)).values_list("pk", field)) if ids else {}


def fleet_dashboard(*, now: datetime, top: int = 5) -> dict[str, Any]:
    """Everything the dashboard renders: counts, the 48-hour and 30-day usage, the top users."""
    from agents.models import Agent
    from tenants.models import Tenant

    from console import charts

    hourly_range = usage.default_range(granularity=usage.HOUR, now=now)
    daily_range = usage.default_range(granularity=usage.DAY, now=now)
    hourly = usage.usage_summary(since=hourly_range[0], until=hourly_range[1], granularity=usage.HOUR, top=0)
    daily = usage.usage_summary(since=daily_range[0], until=daily_range[1], granularity=usage.DAY, top=top)
    tenant_names = _names(Tenant, {t["tenant_id"] for t in daily["top_tenants"]}
                          | {a["tenant_id"] for a in daily["top_agents"]}, "tenant_name")
    agent_names = _names(Agent, {a["agent_id"] for a in daily["top_agents"]}, "name")
    for entry in daily["top_tenants"]:
        entry["name"] = tenant_names.get(entry["tenant_id"], "")
    for entry in daily["top_agents"]:
        entry["name"] = agent_names.get(entry["agent_id"], "")
        entry["tenant_name"] = tenant_names.get(entry["tenant_id"], "")
    return {
        "now": now,
        "tenants": tenant_counts(),
        "agents": agent_counts(now=now),
        "keys": key_counts(now=now),
        "hourly": hourly,
        "daily": daily,
        "charts": charts.dashboard_charts(hourly=hourly, daily=daily),
    }
