"""Service-wide Prometheus metrics of core (spec §13.5). Labels carry no tenant, agent, key or path."""

from prometheus_client import Counter

# Every failure the logs saw at WARNING or above, written or summarised (core.logging.RepeatSummaryFilter).
# `kind`: a database failure (`database_unreachable`, `database_read_only`, `database_too_many_connections`,
# `database_lock_timeout`, `database_deadlock`, `database_integrity`), `unhandled_exception`, a kind set by
# another part of the service with `extra={"failure_kind": ...}`, or `other`.
FAILURES = Counter(
    "maimconfig_failures",
    "Failures seen by the logs (WARNING and above), including the repeats summarised instead of written.",
    ["kind"],
)
