"""The serving model: one ASGI application that dispatches each request to a lane (README "Serving model").

gunicorn runs its native ASGI worker (`gunicorn.conf.py`); every worker process serves
`maimconfig.asgi:application`, a `LaneDispatcher`:

* **Chat lane** (`CHAT_LANE_PATHS`): in a gunicorn worker, the request's connection is first handed to the
  worker's chat process (`core.chatproc`), which runs this same dispatcher at a lower CPU priority; what
  follows runs there (or here, when there is no chat process). Django's ASGI handler with async views
  (`chat.aviews`). A chat request
  waits for its upstream model on the event loop, holding no thread and no database connection; its short
  database bursts run in the chat app's own bounded executor (`MAIMCONFIG_CHAT_DB_THREADS`).
  With Redis, the common chat request is answered before that by the chat express (`chat.express`,
  `register_chat_express`): on the event loop from its one Redis round trip, without Django's request
  machinery; anything unusual is declined to the chat lane unchanged.
* **Fast lane**: async handlers registered for exact `(method, path)` pairs with `register_fast_handler`.
  A handler receives the whole body and either answers the request itself or declines (returns False,
  having sent nothing); a declined request continues to the sync lane with the same body.
* **Sync lane** (everything else: bot routes, management API, admin, docs, static files): Django's WSGI
  handler, run in a bounded thread pool (`MAIMCONFIG_SYNC_THREADS` threads per worker). This is the
  bulkhead: chat requests never take these threads, so key verification and heartbeats keep their normal
  latency however many chats are in flight.

Database connections per worker are therefore at most `MAIMCONFIG_SYNC_THREADS + MAIMCONFIG_CHAT_DB_THREADS`
(+ `MAIMCONFIG_FAST_HEARTBEAT_THREADS` with Redis: the heartbeat fast lane's own pool, activity/fastlane.py).

Lifespan: at startup the URL configuration is loaded and the callbacks registered with `on_startup` run
(warm-ups); at shutdown (after gunicorn has let in-flight requests finish) the callbacks registered with
`on_shutdown` run in registration order, then the thread pools are drained.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import io
import logging
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost, RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.urls import get_urlconf, set_script_prefix
from django.utils.module_loading import import_string

from core import chatproc

logger = logging.getLogger("maimconfig.lanes")

# The routes whose requests wait on an upstream model (api.md §10, §11). Paths answer with and without
# a trailing slash (§1.1).
CHAT_LANE_PATHS = frozenset({"/api/v2/chat", "/api/v2/chat/batch", "/v1/chat/completions"})

# Middleware of the chat lane, outermost first: only async-capable classes, so a chat request makes no
# thread hop through the middleware. The sync lane keeps settings.MIDDLEWARE unchanged.
CHAT_LANE_MIDDLEWARE = (
    "core.middleware.RequestContextMiddleware",
    "core.lanes.LaneSecurityMiddleware",
    "core.middleware.ApiBodyGuardMiddleware",
    "core.middleware.ApiExceptionMiddleware",
)

FastHandler = Callable[[dict, bytes, Callable[[dict], Awaitable[None]]], Awaitable[bool]]

_fast_handlers: dict[tuple[str, str], FastHandler] = {}
_fast_prefixes: list[tuple[str, str, FastHandler]] = []
_startup_callbacks: list[Callable[[], Any]] = []
_shutdown_callbacks: list[Callable[[], Any]] = []


def _path_variants(path: str) -> tuple[str, ...]:
    stripped = path.rstrip("/") or "/"
    return (stripped,) if stripped == "/" else (stripped, stripped + "/")


def is_chat_lane(path: str) -> bool:
    return (path[:-1] if path.endswith("/") else path) in CHAT_LANE_PATHS


def register_fast_handler(method: str, path: str, handler: FastHandler) -> None:
    """Serve `method path` (exact; with and without a trailing slash) by `handler` before the sync lane.

    `async def handler(scope, body: bytes, send) -> bool`: send a complete ASGI response and return True,
    or send nothing and return False to let the sync lane (Django) answer the request. It runs on the event
    loop, so it must not block (no database query; Redis through an async client). Call this from an app's
    `AppConfig.ready()`; a second registration for the same pair replaces the first.
    """
    if not iscoroutinefunction(handler):
        raise TypeError("A fast-lane handler must be an async function.")
    for variant in _path_variants(path):
        _fast_handlers[(method.upper(), variant)] = handler


def unregister_fast_handler(method: str, path: str) -> None:
    for variant in _path_variants(path):
        _fast_handlers.pop((method.upper(), variant), None)


def register_fast_prefix(method: str, prefix: str, handler: FastHandler) -> None:
    """Offer every `method` request whose path starts with `prefix` to `handler` (same contract as
    `register_fast_handler`), when no exact registration matches. Prefixes are tried in registration order;
    the first that answers True ends the request, one that declines passes it on to the next, then to
    Django. For routes with identifiers in the path (a read cache, say), where an exact path cannot be named.
    """
    if not iscoroutinefunction(handler):
        raise TypeError("A fast-lane handler must be an async function.")
    unregister_fast_prefix(method, prefix)
    _fast_prefixes.append((method.upper(), prefix, handler))


def unregister_fast_prefix(method: str, prefix: str) -> None:
    _fast_prefixes[:] = [e for e in _fast_prefixes if (e[0], e[1]) != (method.upper(), prefix)]


async def _offer_to_prefixes(scope, body: bytes, send) -> bool:
    method, path = scope["method"], scope["path"]
    for m, prefix, handler in _fast_prefixes:
        if m == method and path.startswith(prefix) and await handler(scope, body, send):
            return True
    return False


ChatExpress = Callable[[dict, bytes, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]],
                      Awaitable[bool]]

_chat_express: dict[tuple[str, str], ChatExpress] = {}


def register_chat_express(path: str, handler: ChatExpress) -> None:
    """Offer `POST path` (a chat-lane path) to `handler` before the chat lane's admission gate and Django.

    `async def handler(scope, body, receive, send) -> bool`: the same contract as a fast handler (answer
    completely and return True, or send nothing, consume nothing and return False: the request then takes
    the chat lane as before), with `receive` for the disconnect watch of a request that waits on an upstream.
    """
    if not iscoroutinefunction(handler):
        raise TypeError("A chat express handler must be an async function.")
    for variant in _path_variants(path):
        _chat_express[("POST", variant)] = handler


def unregister_chat_express(path: str) -> None:
    for variant in _path_variants(path):
        _chat_express.pop(("POST", variant), None)


def on_startup(callback: Callable[[], Any]) -> Callable[[], Any]:
    """Run `callback` (sync, in a thread) when a worker starts, before it serves (ASGI lifespan startup):
    warm-ups that should not cost the first request. A failing callback is logged, never fatal."""
    _startup_callbacks.append(callback)
    return callback


def _run_startup_callbacks() -> None:
    from django.urls import get_resolver

    get_resolver().url_patterns  # import every view now, not during the first request
    for callback in list(_startup_callbacks):
        try:
            callback()
        except Exception:  # noqa: BLE001 - a warm-up failure must not stop the worker
            logger.exception("Startup callback failed")


def on_shutdown(callback: Callable[[], Any]) -> Callable[[], Any]:
    """Run `callback` when a worker shuts down gracefully (ASGI lifespan shutdown), after in-flight requests.

    Sync callbacks run in a sync-lane thread (they may use the database); async ones on the event loop.
    A failing callback is logged and does not stop the others. Usable as a decorator.
    """
    _shutdown_callbacks.append(callback)
    return callback


async def run_shutdown_callbacks(executor: ThreadPoolExecutor | None = None) -> None:
    loop = asyncio.get_running_loop()
    for callback in list(_shutdown_callbacks):
        try:
            if inspect.iscoroutinefunction(callback):
                await callback()
            else:
                await loop.run_in_executor(executor, _run_closing_connections, callback)
        except Exception:  # noqa: BLE001 - one failing hook must not skip the others
            logger.exception("Shutdown callback failed", extra={"callback": getattr(callback, "__qualname__", "")})


def _run_closing_connections(callback):
    from django.db import connections

    try:
        return callback()
    finally:
        connections.close_all()


class LaneSecurityMiddleware:
    """The chat lane's share of the sync stack, without thread hops: the `Host` check (a disallowed host
    answers 400 as in the sync lane) and the security headers of Django's SecurityMiddleware."""

    async_capable = True
    sync_capable = False

    def __init__(self, get_response):
        from django.middleware.security import SecurityMiddleware

        self.get_response = get_response
        self._security = SecurityMiddleware(get_response)
        markcoroutinefunction(self)

    async def __call__(self, request):
        try:
            request.get_host()
        except DisallowedHost as exc:
            from core.views import bad_request

            return bad_request(request, exc)
        redirect = self._security.process_request(request)
        if redirect is not None:
            return redirect
        response = await self.get_response(request)
        return self._security.process_response(request, response)


