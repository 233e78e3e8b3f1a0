"""Reads on the usage counters: series per hour or day, breakdowns, top tenants and agents, cost.

Everything is computed from `UsageCounter` rows (one per hour and scope) with grouped queries: never a
scan of raw logs. The estimated cost prices `chat.tokens_in`/`chat.tokens_out` by the model named in the
counter's dimension, with the system catalogue's `price_in`/`price_out` (per million tokens); tokens of a
model the catalogue does not price count as `unpriced_tokens`.
"""

from collections import defaultdict
from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any

from django.db.models import Sum

from metering import metrics as m
from metering.models import UsageCounter

HOUR = "hour"
DAY = "day"
GRANULARITIES = (HOUR, DAY)
DEFAULT_SPAN = {HOUR: timedelta(hours=48), DAY: timedelta(days=30)}
MAX_PERIODS = {HOUR: 24 * 31, DAY: 366}
STEP = {HOUR: timedelta(hours=1), DAY: timedelta(days=1)}

# The field name of each metric in summaries (API and dashboard).
FIELD = {m.VALIDATION_ACCEPTED: "validation_accepted", m.VALIDATION_REFUSED: "validation_refused",
         m.CHAT_REQUESTS: "chat_requests", m.CHAT_TOKENS_IN: "tokens_in", m.CHAT_TOKENS_OUT: "tokens_out",
         m.CHAT_UPSTREAM_ERRORS: "upstream_errors"}
# Metrics whose dimension is worth a breakdown.
BREAKDOWNS = {m.VALIDATION_REFUSED: "validation_refused_by_code", m.CHAT_REQUESTS: "chat_requests_by_route",
              m.CHAT_TOKENS_IN: "tokens_in_by_model", m.CHAT_TOKENS_OUT: "tokens_out_by_model",
              m.CHAT_UPSTREAM_ERRORS: "upstream_errors_by_code"}


def period_start(at: datetime, granularity: str) -> datetime:
    at = at.astimezone(dt_timezone.utc).replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0) if granularity == DAY else at


def default_range(*, granularity: str, now: datetime, since: datetime | None = None,
                  until: datetime | None = None) -> tuple[datetime, datetime]:
    """`[since, until)` aligned on whole periods. Defaults: the last 48 hours (hour) or 30 days (day),
    the current period included."""
    until = until or now
    end = period_start(until, granularity)
    if end < until:
        end += STEP[granularity]
    start = period_start(since, granularity) if since else end - DEFAULT_SPAN[granularity]
    return start, end


