import pytest

from apikeys import redisstate
from core.testing import spy_on_fast_prefix
from readcache import fastlane


@pytest.fixture(autouse=True)
def _fresh_state(fresh_redis_state):
    """Every read-cache test starts with a closed breaker and an empty cache (root conftest)."""


@pytest.fixture
def lane(monkeypatch):
    if not redisstate.enabled():
        pytest.skip("needs CACHE_URL=redis://… (the read cache exists only with Redis)")
    return spy_on_fast_prefix(monkeypatch, fastlane.handler)