class ChatLaneHandler(ASGIHandler):
    """Django's ASGI handler with the chat lane's async-only middleware (`CHAT_LANE_MIDDLEWARE`)."""

    def __init__(self):
        super().__init__()
        # (URLconf, path) -> ResolverMatch of the chat routes: the handful of chat-lane paths resolve to the
        # same views every time, and walking the whole URLconf for each chat request (every include before
        # the chat routes is tried) was measurable CPU on the event loop in a chat storm.
        self._resolved: dict[tuple[str, str], Any] = {}

    def resolve_request(self, request):
        """Django's, with the match of a chat-lane path remembered per URLconf (`request.urlconf` or the
        current one, so an override in tests resolves afresh); a failure (404) is not remembered."""
        urlconf = getattr(request, "urlconf", None)
        if urlconf is not None:
            return super().resolve_request(request)
        key = (get_urlconf() or settings.ROOT_URLCONF, request.path_info)
        match = self._resolved.get(key)
        if match is None:
            match = super().resolve_request(request)
            if len(self._resolved) < 64:
                self._resolved[key] = match
            return match
        request.resolver_match = match
        return match

    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response_async)
        for path in reversed(CHAT_LANE_MIDDLEWARE):
            middleware = import_string(path)
            if not getattr(middleware, "async_capable", False):
                raise TypeError(f"Chat-lane middleware {path} must be async-capable.")
            instance = middleware(handler)
            if not iscoroutinefunction(instance):
                raise TypeError(f"Chat-lane middleware {path} did not become async.")
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler

    async def _get_response_async(self, request):
        """Django's, for the chat lane's async views, without a thread hop to render the answer.

        Django renders any response that has a `render` method (DRF's `Response` has one) with
        `sync_to_async(response.render)`, inside the per-request `ThreadSensitiveContext` of
        `ASGIHandler.__call__`: a new executor thread started and joined for every chat request, though the
        chat views hand back answers they have already rendered (`chat.aio.DRFCall.respond`). The chat lane
        has no view or template-response middleware, so here an async view is awaited and its answer is
        rendered inline only if it is not rendered yet (rendering is CPU work). Anything else (a sync view)
        takes Django's path.
        """
        callback, callback_args, callback_kwargs = self.resolve_request(request)
        if not iscoroutinefunction(callback) or self._view_middleware or self._template_response_middleware:
            return await super()._get_response_async(request)
        try:
            response = await callback(request, *callback_args, **callback_kwargs)
        except Exception as exc:
            response = await sync_to_async(self.process_exception_by_middleware, thread_sensitive=True)(
                exc, request)
            if response is None:
                raise
        self.check_response(response, callback)
        if callable(getattr(response, "render", None)) and not response.is_rendered:
            response = response.render()
        return response

    async def handle(self, scope, receive, send):
        """Django's `ASGIHandler.handle`, without its two thread hops per request.

        Django sends `request_started` with `Signal.asend` and closes the response with
        `sync_to_async(response.close)`, so each request's sync receivers (`close_old_connections`,
        `reset_queries`, `close_caches`, `reset_urlconf`) run in asgiref's one thread-sensitive thread. In
        a chat storm every chat of the worker queued on that single thread twice (issue 10). Here they run
        inline: on the event loop there is nothing for them to block on, because the chat lane never opens
        a database connection on it (its database work runs in `chat.aio`'s executor, whose threads manage
        their own connections), and a cache's `close` is a no-op for the local-memory and django-redis
        backends. Everything else is Django's: the body, the request, the disconnect watch that cancels
        the view (and so frees a chat's slots) when the client goes away, the response.
        """
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            error_response.close()
            return

        async def process_request(request, send):
            response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client disconnected while the response was sent
            return response

        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()  # views may handle the cancellation
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            signals.request_finished.send(sender=self.__class__)
        else:
            response.close()  # sends request_finished
        body_file.close()


