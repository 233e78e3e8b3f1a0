"""Fixtures shared by every app's tests."""

import pytest
from django.db import connection
from rest_framework.test import APIClient


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    on_mysql = settings.DATABASES["default"]["ENGINE"].endswith("mysql")
    skip = pytest.mark.skip(reason="needs MariaDB/MySQL (set DATABASE_URL=mysql://...)")
    for item in items:
        if "mariadb" in item.keywords and not on_mysql:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _default_language():
    """Every test starts in the default language (English), whatever an earlier request or test activated in
    this thread: code that translates outside a request (services, validators) then answers in English."""
    from django.conf import settings
    from django.utils import translation

    with translation.override(settings.LANGUAGE_CODE):
        yield


@pytest.fixture
def api_client() -> APIClient:
    """A client with no credential."""
    return APIClient()


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user(username="operator", password="pw-operator-1", is_staff=True)


@pytest.fixture
def operator_token(operator) -> str:
    from django.utils import timezone

    from core.models import OperatorToken
    from core.services import operator_token_issue

    row, token = operator_token_issue(user=operator)
    # As if used a moment ago: query-count tests see the steady state, without the once-a-minute
    # `last_used_at` write (that write is tested in core/tests/test_operator_tokens.py).
    OperatorToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    return token


@pytest.fixture
def operator_client(operator_token) -> APIClient:
    """A client authenticated as an operator with an operator token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {operator_token}")
    return client


@pytest.fixture
def open_mode(settings):
    settings.MAIMCONFIG_AUTH_MODE = "open"


@pytest.fixture
def db_vendor() -> str:
    return connection.vendor


class FrozenClock:
    """`django.utils.timezone.now` returns `self.now` until the test ends; `advance(seconds=…)` moves it.

    Every time-dependent check of the service (key expiry, per-minute windows, the /auth throttle) reads
    this clock, so a test that counts within a minute never straddles a real minute boundary."""

    def __init__(self, start):
        self.now = start

    def advance(self, **kwargs):
        from datetime import timedelta

        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def frozen_clock(monkeypatch) -> FrozenClock:
    """A clock frozen 15 s into a minute (2026-11-24 12:00:15 UTC; Unix time 1795521615)."""
    from datetime import UTC, datetime

    from django.utils import timezone

    clock = FrozenClock(datetime(2026, 11, 24, 12, 0, 15, tzinfo=UTC))
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock


@pytest.fixture
def fresh_breaker():
    """The Redis circuit breaker of this process closed before and after the test (`apikeys.redisstate`)."""
    from apikeys import redisstate

    redisstate.breaker.reset()
    yield
    redisstate.breaker.reset()


@pytest.fixture
def fresh_redis_state(fresh_breaker):
    """The breaker closed and the Django cache empty (with Redis: key state, counters, read cache entries)
    before and after the test."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
