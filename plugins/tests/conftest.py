import pytest
from rest_framework.test import APIClient


@pytest.fixture
def key_client():
    """`key_client(agent, permissions=[...]) -> APIClient` authenticated with a fresh agent key."""
    from apikeys.services import apikey_create

    counter = iter(range(10**6))

    def make(agent, permissions=("plugins",)) -> APIClient:
        _, raw = apikey_create(agent_id=agent.id, name=f"key {next(counter)}", permissions=list(permissions))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


@pytest.fixture
def clock(monkeypatch):
    """A controlled clock: `django.utils.timezone.now` returns `clock.now` until the test ends."""
    from datetime import datetime, timedelta
    from datetime import timezone as dt_timezone
    from types import SimpleNamespace

    from django.utils import timezone

    state = SimpleNamespace(now=datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=dt_timezone.utc))
    state.advance = lambda **kwargs: setattr(state, "now", state.now + timedelta(**kwargs))
    monkeypatch.setattr(timezone, "now", lambda: state.now)
    return state