# --- Chat admission: bot latency under a chat storm ----------------------------------------------------
#
# A worker's event loop also serves the bot fast lane (validate, heartbeats). When hundreds of chats arrive
# at once, Django's handling of each one (the request, the middleware, the view's setup) and its first
# database burst would all queue on the loop together, and a bot request, which needs a few loop turns,
# would wait behind all of them. The dispatcher therefore admits at most `settings.MAIMCONFIG_CHAT_ADMISSION`
# chat requests per worker at once, from the moment Django sees the request until the end of its first
# database burst (`release_admission`, called by the chat lane, `chat.aio.run_admitted`); the others wait
# at the gate, each a future on the loop (no CPU, no thread, no connection). A request's body is read
# before it queues, and its wait for the upstream model is never gated.

_admission_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary())


def admission_gate() -> asyncio.Semaphore:
    """The running loop's (the worker's) chat admission gate."""
    loop = asyncio.get_running_loop()
    gate = _admission_gates.get(loop)
    if gate is None:
        gate = _admission_gates[loop] = asyncio.Semaphore(max(1, int(settings.MAIMCONFIG_CHAT_ADMISSION)))
    return gate


class Admission:
    """A chat request's place at the gate; `release()` gives it back (once)."""

    def __init__(self, gate: asyncio.Semaphore):
        self._gate = gate
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._gate.release()


