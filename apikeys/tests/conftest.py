import pytest
from django.core.cache import cache

from apikeys.tests.factories import ApiKeyFactory


@pytest.fixture(autouse=True)
def _clear_cache():
    """Rate-limit and throttle counters live in the cache: every test starts with empty windows."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api_key(db):
    return ApiKeyFactory()
