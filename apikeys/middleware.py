"""Finishes agent-key requests after the view (and its ATOMIC_REQUESTS transaction) has run:

* a use counted by `apikeys.access` whose transaction was rolled back (the request failed after the
  count: 400/404/409/5xx) is counted again, outside that transaction: a counted use stays counted;
* responses of a rate-limited key carry `X-RateLimit-Limit/-Remaining/-Reset` (spec §1.14).
"""

from django.db import connection

from apikeys.access import STATE_ATTR
from apikeys.services import apikey_record_use


def _rolled_back(marker) -> bool:
    if marker.committed:
        return False
    # Still waiting for an outer commit (a test's transaction): the use is in place.
    return not any(func is marker for _, func, _ in connection.run_on_commit)


class AgentKeyUsageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        state = getattr(request, STATE_ATTR, None)
        if state is None:
            return response
        lost = [m for m in state.uses_pending if _rolled_back(m)]
        for _ in lost:
            apikey_record_use(api_key_id=state.api_key_id)
        if state.rate is not None and state.rate.allowed:
            for name, value in state.rate.headers().items():
                response.setdefault(name, value)
        return response
