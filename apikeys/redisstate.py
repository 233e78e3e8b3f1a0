"""Redis as an accelerator of the bot lane (spec §1.15, issue 15): the raw client and a circuit breaker.

`client()` is the redis-py client behind the Django cache when `CACHE_URL=redis://…` (django-redis), or
None with any other cache (the embedded local-memory default): callers then use the database path.

Redis is never a single point of failure. Every caller wraps its Redis work in `guarded(...)`:

* an error (connection refused, timeout, a server that is loading…) opens the breaker for
  `BREAKER_SECONDS`; while it is open nobody in this process touches Redis (no per-request connection
  attempts: a down Redis costs one failed attempt per process per second, not one per request), and
  callers fall back to the database (key state, usage counting) or to
  `MAIMCONFIG_RATELIMIT_ON_CACHE_FAILURE` (limits, throttle);
* the first failure of an outage is logged once (with its traceback) and every request served while Redis
  is unavailable is counted in `maimconfig_cache_failures_total{operation}`;
* after the breaker closes again, the process bumps the global key-state generation before it uses
  the cache: revocations and uses written to the database while Redis was unreachable could not
  invalidate cached key state, so every entry written before the outage becomes unusable; and it takes
  back from the database any use whose script Redis ran although its reply was lost
  (`apikeys.usage.reconcile_lost_replies`), so such a use is not counted twice.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from prometheus_client import Counter

logger = logging.getLogger("maimconfig.redis")

BREAKER_SECONDS = 1.0

CACHE_FAILURES = Counter(
    "maimconfig_cache_failures",
    "Operations served without Redis because it was unreachable (by operation).",
    ["operation"],
)

T = TypeVar("T")


class _Unavailable(Exception):
    """Internal: the breaker is open (no attempt was made)."""


def _is_django_redis() -> bool:
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    return backend.startswith("django_redis.")


def enabled() -> bool:
    """True when the cache is Redis (key-state cache, write-behind counting and shared limits apply)."""
    return _is_django_redis()


def prefix() -> str:
    """Prefix of every raw key this project writes (the cache's KEY_PREFIX, if any, then `mmc:`)."""
    key_prefix = settings.CACHES.get("default", {}).get("KEY_PREFIX", "")
    return f"{key_prefix}:mmc:" if key_prefix else "mmc:"


_clients: dict[str, Any] = {}


def client():
    """The redis-py client of the default cache, or None when the cache is not Redis.

    One client per process and cache configuration: `get_redis_connection` builds a new client object (over
    the shared connection pool) for every new cache handle, and the chat lane's database bursts each run in
    a request's own context, so they got a new handle, ~0.5 ms of CPU, per call. A client is thread-safe."""
    if not _is_django_redis():
        return None
    config = repr(settings.CACHES.get("default"))
    found = _clients.get(config)
    if found is None:
        from django_redis import get_redis_connection

        found = _clients[config] = get_redis_connection("default")
    return found


class Breaker:
    """Process-wide circuit breaker around Redis (see the module docstring)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.open_until = 0.0
        self.in_outage = False
        self.needs_generation_bump = False

    def available(self) -> bool:
        return time.monotonic() >= self.open_until

    def failure(self, exc: BaseException, operation: str) -> None:
        with self._lock:
            self.open_until = time.monotonic() + BREAKER_SECONDS
            first = not self.in_outage
            self.in_outage = True
            self.needs_generation_bump = True
        if first:
            logger.error("Redis is unavailable (%s); serving from the database until it answers again.",
                         operation, exc_info=exc)

    def success(self) -> None:
        if self.in_outage:
            with self._lock:
                was = self.in_outage
                self.in_outage = False
            if was:
                logger.warning("Redis answers again; back to the Redis-accelerated path.")

    def reset(self) -> None:
        """Forget any outage (tests, and a new process after fork)."""
        with self._lock:
            self.open_until = 0.0
            self.in_outage = False
            self.needs_generation_bump = False


breaker = Breaker()


def _redis_errors() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError

    return (RedisError, OSError)


def guarded(operation: str, func: Callable[[Any], T], fallback: Callable[[], T]) -> T:
    """`func(client)` when Redis is configured and the breaker is closed; `fallback()` otherwise.

    A Redis error opens the breaker, is counted under `operation`, and the fallback answers instead.
    """
    redis_client = client()
    if redis_client is None:
        return fallback()
    if not breaker.available():
        CACHE_FAILURES.labels(operation=operation).inc()
        return fallback()
    try:
        if breaker.needs_generation_bump:
            _bump_global_generation(redis_client)
            _reconcile(redis_client)
        result = func(redis_client)
    except _redis_errors() as exc:
        breaker.failure(exc, operation)
        CACHE_FAILURES.labels(operation=operation).inc()
        return fallback()
    breaker.success()
    return result


def _bump_global_generation(redis_client) -> None:
    from apikeys import keycache

    keycache.bump_global(redis_client)
    breaker.needs_generation_bump = False


def _reconcile(redis_client) -> None:
    from apikeys import usage

    usage.reconcile_lost_replies(redis_client)


# --- Lua scripts, registered once per client (EVALSHA with a transparent EVAL fallback) -----------------

_scripts: dict[tuple[int, str], Any] = {}
_scripts_lock = threading.Lock()


def script(redis_client, source: str):
    """A registered `redis.commands.core.Script` for `source` on this client (cached per client)."""
    key = (id(redis_client), source)
    found = _scripts.get(key)
    if found is None:
        with _scripts_lock:
            found = _scripts.get(key)
            if found is None:
                found = _scripts[key] = redis_client.register_script(source)
    return found
