"""Django's `request_started` and `request_finished`, sent by the service's WSGI handler (`core.handlers`) as
one plain call each while their receivers are Django's own (issue 11: Django's per-request floor).

Django connects five receivers to the two signals: `reset_queries` and `close_old_connections` when a request
starts; `close_caches`, `close_old_connections` and `reset_urlconf` when it finishes. Sent through
`Signal.send`, they cost a cookie-less API request ~30 µs of its ~120 µs in Django: the dispatch (live
receivers looked up by sender, one keyword call each) and the same walk of the initialized connections twice
at the start. `started` and `finished` do the receivers' work directly, the start's two walks as one.

They do so only while each signal's receivers are exactly Django's (compared on every call, as a set of
Django's lookup keys: cheap, and order-insensitive because Django's test client disconnects and reconnects
`close_old_connections` around each request, which moves it to the end). Any other receiver connected, or
one of Django's disconnected (the test client, `CaptureQueriesContext`), and the signal is sent as Django
sends it.
"""

from __future__ import annotations

from django.core import signals
from django.core.cache import caches, close_caches
from django.core.handlers.base import reset_urlconf
from django.db import close_old_connections, connections, reset_queries
from django.dispatch.dispatcher import _make_id
from django.urls import set_urlconf

__all__ = ["finished", "started"]


def _keys(*receivers) -> frozenset:
    """The lookup keys `Signal.connect` gives `receivers` connected without a sender or a dispatch_uid."""
    return frozenset((_make_id(receiver), _make_id(None)) for receiver in receivers)


_STARTED_KEYS = _keys(reset_queries, close_old_connections)
_FINISHED_KEYS = _keys(close_caches, close_old_connections, reset_urlconf)


def _only(signal, keys: frozenset) -> bool:
    receivers = signal.receivers
    return len(receivers) == len(keys) and {entry[0] for entry in receivers} == keys


def _initialized(handler) -> list:
    """`handler.all(initialized_only=True)`, reading each alias's slot once instead of twice."""
    slots = handler._connections
    found = []
    for alias in handler.settings:
        item = getattr(slots, alias, None)
        if item is not None:
            found.append(item)
    return found


def started(sender, environ) -> None:
    """`signals.request_started.send(sender=sender, environ=environ)` (module docstring)."""
    if not _only(signals.request_started, _STARTED_KEYS):
        signals.request_started.send(sender=sender, environ=environ)
        return
    for connection in _initialized(connections):
        connection.queries_log.clear()  # reset_queries
        connection.close_if_unusable_or_obsolete()  # close_old_connections


def finished(sender) -> None:
    """`signals.request_finished.send(sender=sender)` (module docstring)."""
    if not _only(signals.request_finished, _FINISHED_KEYS):
        signals.request_finished.send(sender=sender)
        return
    for cache in _initialized(caches):  # close_caches
        cache.close()
    for connection in _initialized(connections):  # close_old_connections
        connection.close_if_unusable_or_obsolete()
    set_urlconf(None)  # reset_urlconf
