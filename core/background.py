"""The write-behind thread of a serving process: ONE background thread per worker runs the apps' periodic
database work (pending key uses, `apikeys.usage`; queued usage-log entries, `activity.writebehind`) every
`MAIMCONFIG_USAGE_FLUSH_SECONDS`, and each task's final round when the worker stops.

Why one thread for every task: a thread that touches the database keeps its connection for the life of the
worker, and the connection bound of the serving model (README "Serving model") counts exactly one per
worker for all write-behind work, however many apps write behind.

`core` knows nothing of what runs: apps `register` their tasks (from `AppConfig.ready()` or when their fast
lane registers), and the worker's application module (`maimconfig/asgi.py`, `maimconfig/wsgi.py`) calls
`serve()`. A task that fails is logged and retried at the next tick; it never stops the others. After a
fork (a preloaded application), the first caller of `ensure_running()` in the child starts its thread.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger("maimconfig.background")


@dataclass(frozen=True)
class Task:
    name: str
    tick: Callable[[], object]
    final: Callable[[], object]


_tasks: dict[str, Task] = {}
_lock = threading.Lock()
_state: dict = {"thread": None, "stop": None, "wanted": False, "registered": False, "forked": False}


def _after_fork_in_child() -> None:
    """A forked child has none of its parent's threads: forget the parent's, and a lock its thread may have
    held at the fork. `ensure_running` then starts this process's own thread on first use (a dictionary
    look-up on the hot path, not an `os.getpid()` system call per request)."""
    global _lock
    _lock = threading.Lock()
    _state.update(thread=None, stop=None, forked=True)


os.register_at_fork(after_in_child=_after_fork_in_child)


def register(name: str, tick: Callable[[], object], *, final: Callable[[], object] | None = None) -> None:
    """Run `tick` at every interval in the worker's background thread, and `final` (default: `tick`) once
    when the worker stops. Registering a name again replaces its task."""
    with _lock:
        _tasks[name] = Task(name, tick, final or tick)


def unregister(name: str) -> None:
    with _lock:
        _tasks.pop(name, None)


def interval_seconds() -> float:
    return max(0.05, float(getattr(settings, "MAIMCONFIG_USAGE_FLUSH_SECONDS", 1.0)))


def serve() -> None:
    """This process is a serving worker: start its thread now, stop it (with each task's final round) at a
    graceful shutdown (`core.lanes.on_shutdown`, `atexit` as the fallback of a WSGI server)."""
    from core.lanes import on_shutdown

    _state["wanted"] = True
    if not _state["registered"]:
        on_shutdown(stop)
        atexit.register(stop)
        _state["registered"] = True
    start()


def ensure_running() -> None:
    """Cheap check for hot paths that leave work for the thread: a serving process whose thread did not
    survive a fork starts it."""
    if _state["forked"] and _state["wanted"]:
        start()


def start() -> None:
    """Start this process's thread (idempotent per process)."""
    with _lock:
        thread = _state["thread"]
        if thread is not None and thread.is_alive():
            return
        stop_event = threading.Event()
        thread = threading.Thread(target=_loop, args=(stop_event, interval_seconds()), daemon=True,
                                  name="maimconfig-write-behind")
        _state.update(thread=thread, stop=stop_event, forked=False)
    thread.start()


def stop() -> None:
    """Stop the thread, then run every task's final round in the caller's thread. A second call only runs
    the final rounds again (harmless: the tasks' flushes are idempotent)."""
    with _lock:
        thread, stop_event = _state["thread"], _state["stop"]
        _state.update(thread=None, stop=None)
    if stop_event is not None:
        stop_event.set()
    if thread is not None and thread.is_alive():
        thread.join(timeout=5)
    _run_all(final=True)
    close_old_connections()


def run_once() -> None:
    """One round of every task, in the caller's thread (what the thread does at each tick)."""
    _run_all(final=False)


def _run_all(*, final: bool) -> None:
    with _lock:
        tasks = list(_tasks.values())
    for task in tasks:
        try:
            (task.final if final else task.tick)()
        except Exception:  # noqa: BLE001 - one task's failure must not stop the others or the thread
            logger.exception("Write-behind task %r failed; its work stays pending for the next round.", task.name)


def _loop(stop_event: threading.Event, interval: float) -> None:
    while not stop_event.wait(interval):
        close_old_connections()
        _run_all(final=False)
    close_old_connections()
