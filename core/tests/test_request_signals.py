"""Django's request signals sent as one call while their receivers are Django's own (core.request_signals,
issue 11): the same work as `Signal.send`, and `Signal.send` itself whenever anything else listens."""

import pytest
from django.core import signals
from django.core.cache import caches
from django.db import close_old_connections, connection, connections
from django.dispatch import Signal
from django.urls import get_urlconf, set_urlconf

from core import request_signals

pytestmark = pytest.mark.django_db(transaction=True)  # close_old_connections must not end a test transaction


@pytest.fixture
def calls(monkeypatch):
    """Counts what the receivers do: connections checked, caches closed, signals dispatched."""
    seen = {"checked": 0, "cache_closed": 0, "sent": []}
    connection.ensure_connection()
    caches["default"].get("warm")  # an initialized cache, which close_caches closes

    def checked(self):
        seen["checked"] += 1

    def cache_closed(self, **kwargs):
        seen["cache_closed"] += 1

    monkeypatch.setattr(type(connections["default"]), "close_if_unusable_or_obsolete", checked)
    monkeypatch.setattr(type(caches["default"]), "close", cache_closed)
    original_send = Signal.send

    def send(signal, sender, **named):
        seen["sent"].append(signal)
        return original_send(signal, sender, **named)

    monkeypatch.setattr(Signal, "send", send)
    return seen


def test_with_djangos_receivers_the_work_is_done_without_dispatch(calls):
    connection.queries_log.append({"sql": "SELECT 1", "time": "0.0"})
    request_signals.started(object, {})
    assert len(connection.queries_log) == 0  # reset_queries
    assert calls["checked"] == 1  # close_old_connections
    set_urlconf("core.tests.urls_error_probe")
    request_signals.finished(object)
    assert calls["checked"] == 2 and calls["cache_closed"] == 1  # close_old_connections, close_caches
    assert get_urlconf() is None  # reset_urlconf
    assert calls["sent"] == []


def test_the_same_work_as_djangos_dispatch(calls):
    """Sent through Signal.send (an extra receiver connected), the receivers do what the fused calls did."""
    heard = []

    def listener(sender, **kwargs):
        heard.append((sender, sorted(kwargs)))

    signals.request_started.connect(listener)
    signals.request_finished.connect(listener)
    try:
        connection.queries_log.append({"sql": "SELECT 1", "time": "0.0"})
        request_signals.started(object, {"PATH_INFO": "/"})
        assert len(connection.queries_log) == 0 and calls["checked"] == 1
        set_urlconf("core.tests.urls_error_probe")
        request_signals.finished(object)
        assert calls["checked"] == 2 and calls["cache_closed"] == 1 and get_urlconf() is None
    finally:
        signals.request_started.disconnect(listener)
        signals.request_finished.disconnect(listener)
    assert calls["sent"] == [signals.request_started, signals.request_finished]
    assert heard == [(object, ["environ", "signal"]), (object, ["signal"])]


def test_a_disconnected_receiver_stays_disconnected(calls):
    """Django's test client disconnects close_old_connections around a request: it is not called, and
    it is back in its place afterwards (then at the end of the list, which the fused call accepts)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        request_signals.started(object, {})
        request_signals.finished(object)
        assert calls["checked"] == 0 and calls["cache_closed"] == 1
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    assert len(calls["sent"]) == 2
    calls["sent"].clear()
    request_signals.started(object, {})
    request_signals.finished(object)
    assert calls["checked"] == 2 and calls["sent"] == []
