import pytest
from django.core.cache import cache

from catalogue import selectors as catalogue


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Key rate-limit counters and the parsed catalogue files start empty in every test."""
    cache.clear()
    catalogue.clear_cache()
    yield
    cache.clear()
