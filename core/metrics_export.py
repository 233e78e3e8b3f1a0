"""`/metrics` across every worker process, with its optional bearer token (spec §13.5, issue 12 item 16).

Each gunicorn worker is a process with its own counters. In prometheus_client's multiprocess mode every
process writes its samples to files in one directory (`PROMETHEUS_MULTIPROC_DIR`), and the scrape, whichever
worker answers it, merges all of them. `configure_multiprocess_dir` (called by gunicorn.conf.py in the master,
before any worker imports prometheus_client) gives each instance its own empty directory; `mark_worker_dead`
(gunicorn's `child_exit` hook) retires a finished worker's live gauges. Without gunicorn (`runserver`, tests)
nothing is set and the single process reports itself. django-prometheus' export view already merges the
directory when the variable is set.

**Buffered updates.** In a worker, every update of a sample (`inc`, `observe`, `dec`) adds to a plain float
in memory instead of writing the multiprocess file (`buffered_value_class`); a daemon thread writes what
accumulated every `FLUSH_SECONDS`, `/metrics` writes this process's pending updates before it reads the
files, and a worker that stops flushes on its way out (gunicorn's `worker_exit` hook, and `atexit`). A
scrape is therefore exact for the worker that answers it and at most `FLUSH_SECONDS` (plus a flush) behind
for the others; a worker killed with `SIGKILL` loses at most its last `FLUSH_SECONDS` of updates. Counts
are never lost or doubled otherwise: a flush adds each sample's accumulated amount once, under the
prometheus_client lock, and a forked child starts with nothing pending (issue 11: "/metrics must not
become the hot path's cost"; the file writes were ~35 µs of a ~120 µs trivial request).

This module imports nothing from Django or prometheus_client at import time (gunicorn's master loads it).
"""

from __future__ import annotations

import atexit
import hmac
import os
import shutil
import tempfile
import threading

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"
_CONFIGURED_BY = "MAIMCONFIG_METRICS_DIR_MASTER"


def configure_multiprocess_dir(environ=os.environ) -> str:
    """Point `PROMETHEUS_MULTIPROC_DIR` at this instance's directory and empty it; returns the path.

    An operator-set `PROMETHEUS_MULTIPROC_DIR` (or `MAIMCONFIG_METRICS_DIR`) is used as given, else a
    directory named after the master's pid under the temporary directory. It is emptied at every start: files
    left by a previous run would add that run's counts to this one.
    """
    if environ.get(_CONFIGURED_BY) == str(os.getpid()) and environ.get(ENV_VAR):
        return environ[ENV_VAR]  # gunicorn re-reads its config on HUP: running workers keep their files
    path = environ.get(ENV_VAR) or environ.get("MAIMCONFIG_METRICS_DIR") or os.path.join(
        tempfile.gettempdir(), f"maimconfig-metrics-{os.getpid()}")
    if os.path.isdir(path):
        for entry in os.listdir(path):
            full = os.path.join(path, entry)
            if os.path.isdir(full):
                shutil.rmtree(full, ignore_errors=True)
            else:
                os.remove(full)
    os.makedirs(path, exist_ok=True)
    environ[ENV_VAR] = path
    environ[_CONFIGURED_BY] = str(os.getpid())
    return path


def use_cached_pid() -> None:
    """In a worker, before any metric exists: prometheus_client's multiprocess values read this process's
    pid from a variable kept current across forks, not from `os.getpid()`.

    Every update of a multiprocess value asks for the pid to notice a fork (then it starts new files).
    `os.getpid()` is a system call (glibc caches no pid since 2.25), and a request makes about fifteen
    updates: a sampling profile of a loaded worker showed it as the second line of the event-loop thread.
    `os.register_at_fork` keeps the variable right in a forked child, so a fork is still noticed.

    The values are also buffered (`buffered_value_class`, module docstring): an update is a dictionary
    addition, and the files are written once a second, before a scrape and when the worker stops.
    """
    if not os.environ.get(ENV_VAR):
        return
    from prometheus_client import values

    current = {"pid": os.getpid()}

    def refresh() -> None:
        current["pid"] = os.getpid()

    os.register_at_fork(after_in_child=refresh)
    values.ValueClass = buffered_value_class(values.MultiProcessValue(process_identifier=lambda: current["pid"]))
    atexit.register(flush_metrics)  # a worker that stops writes what it buffered (also gunicorn's worker_exit)