_admission_var: contextvars.ContextVar[Admission | None] = contextvars.ContextVar("chat_admission", default=None)


def current_admission() -> Admission | None:
    """The place the dispatcher took for the chat request being served (None outside one)."""
    return _admission_var.get()


def release_admission() -> None:
    """Give the current chat request's place at the gate back (after its first database burst)."""
    admission = _admission_var.get()
    if admission is not None:
        admission.release()


# --- Sync lane: Django's WSGI handler in a bounded thread pool --------------------------------------

def _wsgi_environ(scope: dict, body: bytes) -> dict:
    """A PEP 3333 environ for an ASGI HTTP scope whose body has been read."""
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    script_name = scope.get("root_path", "")
    path = scope["path"]
    if script_name and path.startswith(script_name):
        path = path[len(script_name):]
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name.encode("utf-8").decode("latin-1"),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1] if server[1] is not None else 80),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": client[0] if client else "",
        "REMOTE_PORT": str(client[1]) if client else "0",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name == "CONTENT_TYPE":
            key = "CONTENT_TYPE"
        elif name == "CONTENT_LENGTH":
            key = "CONTENT_LENGTH"
        else:
            key = "HTTP_" + name
        if key in environ:
            value = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + value
        environ[key] = value
    return environ


# A WSGI body larger than this is relayed to the client while the app still produces it (backpressure);
# smaller ones (every API answer) are sent in one go after the app returns: one thread hop per request.
_BUFFER_LIMIT = 256 * 1024


