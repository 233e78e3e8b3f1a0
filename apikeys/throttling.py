"""The per-client-IP throttle of `/auth/*` (spec §1.14): fixed windows with an atomic counter.

DRF's SimpleRateThrottle keeps a list of timestamps per client (read-modify-write, not atomic, and
6000 entries per IP at the default rate); this one costs one `add` and one `incr` per request in the
local-memory cache, one script call (one round trip) with Redis. While Redis is unreachable it follows
`MAIMCONFIG_RATELIMIT_ON_CACHE_FAILURE`: `allow` lets the request through, `deny` answers 429 RATE_LIMITED.
"""

import math

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from apikeys import redisstate

# ARGV: key, ttl. Returns the count after this request.
_HIT = """
local count = redis.call('INCR', ARGV[1])
if count == 1 then redis.call('EXPIRE', ARGV[1], tonumber(ARGV[2])) end
return count
"""


def parse_rate(rate: str) -> tuple[int, int]:
    num, duration = SimpleRateThrottle.parse_rate(None, rate)
    return num, duration


def hit(ident: str, *, scope: str = "auth", rate: str | None = None, now: float | None = None
        ) -> tuple[bool, int]:
    """Count one request of `ident`; `(allowed, seconds until the window resets)`."""
    num, duration = parse_rate(rate or settings.MAIMCONFIG_AUTH_THROTTLE_RATE)
    now = timezone.now().timestamp() if now is None else now
    window = int(now // duration)
    wait = max(1, math.ceil((window + 1) * duration - now))
    key = f"maimconfig:throttle:{scope}:{ident}:{duration}:{window}"
    if redisstate.enabled():
        def run(client):
            return int(redisstate.script(client, _HIT)(args=[redisstate.prefix() + key, wait + 5])) <= num

        allowed = redisstate.guarded(
            "throttle", run, lambda: settings.MAIMCONFIG_RATELIMIT_ON_CACHE_FAILURE != "deny")
        return allowed, wait
    cache.add(key, 0, timeout=wait + 5)
    try:
        count = cache.incr(key)
    except ValueError:
        cache.add(key, 0, timeout=wait + 5)
        count = cache.incr(key)
    return count <= num, wait


class AuthRateThrottle(BaseThrottle):
    """Rate `settings.MAIMCONFIG_AUTH_THROTTLE_RATE` (e.g. `6000/min`) per client IP."""

    scope = "auth"

    def get_rate(self) -> tuple[int, int]:
        return parse_rate(settings.MAIMCONFIG_AUTH_THROTTLE_RATE)

    def allow_request(self, request, view):
        allowed, self._wait = hit(self.get_ident(request), scope=self.scope)
        return allowed

    def wait(self):
        return getattr(self, "_wait", 1)
