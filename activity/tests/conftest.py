from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.utils import timezone


class Clock:
    """A controlled clock: `django.utils.timezone.now` returns `self.now` until the test ends."""

    def __init__(self, start: datetime):
        self.now = start

    def advance(self, **kwargs) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    frozen = Clock(datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=dt_timezone.utc))
    monkeypatch.setattr(timezone, "now", lambda: frozen.now)
    return frozen


@pytest.fixture
def make_key():
    """`make_key(agent, permissions=[...]) -> raw key` through the apikeys service."""
    from apikeys.services import apikey_create

    counter = iter(range(10**6))

    def make(agent, permissions=None, **kwargs) -> str:
        _, raw = apikey_create(agent_id=agent.id, name=f"key {next(counter)}", permissions=permissions or [],
                               **kwargs)
        return raw

    return make


@pytest.fixture
def assert_max_statements():
    """Like django_assert_max_num_queries, but not counting the SAVEPOINT/RELEASE pair that the request
    transaction (ATOMIC_REQUESTS) adds inside a test's own transaction."""
    from contextlib import contextmanager

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    @contextmanager
    def check(limit: int):
        with CaptureQueriesContext(connection) as context:
            yield context
        sqls = [q["sql"] for q in context.captured_queries
                if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))]
        assert len(sqls) <= limit, f"{len(sqls)} statements (limit {limit}):\n" + "\n".join(sqls)

    return check