def period_count(*, since: datetime, until: datetime, granularity: str) -> int:
    return max(0, -(-(until - since) // STEP[granularity]))


def _prices() -> dict[str, tuple[float, float]]:
    from catalogue.selectors import load_model_catalogue  # system catalogue (a file read, cached there)

    return {model["name"].strip().casefold(): (model["price_in"], model["price_out"])
            for model in load_model_catalogue().models}


def _cost(metric: str, dimension: str, tokens: int, prices: dict) -> float | None:
    price = prices.get(dimension.strip().casefold())
    if price is None:
        return None
    per_million = price[0] if metric == m.CHAT_TOKENS_IN else price[1]
    return tokens * per_million / 1_000_000


def _filtered(*, since, until, granularity, tenant_id, agent_id):
    span = UsageCounter.Span.DAY if granularity == DAY else UsageCounter.Span.HOUR
    rows = UsageCounter.objects.filter(span=span, bucket__gte=since, bucket__lt=until)
    if tenant_id is not None:
        rows = rows.filter(tenant_id=tenant_id)
    if agent_id is not None:
        rows = rows.filter(agent_id=agent_id)
    return rows


def usage_summary(*, since: datetime, until: datetime, granularity: str, tenant_id: str | None = None,
                  agent_id: str | None = None, top: int = 10) -> dict[str, Any]:
    """Totals, one entry per period in `[since, until)` (zeros included, oldest first), breakdowns by
    dimension and the `top` tenants and agents by use (validations + chat requests)."""
    prices = _prices()
    rows = _filtered(since=since, until=until, granularity=granularity, tenant_id=tenant_id, agent_id=agent_id)
    # Hourly rows for hours, daily rows for days (UsageCounter.span): one row per period and scope.
    grouped = rows.values("bucket", "metric", "dimension").annotate(total=Sum("value")).order_by()

    empty = dict.fromkeys(FIELD.values(), 0)
    series: dict[datetime, dict] = {}
    cursor = since
    while cursor < until:
        series[cursor] = {"start": cursor, **empty, "estimated_cost": 0.0}
        cursor += STEP[granularity]
    totals = {**empty, "estimated_cost": 0.0, "unpriced_tokens": 0}
    breakdowns: dict[str, dict[str, int]] = {name: defaultdict(int) for name in BREAKDOWNS.values()}
    for row in grouped:
        start = period_start(row["bucket"], granularity)
        entry = series.get(start)
        metric, dimension, total = row["metric"], row["dimension"], int(row["total"] or 0)
        if entry is None or metric not in FIELD:
            continue
        entry[FIELD[metric]] += total
        totals[FIELD[metric]] += total
        if metric in BREAKDOWNS:
            breakdowns[BREAKDOWNS[metric]][dimension or "-"] += total
        if metric in (m.CHAT_TOKENS_IN, m.CHAT_TOKENS_OUT):
            cost = _cost(metric, dimension, total, prices)
            if cost is None:
                totals["unpriced_tokens"] += total
            else:
                entry["estimated_cost"] += cost
                totals["estimated_cost"] += cost
    for entry in series.values():
        entry["estimated_cost"] = round(entry["estimated_cost"], 6)
    totals["estimated_cost"] = round(totals["estimated_cost"], 6)
    top_tenants, top_agents = top_scopes(rows=rows, prices=prices, limit=top) if top else ([], [])
    return {
        "since": since, "until": until, "granularity": granularity,
        "tenant_id": tenant_id, "agent_id": agent_id,
        "totals": totals,
        "series": list(series.values()),
        "breakdowns": {name: dict(sorted(values.items(), key=lambda kv: (-kv[1], kv[0])))
                       for name, values in breakdowns.items()},
        "top_tenants": top_tenants,
        "top_agents": top_agents,
    }


def top_scopes(*, rows, prices: dict, limit: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The `limit` tenants and the `limit` agents with the most validations + chat requests in `rows`, with
    their figures: one grouped query for both."""
    wanted = (m.VALIDATION_ACCEPTED, m.VALIDATION_REFUSED, m.CHAT_REQUESTS, m.CHAT_TOKENS_IN, m.CHAT_TOKENS_OUT)
    grouped = (rows.filter(metric__in=wanted).exclude(tenant_id="")
               .values("tenant_id", "agent_id", "metric", "dimension").annotate(total=Sum("value")).order_by())
    tenants: dict[str, dict[str, Any]] = {}
    agents: dict[str, dict[str, Any]] = {}
    for row in grouped:
        total = int(row["total"] or 0)
        entries = [tenants.setdefault(row["tenant_id"], _empty_figures(tenant_id=row["tenant_id"]))]
        if row["agent_id"]:
            entries.append(agents.setdefault(row["agent_id"], _empty_figures(agent_id=row["agent_id"],
                                                                             tenant_id=row["tenant_id"])))
        metric = row["metric"]
        cost = _cost(metric, row["dimension"], total, prices) or 0.0 if metric in (
            m.CHAT_TOKENS_IN, m.CHAT_TOKENS_OUT) else 0.0
        for entry in entries:
            if metric in (m.VALIDATION_ACCEPTED, m.VALIDATION_REFUSED):
                entry["validations"] += total
            elif metric == m.CHAT_REQUESTS:
                entry["chat_requests"] += total
            else:
                entry["tokens_in" if metric == m.CHAT_TOKENS_IN else "tokens_out"] += total
                entry["estimated_cost"] += cost
    return _ranked(tenants, "tenant_id", limit), _ranked(agents, "agent_id", limit)


def _empty_figures(**ids) -> dict[str, Any]:
    return {**ids, "validations": 0, "chat_requests": 0, "tokens_in": 0, "tokens_out": 0, "estimated_cost": 0.0}


def _ranked(figures: dict[str, dict], scope: str, limit: int) -> list[dict[str, Any]]:
    ranked = sorted(figures.values(), key=lambda e: (-(e["validations"] + e["chat_requests"]),
                                                     -(e["tokens_in"] + e["tokens_out"]), e[scope]))[:limit]
    for entry in ranked:
        entry["estimated_cost"] = round(entry["estimated_cost"], 6)
    return ranked


def existing_tenant_id(tenant_id: str | None) -> str | None:
    """`tenant_id` when that tenant exists (the envelope's `tenant_id` of a filtered summary, §1.3)."""
    if not tenant_id:
        return None
    from tenants.selectors import tenant_id_if_exists

    return tenant_id_if_exists(tenant_id=tenant_id)
