"""Plumbing of the async chat lane (README "Serving model", api.md §10.7).

A chat request waits for its upstream model on the event loop. Its database work (key verification,
loading the agent, its configuration and the conversation's history, storing the turn, counters) runs in
short bursts in a bounded executor of `MAIMCONFIG_CHAT_DB_THREADS` threads per worker process, so:

* the number of database connections the chat lane uses is bounded by that setting, however many chat
  requests are in flight (each thread keeps its own connection, reused under `CONN_MAX_AGE`);
* no connection and no transaction belongs to a request while it waits for the upstream: every burst
  runs in autocommit mode (explicit `transaction.atomic` blocks inside), and `close_old_connections`
  runs around it (a broken or expired connection is dropped, as Django does around each request).

`drf_call` runs a DRF view's machinery (authentication, permissions, content negotiation, the project's
exception handler and renderers) inside such a burst, so the async views answer exactly like the DRF ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connections
from django.http import HttpResponseBase

from core.lanes import admission_gate, current_admission

T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def db_executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=max(1, settings.MAIMCONFIG_CHAT_DB_THREADS),
                                           thread_name_prefix="chat-db")
        return _executor


def shutdown_db_executor() -> None:
    """Let queued bursts finish, then close the threads' connections (worker shutdown)."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is not None:
        for _ in range(executor._max_workers):
            executor.submit(connections.close_all)
        executor.shutdown(wait=True)


# SQLite has one writer at a time, and its shared-cache in-memory databases (the test suite) fail with
# "table is locked" instead of waiting: on SQLite this process's chat bursts take turns (the upstream calls,
# the slow part, still overlap). Other databases need no guard.
sqlite_lock = threading.RLock()


@contextlib.contextmanager
def sqlite_turn():
    """Chat database work on SQLite takes turns (`sqlite_lock`); on other databases a no-op."""
    if connections["default"].vendor == "sqlite":
        with sqlite_lock:
            yield
    else:
        yield


def _burst(fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
    with sqlite_turn():
        return _run(fn, args, kwargs)


def _run(fn, args, kwargs):
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


async def run_db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn(*args, **kwargs)` in the chat lane's database executor (with the caller's context vars:
    request id, current request) and await its result."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return await loop.run_in_executor(db_executor(), context.run, _burst, fn, args, kwargs)


# --- Admission (core.lanes: bot latency under a chat storm) ----------------------------------------------

async def run_admitted(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A chat request's first burst, `run_db(fn, …)`, then its place at the worker's admission gate is
    given back (`core.lanes`: the dispatcher admitted the request before Django saw it). Called without
    such a place (directly, not through the dispatcher), it takes one for the burst."""
    admission = current_admission()
    if admission is None or not admission.held:
        async with admission_gate():
            return await run_db(fn, *args, **kwargs)
    try:
        return await run_db(fn, *args, **kwargs)
    finally:
        admission.release()


def submit_db(fn: Callable[..., Any], *args: Any) -> None:
    """Fire-and-forget a burst (releasing concurrency slots from a cancelled request's cleanup)."""
    context = contextvars.copy_context()
    db_executor().submit(context.run, _burst, fn, args, {})


class DRFCall:
    """A DRF view instance set up for one Django request: `initial()` has run (authentication, permissions,
    throttles). `respond(data)` and `fail(exc)` give the rendered response the DRF view would give."""

    def __init__(self, view_cls, django_request, principal=None):
        view = view_cls()
        view.args, view.kwargs = (), {}
        view.format_kwarg = None
        view.request = self.request = view.initialize_request(django_request)
        view.headers = view.default_response_headers
        self.view = view
        if principal is not None:
            self._authenticated(principal)

    def _authenticated(self, principal) -> None:
        """The request authenticated as `principal`, the key `chat.fastprelude` verified on the loop:
        what `AgentKeyAuthentication` would have set (user, auth, the authenticator), without verifying it
        a second time."""
        from apikeys.authentication import AgentKeyAuthentication
        from apikeys.principal import AgentKeyUser

        request = self.request
        authenticator = request.authenticators[0] if request.authenticators else None
        if not isinstance(authenticator, AgentKeyAuthentication):
            authenticator = AgentKeyAuthentication()
        request._authenticator = authenticator
        request.user = AgentKeyUser(principal)
        request.auth = principal

    def respond(self, response) -> HttpResponseBase:
        response = self.view.finalize_response(self.request, response)
        if hasattr(response, "render"):
            response.render()
        _rate_limit_headers(self.request, response)
        return response

    def fail(self, exc: BaseException) -> HttpResponseBase:
        return self.respond(self.view.handle_exception(exc))


def _rate_limit_headers(request, response) -> None:
    """`X-RateLimit-*` of a rate-limited key (spec §1.14); the sync lane's AgentKeyUsageMiddleware does the same."""
    from apikeys.access import STATE_ATTR

    state = getattr(request._request, STATE_ATTR, None)
    if state is not None and state.rate is not None and state.rate.allowed:
        for name, value in state.rate.headers().items():
            response.setdefault(name, value)


def drf_call(view_cls, django_request, body: Callable[[DRFCall], Any], principal=None) -> Any:
    """In a burst: set up `view_cls` for the request, run DRF's checks, then `body(call)`. Any exception
    becomes the rendered error response of the project's exception handler (an HttpResponse). With
    `principal` the request is already authenticated as that agent key (`chat.fastprelude`)."""
    call = None
    try:
        call = DRFCall(view_cls, django_request, principal)
        call.view.initial(call.request)
        return body(call)
    except Exception as exc:  # noqa: BLE001 - every failure answers through the one exception handler
        if call is None:
            raise
        return call.fail(exc)


# --- A chat request's concurrency slots (chat.limits), given back however the request ends ----------------

def last_burst_release(slots):
    """What the request's last burst releases: per-process slots (no hop of their own); shared ones (Redis)
    are released on the loop after it (`release_slots`: one pipelined command, no redis-py round trip in a
    database thread)."""
    return None if slots.shared else slots.release


async def release_slots(slots) -> None:
    if slots.released:  # freed in the request's last burst: no hop
        return
    try:
        if await slots.release_on_loop():
            return
        await run_db(slots.release)
    except BaseException:  # cancelled (client gone) or the executor failed: release in the background
        submit_db(slots.release)
        raise


async def releasing_chunks(chunks, slots):
    """A streamed body that releases the request's slots when it ends, however it ends."""
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        try:
            await release_slots(slots)
        except BaseException:  # noqa: BLE001 - already handed to the background
            pass
