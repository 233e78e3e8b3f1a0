import contextlib

import pytest

from apikeys import redisstate
from core import lanes
from readcache import fastlane


@pytest.fixture(autouse=True)
def _fresh_state(fresh_redis_state):
    """Every read-cache test starts with a closed breaker and an empty cache (root conftest)."""


class PrefixSpy:
    """The read cache's prefix handler wrapped for tests: `outcomes` lists True (the fast lane answered) or
    False (declined to Django) per request offered; inside `django_only()` Django answers everything."""

    def __init__(self):
        self.outcomes: list[bool] = []

    async def __call__(self, scope, body, send):
        answered = await fastlane.handler(scope, body, send)
        self.outcomes.append(answered)
        return answered

    @contextlib.contextmanager
    def django_only(self):
        saved = list(lanes._fast_prefixes)
        lanes._fast_prefixes[:] = [e for e in saved if e[2] is not self]
        try:
            yield
        finally:
            lanes._fast_prefixes[:] = saved


@pytest.fixture
def lane(monkeypatch):
    if not redisstate.enabled():
        pytest.skip("needs CACHE_URL=redis://… (the read cache exists only with Redis)")
    spy = PrefixSpy()
    entries = [(m, p, spy if h is fastlane.handler else h) for m, p, h in lanes._fast_prefixes]
    assert any(h is spy for _, _, h in entries), "the read cache's handler is registered"
    monkeypatch.setattr(lanes, "_fast_prefixes", entries)
    return spy
