"""Reads on agent activity and the usage log."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from activity.models import AgentActivity, UsageLog
from core.exceptions import validation_error
from tenants.selectors import tenant_id_if_exists  # noqa: F401  (re-exported for the views)

SUMMARY_DEFAULT_RANGE = timedelta(days=7)
SUMMARY_MAX_RANGE = timedelta(days=366)


def activity_list(*, tenant_id: str | None = None, agent_id: str | None = None,
                  include_offline: bool = False, now: datetime | None = None) -> QuerySet[AgentActivity]:
    """Activity rows, newest heartbeat first (spec §7.3); unknown ids simply match nothing."""
    query = AgentActivity.objects.all()
    if tenant_id is not None:
        query = query.filter(tenant_id=tenant_id)
    if agent_id is not None:
        query = query.filter(agent_id=agent_id)
    if not include_offline:
        query = query.filter(expires_at__gt=now or timezone.now())
    return query.order_by("-last_seen_at", "-agent_id")


def _usage_filter(query: QuerySet[UsageLog], *, tenant_id=None, agent_id=None, api_key_id=None, user_id=None,
                  action=None, since=None, until=None) -> QuerySet[UsageLog]:
    exact = {"tenant_id": tenant_id, "agent_id": agent_id, "api_key_id": api_key_id, "user_id": user_id,
             "action": action}
    query = query.filter(**{name: value for name, value in exact.items() if value is not None})
    if since is not None:
        query = query.filter(timestamp__gte=since)
    if until is not None:
        query = query.filter(timestamp__lt=until)
    return query


def usage_log_list(**filters) -> QuerySet[UsageLog]:
    """Usage-log entries matching the exact filters and the `[since, until)` range, newest first (§9.3)."""
    return _usage_filter(UsageLog.objects.all(), **filters).order_by("-timestamp", "-id")


def usage_summary_range(*, since: datetime | None, until: datetime | None,
                        now: datetime | None = None) -> tuple[datetime, datetime]:
    """The range counted after defaults: `until` = now, `since` = until − 7 days (spec §9.4).

    It must not be empty nor longer than 366 days (400, under `until`, or `since` when `until` was
    not sent).
    """
    path = "until" if until is not None else "since"
    until = until or now or timezone.now()
    if since is None:
        # Never before year 1000: date-times are written with four-digit years (spec §1.9), and no entry can
        # be older since earlier inputs are refused (`until=1000-01-03` printed `999-12-27…`, issue 12).
        earliest = datetime(1000, 1, 1, tzinfo=dt_timezone.utc)
        since = until - SUMMARY_DEFAULT_RANGE if until - earliest > SUMMARY_DEFAULT_RANGE else earliest
    if since >= until:
        raise validation_error({path: ["The range is empty: since must be before until."]})
    if until - since > SUMMARY_MAX_RANGE:
        raise validation_error({path: ["The range must not be longer than 366 days."]})
    return since, until


def usage_log_summary(*, tenant_id: str | None, agent_id: str | None, since: datetime,
                      until: datetime) -> dict:
    """Counts per action and per UTC day over `[since, until)`, aggregated in the database (§9.4)."""
    query = _usage_filter(UsageLog.objects.all(), tenant_id=tenant_id, agent_id=agent_id, since=since,
                          until=until).order_by()
    by_action = list(query.values("action").annotate(count=Count("id")).order_by("-count", "action"))
    by_day = [
        {"date": row["date"].isoformat(), "count": row["count"]}
        for row in query.annotate(date=TruncDate("timestamp", tzinfo=dt_timezone.utc))
        .values("date").annotate(count=Count("id")).order_by("date")
    ]
    return {
        "range": {"since": since, "until": until},
        "by_action": by_action,
        "by_day": by_day,
        "total": sum(row["count"] for row in by_action),
    }
