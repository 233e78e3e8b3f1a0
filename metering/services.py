"""Writes on the usage counters: `counters_add` adds increments with one upsert per call.

Callers (the key-verification lane, the chat lane) build `Increment`s and hand them over, one at a time
or in batches (a write-behind flush). Increments with the same key are summed first; the upsert then
adds each sum with `value = value + x` in the database, so concurrent writers never lose a count.

The write joins the caller's transaction when there is one (it is rolled back with it). A caller that
must count a request whose transaction is rolled back (a refused verification inside ATOMIC_REQUESTS)
counts outside that transaction, e.g. from a view marked non-atomic or after the response.
"""

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from functools import cache

from django.db import OperationalError, connection
from django.utils import timezone

from metering.metrics import METRICS
from metering.models import UsageCounter

_RETRYABLE_MYSQL_ERRORS = {1213, 1205}  # deadlock found, lock wait timeout
_ATTEMPTS = 3
_KEY_COLUMNS = ("bucket", "span", "metric", "tenant_id", "agent_id", "api_key_id", "dimension")
_MAX = {name: UsageCounter._meta.get_field(name).max_length for name in _KEY_COLUMNS[2:]}
_HOUR, _DAY = UsageCounter.Span.HOUR.value, UsageCounter.Span.DAY.value


@dataclass(frozen=True)
class Increment:
    """Add `value` to `metric` in the hour containing `at` (UTC), for the given scope.

    `tenant_id`, `agent_id` and `api_key_id` may be None (stored as ""); `dimension` is "" when the
    metric has none (see `metering.metrics`). `at` defaults to now.
    """

    metric: str
    value: int = 1
    at: datetime | None = None
    tenant_id: str | None = None
    agent_id: str | None = None
    api_key_id: str | None = None
    dimension: str = ""


def hour_bucket(at: datetime | None) -> datetime:
    """The start of the UTC hour containing `at` (aware; naive values are taken as UTC)."""
    at = at or timezone.now()
    if timezone.is_naive(at):
        at = at.replace(tzinfo=dt_timezone.utc)
    return at.astimezone(dt_timezone.utc).replace(minute=0, second=0, microsecond=0)


def _keys(increment: Increment) -> tuple[tuple, tuple]:
    """The increment's hourly and daily counter keys."""
    if increment.metric not in METRICS:
        raise ValueError(f"Unknown usage metric {increment.metric!r}; see metering.metrics.")
    if isinstance(increment.value, bool) or not isinstance(increment.value, int):
        raise TypeError("Increment.value must be an integer.")
    hour = hour_bucket(increment.at)
    scope = (
        increment.metric,
        (increment.tenant_id or "")[: _MAX["tenant_id"]],
        (increment.agent_id or "")[: _MAX["agent_id"]],
        (increment.api_key_id or "")[: _MAX["api_key_id"]],
        (increment.dimension or "")[: _MAX["dimension"]],
    )
    return (hour, _HOUR, *scope), (hour.replace(hour=0), _DAY, *scope)


@cache
def _upsert_sql(vendor: str, rows: int) -> str:
    q = connection.ops.quote_name
    columns = ", ".join(q(c) for c in (*_KEY_COLUMNS, "value"))
    placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * rows)
    insert = f"INSERT INTO {q(UsageCounter._meta.db_table)} ({columns}) VALUES {placeholders} "
    value = q("value")
    if vendor == "mysql":
        return insert + f"ON DUPLICATE KEY UPDATE {value} = {value} + VALUES({value})"
    keys = ", ".join(q(c) for c in _KEY_COLUMNS)
    return insert + f"ON CONFLICT ({keys}) DO UPDATE SET {value} = {value} + excluded.{value}"


def counters_add(*, increments: Iterable[Increment]) -> int:
    """Add every increment to its hourly and its daily counter atomically (one statement per 500 distinct
    counters).

    Returns the number of distinct counters touched (an hour and a day each). Zero increments are skipped.
    Unknown metric names raise ValueError (a programming error, not bad input).
    """
    sums: dict[tuple, int] = defaultdict(int)
    for increment in increments:
        for key in _keys(increment):
            sums[key] += increment.value
    # A fixed order of keys makes concurrent multi-row upserts take their row locks in the same order
    # (no deadlock between two flushes touching the same counters).
    items = sorted((key, value) for key, value in sums.items() if value)
    if not items:
        return 0
    adapt = connection.ops.adapt_datetimefield_value
    for start in range(0, len(items), 500):
        chunk = items[start:start + 500]
        params = []
        for (bucket, *rest), value in chunk:
            params.extend((adapt(bucket), *rest, value))
        _execute(_upsert_sql(connection.vendor, len(chunk)), params)
    return len(items)


def _execute(sql: str, params: list) -> None:
    for attempt in range(_ATTEMPTS):
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
            return
        except OperationalError as exc:
            retryable = (connection.vendor == "mysql" and exc.args and exc.args[0] in _RETRYABLE_MYSQL_ERRORS
                         and not connection.in_atomic_block)
            if not retryable or attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.01 * (attempt + 1))


def counter_add(metric: str, value: int = 1, **scope) -> int:
    """Shorthand for one increment: `counter_add("chat.requests", tenant_id=…, dimension="chat")`."""
    return counters_add(increments=[Increment(metric=metric, value=value, **scope)])
