"""Prometheus metrics of key verification (spec §13.5). Labels carry no tenant, agent or key data."""

from prometheus_client import Counter

KEY_VERIFICATIONS = Counter(
    "maimconfig_key_verifications",
    "Agent key verifications by outcome (valid or the AUTH_* code) and route.",
    ["outcome", "route"],
)


def record_verification(outcome: str, route: str) -> None:
    """`route` is `validate`, `check_permission` or `request` (a key-authenticated request)."""
    KEY_VERIFICATIONS.labels(outcome=outcome, route=route).inc()
