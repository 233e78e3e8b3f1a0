"""Chat metrics of `/metrics` (spec §13.5). Labels never carry tenant, agent, key, model or provider names."""

import time
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

CHAT_REQUESTS = Counter(
    "maimconfig_chat_requests_total",
    "Chat replies by route, responder and outcome (ok or the error code).",
    ["route", "responder", "outcome"],
)
UPSTREAM_SECONDS = Histogram(
    "maimconfig_chat_upstream_seconds",
    "Seconds spent in upstream language-model calls.",
    ["provider_kind"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120),
)


def chat_request(route: str, responder: str, outcome: str) -> None:
    CHAT_REQUESTS.labels(route=route, responder=responder, outcome=outcome).inc()


def observe_upstream(provider_kind: str, seconds: float) -> None:
    UPSTREAM_SECONDS.labels(provider_kind=provider_kind).observe(seconds)


@contextmanager
def upstream_timer(provider_kind: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        observe_upstream(provider_kind, time.perf_counter() - started)
