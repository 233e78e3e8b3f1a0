"""`/metrics` across every worker process, with its optional bearer token (spec §13.5, issue 12 item 16).

Each gunicorn worker is a process with its own counters. In prometheus_client's multiprocess mode every
process writes its samples to files in one directory (`PROMETHEUS_MULTIPROC_DIR`), and the scrape, whichever
worker answers it, merges all of them. `configure_multiprocess_dir` (called by gunicorn.conf.py in the master,
before any worker imports prometheus_client) gives each instance its own empty directory; `mark_worker_dead`
(gunicorn's `child_exit` hook) retires a finished worker's live gauges. Without gunicorn (`runserver`, tests)
nothing is set and the single process reports itself. django-prometheus' export view already merges the
directory when the variable is set.

This module imports nothing from Django or prometheus_client at import time (gunicorn's master loads it).
"""

from __future__ import annotations

import hmac
import os
import shutil
import tempfile

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
    """
    if not os.environ.get(ENV_VAR):
        return
    from prometheus_client import values

    current = {"pid": os.getpid()}

    def refresh() -> None:
        current["pid"] = os.getpid()

    os.register_at_fork(after_in_child=refresh)
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: current["pid"])


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
    return ExportToDjangoView(request)
