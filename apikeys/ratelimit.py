"""Per-key per-minute limits (spec §1.14): fixed 60-second windows aligned to the Unix minute.

The counter lives in the Django cache (`cache.add` + `cache.incr`, both atomic in Redis and in the
local-memory cache). With the default local-memory cache the count is per worker process; with
`CACHE_URL=redis://…` it is shared by every process and instance.
"""

import math
import time
from dataclasses import dataclass

from django.core.cache import cache

WINDOW_SECONDS = 60
_KEY = "maimconfig:apikey-rl:{key_id}:{window}"


@dataclass(frozen=True)
class RateState:
    """The window as seen by one request. `allowed` is False when the request was refused."""

    limit: int
    count: int
    reset_seconds: int
    allowed: bool

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def as_dict(self) -> dict:
        return {"limit": self.limit, "remaining": self.remaining, "reset_seconds": self.reset_seconds}

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }


def _window(now: float) -> tuple[int, int]:
    window = int(now // WINDOW_SECONDS)
    reset = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
    return window, reset


def consume(key_id: str, limit: int, *, units: int = 1, now: float | None = None) -> RateState:
    """Take `units` of the key's window, all or nothing; refused (allowed=False) when they do not fit.

    A refused request does not keep its units, so it never counts towards the limit either.
    """
    now = time.time() if now is None else now
    window, reset = _window(now)
    cache_key = _KEY.format(key_id=key_id, window=window)
    cache.add(cache_key, 0, timeout=reset + 5)
    try:
        count = cache.incr(cache_key, units)
    except ValueError:  # expired between add and incr (only at a window edge)
        cache.add(cache_key, 0, timeout=reset + 5)
        count = cache.incr(cache_key, units)
    if count > limit:
        try:
            cache.decr(cache_key, units)
        except ValueError:
            pass
        return RateState(limit=limit, count=min(limit, count - units), reset_seconds=reset, allowed=False)
    return RateState(limit=limit, count=count, reset_seconds=reset, allowed=True)


def peek(key_id: str, limit: int, *, now: float | None = None) -> RateState:
    """The window's state without taking a unit (`allowed` tells whether one more would pass)."""
    now = time.time() if now is None else now
    window, reset = _window(now)
    count = cache.get(_KEY.format(key_id=key_id, window=window)) or 0
    return RateState(limit=limit, count=min(count, limit), reset_seconds=reset, allowed=count < limit)
