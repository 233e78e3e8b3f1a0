"""Per-key per-minute limits (spec §1.14): fixed 60-second windows aligned to the Unix minute.

The clock is `django.utils.timezone.now` (the one every other check reads), so tests freeze it in one place.

With the default local-memory cache the counter lives in the Django cache (`cache.add` + `cache.incr`,
atomic) and is per worker process. With `CACHE_URL=redis://…` it is a raw Redis counter shared by every
process and instance; the use-counting script of `apikeys.usage` takes the unit and counts the use in one
round trip, and this module serves the rest (peeks, and the database path).

While Redis is unreachable, `MAIMCONFIG_RATELIMIT_ON_CACHE_FAILURE` decides: `allow` (default) serves the
request without a limit (counted in `maimconfig_cache_failures_total`), `deny` refuses it (AUTH_008).
"""

import math
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from apikeys import redisstate

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


def window(now: float) -> tuple[int, int]:
    """`(window number, seconds until it resets)` at Unix time `now`."""
    window = int(now // WINDOW_SECONDS)
    reset = max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))
    return window, reset


def redis_window_key(key_id: str, window_number: int) -> str:
    return f"{redisstate.prefix()}rl:{key_id}:{window_number}"


def on_cache_failure(limit: int, reset: int) -> RateState | None:
    """The policy while Redis is unreachable: None (serve without a limit) or a refusal."""
    if settings.MAIMCONFIG_RATELIMIT_ON_CACHE_FAILURE == "deny":
        return RateState(limit=limit, count=limit, reset_seconds=reset, allowed=False)
    return None


# Take units unless they do not fit. ARGV: key, units, limit, ttl. Returns {allowed, count}.
_CONSUME = """
local count = redis.call('INCRBY', ARGV[1], tonumber(ARGV[2]))
if count == tonumber(ARGV[2]) then redis.call('EXPIRE', ARGV[1], tonumber(ARGV[4])) end
if count > tonumber(ARGV[3]) then
  redis.call('DECRBY', ARGV[1], tonumber(ARGV[2]))
  return {0, count - tonumber(ARGV[2])}
end
return {1, count}
"""


def consume(key_id: str, limit: int, *, units: int = 1, now: float | None = None) -> RateState | None:
    """Take `units` of the key's window, all or nothing; refused (allowed=False) when they do not fit.

    A refused request does not keep its units, so it never counts towards the limit either. Returns None
    only when Redis is unreachable and the policy is `allow` (no limit applied).
    """
    now = timezone.now().timestamp() if now is None else now
    window_number, reset = window(now)
    if redisstate.enabled():
        def run(client):
            allowed, count = redisstate.script(client, _CONSUME)(
                args=[redis_window_key(key_id, window_number), units, limit, reset + 5])
            return RateState(limit=limit, count=min(limit, int(count)), reset_seconds=reset,
                             allowed=bool(allowed))

        return redisstate.guarded("ratelimit", run, lambda: on_cache_failure(limit, reset))
    cache_key = _KEY.format(key_id=key_id, window=window_number)
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


def peek(key_id: str, limit: int, *, now: float | None = None) -> RateState | None:
    """The window's state without taking a unit (`allowed` tells whether one more would pass); None when
    Redis is unreachable (nothing known)."""
    now = timezone.now().timestamp() if now is None else now
    window_number, reset = window(now)
    if redisstate.enabled():
        def run(client):
            count = int(client.get(redis_window_key(key_id, window_number)) or 0)
            return RateState(limit=limit, count=min(count, limit), reset_seconds=reset, allowed=count < limit)

        return redisstate.guarded("ratelimit", run, lambda: None)
    count = cache.get(_KEY.format(key_id=key_id, window=window_number)) or 0
    return RateState(limit=limit, count=min(count, limit), reset_seconds=reset, allowed=count < limit)