class SyncLane:
    """Runs a WSGI application for ASGI requests in a bounded pool of `threads` threads; `initializer`, if
    given, runs once in each thread when the pool starts it (`core.handlers.prepare_thread`)."""

    def __init__(self, wsgi_app, threads: int, initializer: Callable[[], Any] | None = None):
        self.wsgi_app = wsgi_app
        self.threads = threads
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sync-lane",
                                           initializer=initializer)

    async def __call__(self, scope: dict, body: bytes, send) -> None:
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        status, headers, chunks, streamed = await loop.run_in_executor(
            self.executor, context.run, self._run, scope, body, send, loop)
        if streamed:
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"".join(chunks)})

    def _run(self, scope, body, send, loop):
        state: dict[str, Any] = {}

        def start_response(status, response_headers, exc_info=None):
            if exc_info and state.get("started"):
                raise exc_info[1].with_traceback(exc_info[2])
            state["status"] = int(status.split(" ", 1)[0])
            state["headers"] = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                                for name, value in response_headers]
            return lambda data: chunks.append(data)

        def relay(message):
            asyncio.run_coroutine_threadsafe(send(message), loop).result()

        chunks: list[bytes] = []
        size = 0
        streamed = False
        result = self.wsgi_app(_wsgi_environ(scope, body), start_response)
        try:
            for chunk in result:
                if not chunk:
                    continue
                if streamed:
                    relay({"type": "http.response.body", "body": chunk, "more_body": True})
                    continue
                chunks.append(chunk)
                size += len(chunk)
                if size > _BUFFER_LIMIT:
                    streamed = True
                    relay({"type": "http.response.start", "status": state["status"], "headers": state["headers"]})
                    relay({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})
                    chunks = []
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        if streamed:
            relay({"type": "http.response.body", "body": b""})
        return state["status"], state["headers"], chunks, streamed


async def read_body(receive, limit: int) -> tuple[bytes, bool]:
    """The request body, at most `limit + 1` bytes (the sync lane's guard answers 413 above `limit`).
    Returns (body, disconnected)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"", True
        chunk = message.get("body", b"")
        if chunk and size <= limit:
            parts.append(chunk)
            size += len(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(parts)
    return body[: limit + 1], False


class LaneDispatcher:
    """The ASGI application of a worker: lifespan, then each HTTP request to its lane (module docstring)."""

    def __init__(self, *, chat_app, wsgi_app, sync_threads: int, body_limit: int,
                 thread_initializer: Callable[[], Any] | None = None):
        self.chat_app = chat_app
        self.sync_lane = SyncLane(wsgi_app, sync_threads, thread_initializer)
        self.body_limit = body_limit

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            if is_chat_lane(scope["path"]):
                await self._admitted_chat(scope, receive, send)
                return
            body, disconnected = await read_body(receive, self.body_limit)
            if disconnected:
                return
            handler = _fast_handlers.get((scope["method"], scope["path"])) if _fast_handlers else None
            if handler is not None:
                if await handler(scope, body, send):
                    return
            elif _fast_prefixes and await _offer_to_prefixes(scope, body, send):
                return
            await self.sync_lane(scope, body, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:  # websocket: not served
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1000})

    async def _admitted_chat(self, scope, receive, send):
        """A chat request: its body is read first (a slow client holds no place at the gate), then it waits
        for a place at the worker's admission gate before Django sees it, and gives the place back after its
        first database burst (`release_admission`, called by the chat lane) or when it ends."""
        body, disconnected = await read_body(receive, self.body_limit)
        if disconnected:
            return
        process = chatproc.front()
        if process is not None and await process.handoff(scope, body, receive):
            return
        express = _chat_express.get((scope["method"], scope["path"])) if _chat_express else None
        if express is not None and await express(scope, body, receive, send):
            return
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # Django's disconnect watch

        gate = admission_gate()
        await gate.acquire()
        admission = Admission(gate)
        token = _admission_var.set(admission)
        try:
            await self.chat_app(scope, replay, send)
        finally:
            admission.release()
            _admission_var.reset(token)

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.get_running_loop().run_in_executor(None, _run_startup_callbacks)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await run_shutdown_callbacks(self.sync_lane.executor)
                await self.shutdown_pools()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def shutdown_pools(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.sync_lane.executor.shutdown, True)


_build_lock = threading.Lock()


def build_application() -> LaneDispatcher:
    """The worker's application (used by `maimconfig/asgi.py`); Django must be set up first."""
    from core.handlers import ServiceWSGIHandler, prepare_thread  # no request transaction on safe methods

    with _build_lock:
        return LaneDispatcher(chat_app=ChatLaneHandler(), wsgi_app=ServiceWSGIHandler(),
                              sync_threads=settings.MAIMCONFIG_SYNC_THREADS, thread_initializer=prepare_thread,
                              body_limit=max(settings.MAIMCONFIG_MAX_BODY_BYTES,
                                             settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0))
