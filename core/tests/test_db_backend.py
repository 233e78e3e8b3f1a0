"""The MariaDB backend's health check (core/db/mysql/base.py): skipped for a connection that served a request
without error within the last second, done as before otherwise (issue 11)."""

import pytest
from django.db import connection

from core.db.mysql import base as backend

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "mysql", reason="the MariaDB backend"),
]


@pytest.fixture(autouse=True)
def persistent_connection(monkeypatch):
    """Persistent connections, as served (the test settings close them after every request)."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 600)
    connection.close()
    connection.ensure_connection()
    yield
    connection.close()


@pytest.fixture
def pings(monkeypatch):
    calls = []
    real = connection.is_usable

    def counting():
        calls.append(1)
        return real()

    monkeypatch.setattr(connection, "is_usable", counting)
    return calls


def _request(query=True):
    """What a request does to the connection: close_old_connections at its start and at its end."""
    connection.close_if_unusable_or_obsolete()
    connection.close_if_health_check_failed()  # what the first cursor of the request runs
    if query:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    connection.close_if_unusable_or_obsolete()


def test_the_backend_is_in_use():
    from django.db import connections

    assert isinstance(connections["default"], backend.DatabaseWrapper)


def test_a_connection_in_steady_use_is_not_pinged_before_each_request(pings):
    for _ in range(6):
        _request()
    assert pings == []


def test_an_idle_connection_is_pinged(pings, monkeypatch):
    _request()
    assert pings == []
    monkeypatch.setattr(backend, "HEALTH_CHECK_GRACE_SECONDS", 0.0)
    _request()
    _request()
    assert len(pings) == 2


def test_a_connection_that_saw_an_error_is_checked_again(pings):
    _request()
    connection.errors_occurred = True
    _request(query=False)  # Django's own check of a connection whose request failed
    assert len(pings) == 1
    _request()  # and the next request checks it again before its first query
    assert len(pings) == 2
    _request()
    assert len(pings) == 2


def test_a_server_that_closed_the_connection_is_reconnected_after_the_grace(monkeypatch):
    _request()
    with connection.cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        (own_id,) = cursor.fetchone()
    from django.db import connections

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(f"KILL {int(own_id)}")
    finally:
        other.close()
    monkeypatch.setattr(backend, "HEALTH_CHECK_GRACE_SECONDS", 0.0)
    _request()  # the ping finds the connection dead, Django reconnects, the query runs
    with connection.cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        assert cursor.fetchone()[0] != own_id
