"""Reloads without a pause (issue 15): on `HUP`, the old workers keep serving until the new ones serve.

gunicorn's `HUP` reloads the configuration and the code: the master forks new workers and, in the same
step, sends the old ones `SIGTERM`. The old workers stop accepting within a second, while a new worker
still needs 1–3 s to import Django and the project, so every answer paused for that long.

The hooks below (wired in `gunicorn.conf.py`) change only the order:

* `pre_fork` (master): remember the value of the new worker's heartbeat file at its creation.
* `post_worker_init` (new worker, before it serves): warm the application up — resolve every URL pattern
  (imports every view) and pass a few requests through Django (middleware, renderers, database and cache
  clients) — so the first real requests are not slow.
* `on_reload` (master, at the start of a reload): arm a one-shot wait in `manage_workers`, the step that
  stops the old workers: it first waits until every new worker has touched its heartbeat file, which
  gunicorn's ASGI worker does in its serving loop, i.e. after its listening server is up. The wait is
  bounded (`GUNICORN_RELOAD_READY_TIMEOUT`, default 60 s) and ends early when a new worker dies (then
  gunicorn's own handling applies, as before).

The old workers then stop gracefully (in-flight requests finish, `graceful_timeout`). Measured with
`make chaos` (README "Operations"). This module imports nothing from Django at import time: the master
loads it with the configuration.
"""

from __future__ import annotations

import os
import time

READY_TIMEOUT = float(os.environ.get("GUNICORN_RELOAD_READY_TIMEOUT", "60"))
WARM_UP_PATHS = ("/health", "/info", "/api/v2/tenants", "/api/v2/no-such-route")


def pre_fork(arbiter, worker) -> None:
    worker.maimconfig_heartbeat_at_spawn = worker.tmp.last_update()


def on_reload(arbiter) -> None:
    _install(arbiter)
    arbiter.maimconfig_reload_armed = True


def post_worker_init(worker) -> None:
    from core import chatproc

    try:
        chatproc.start_for_worker(worker)  # starts alongside this worker's warm-up
    except Exception:  # noqa: BLE001 - without its chat process the worker serves chat itself
        worker.log.warning("The chat process did not start", exc_info=True)
    try:
        warm_up()
    except Exception:  # noqa: BLE001 - a failed warm-up only costs the first requests some time
        worker.log.warning("Warm-up of the new worker failed", exc_info=True)
    chatproc.wait_for_worker()


def warm_up() -> None:
    """Import every view and pass a few cheap requests through Django (answers are discarded)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connections
    from django.test import RequestFactory
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every urls module and view
    handler = WSGIHandler()
    factory = RequestFactory()
    for path in WARM_UP_PATHS:
        environ = factory.get(path, REMOTE_ADDR="127.0.0.1", HTTP_HOST="127.0.0.1").environ
        handler(environ, lambda status, headers, exc_info=None: None)
    connections.close_all()  # this thread does not serve; the serving threads open their own


def _install(arbiter) -> None:
    if getattr(arbiter, "maimconfig_wait_installed", False):
        return
    original = arbiter.manage_workers

    def manage_workers():
        if getattr(arbiter, "maimconfig_reload_armed", False):
            arbiter.maimconfig_reload_armed = False
            wait_for_new_workers(arbiter)
        return original()

    arbiter.manage_workers = manage_workers
    arbiter.maimconfig_wait_installed = True


def _exited(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except OSError:
        return False


def wait_for_new_workers(arbiter, timeout: float = READY_TIMEOUT) -> bool:
    """Block the master until the `num_workers` youngest workers have served (heartbeat touched), one of
    them died, or `timeout` passed. True when all are ready."""
    started = time.monotonic()
    newest = sorted(arbiter.WORKERS.items(), key=lambda item: item[1].age)[-arbiter.num_workers:]
    pending = {pid: worker for pid, worker in newest}
    while pending and time.monotonic() - started < timeout:
        for pid, worker in list(pending.items()):
            if _exited(pid):
                arbiter.log.warning("New worker %s exited before serving; stopping the old ones anyway", pid)
                return False
            try:
                touched = worker.tmp.last_update() != getattr(worker, "maimconfig_heartbeat_at_spawn", None)
            except (OSError, ValueError):
                touched = False
            if touched:
                del pending[pid]
        time.sleep(0.05)
    if pending:
        arbiter.log.warning("New workers not serving after %.0f s; stopping the old ones anyway", timeout)
        return False
    arbiter.log.info("New workers serving after %.2f s; stopping the old ones", time.monotonic() - started)
    return True
