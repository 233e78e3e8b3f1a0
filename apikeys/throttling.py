"""The per-client-IP throttle of `/auth/*` (spec §1.14): fixed windows with an atomic cache counter.

DRF's SimpleRateThrottle keeps a list of timestamps per client (read-modify-write, not atomic, and
6000 entries per IP at the default rate); this one costs one `add` and one `incr` per request.
"""

import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle


class AuthRateThrottle(BaseThrottle):
    """Rate `settings.MAIMCONFIG_AUTH_THROTTLE_RATE` (e.g. `6000/min`) per client IP."""

    scope = "auth"

    def get_rate(self) -> tuple[int, int]:
        num, duration = SimpleRateThrottle.parse_rate(None, settings.MAIMCONFIG_AUTH_THROTTLE_RATE)
        return num, duration

    def allow_request(self, request, view):
        num, duration = self.get_rate()
        now = time.time()
        window = int(now // duration)
        self._wait = max(1, math.ceil((window + 1) * duration - now))
        key = f"maimconfig:throttle:{self.scope}:{self.get_ident(request)}:{duration}:{window}"
        cache.add(key, 0, timeout=self._wait + 5)
        try:
            count = cache.incr(key)
        except ValueError:
            cache.add(key, 0, timeout=self._wait + 5)
            count = cache.incr(key)
        return count <= num

    def wait(self):
        return getattr(self, "_wait", 1)