FLUSH_SECONDS = 1.0


class _Buffer:
    """What a worker's buffered values have accumulated since the last flush (one per value class)."""

    def __init__(self):
        self.lock = threading.Lock()  # guards `pending`; held for a dictionary update, never for a write
        self.flush_lock = threading.Lock()  # one flush at a time: a scrape waits for a flush under way
        self.pending: dict = {}
        self.flusher: threading.Thread | None = None
        self.stop = threading.Event()



def buffered_value_class(base):
    """A prometheus_client multiprocess value class whose increments are kept in memory until a flush
    (module docstring). `base` is the class `values.MultiProcessValue()` returns.

    `set` (gauges) writes through at once, after dropping the increments it overrides; `get` sees the
    pending amount too. Everything else (the files, the pid check, the key) is `base`'s.
    """
    buffer = _Buffer()

    def after_fork_in_child() -> None:
        # The parent's pending increments are the parent's to write; the flusher thread did not survive.
        buffer.lock = threading.Lock()
        buffer.flush_lock = threading.Lock()
        buffer.pending = {}
        buffer.flusher = None
        buffer.stop = threading.Event()

    os.register_at_fork(after_in_child=after_fork_in_child)

    class BufferedValue(base):
        def inc(self, amount):
            with buffer.lock:
                pending = buffer.pending
                pending[self] = pending.get(self, 0.0) + amount
            if buffer.flusher is None:
                _start_flusher(buffer)

        def set(self, value, timestamp=None):
            with buffer.flush_lock:
                with buffer.lock:
                    buffer.pending.pop(self, None)
                base.set(self, value, timestamp)

        def get(self):
            with buffer.flush_lock:
                with buffer.lock:
                    extra = buffer.pending.get(self, 0.0)
                return base.get(self) + extra

    def inc_many(updates) -> None:
        """`value.inc(amount)` for each `(value, amount)` of `updates`, under one acquisition of the lock
        (a request's dozen updates, `core.http_metrics.add_updates`)."""
        with buffer.lock:
            pending = buffer.pending
            for value, amount in updates:
                pending[value] = pending.get(value, 0.0) + amount
        if buffer.flusher is None:
            _start_flusher(buffer)

    BufferedValue.inc_many = staticmethod(inc_many)
    BufferedValue.flush = staticmethod(lambda: _flush(buffer, base))
    return BufferedValue


def _flush(buffer: _Buffer, base) -> None:
    with buffer.flush_lock:
        with buffer.lock:
            pending, buffer.pending = buffer.pending, {}
        for value, amount in pending.items():
            base.inc(value, amount)


def _start_flusher(buffer: _Buffer) -> None:
    with buffer.lock:
        if buffer.flusher is not None:
            return
        buffer.flusher = threading.Thread(target=_flush_periodically, args=(buffer,), daemon=True,
                                          name="metrics-flusher")
    buffer.flusher.start()


def _flush_periodically(buffer: _Buffer) -> None:
    stop = buffer.stop
    while not stop.wait(FLUSH_SECONDS):
        flush_metrics()


def flush_metrics() -> None:
    """Write every buffered update of this process to its multiprocess files (a no-op without them)."""
    from prometheus_client import values

    flush = getattr(values.ValueClass, "flush", None)
    if flush is not None:
        flush()



def mark_worker_dead(pid: int) -> None:
    """gunicorn `child_exit`: a stopped worker's live gauges stop counting (its counters stay summed)."""
    if os.environ.get(ENV_VAR):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def metrics_view(request):
    """The Prometheus exposition of every worker; with `MAIMCONFIG_METRICS_TOKEN` set, only for
    `Authorization: Bearer <that token>` (401 otherwise, compared in constant time)."""
    from django.conf import settings
    from django.http import HttpResponse
    from django_prometheus.exports import ExportToDjangoView

    expected = getattr(settings, "MAIMCONFIG_METRICS_TOKEN", "")
    if expected:
        scheme, _, presented = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected.encode()):
            response = HttpResponse("401 Unauthorized: /metrics needs its bearer token.\n", status=401,
                                    content_type="text/plain; charset=utf-8")
            response["WWW-Authenticate"] = 'Bearer realm="maimconfig-metrics"'
            return response
    flush_metrics()  # this worker's own updates are exact in the answer (module docstring: the others')
    return ExportToDjangoView(request)
