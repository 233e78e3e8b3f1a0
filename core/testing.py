"""Test helpers shared by every app's tests (imported by tests only)."""

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from django.db import connection
from rest_framework.test import APIClient


@contextlib.contextmanager
def statements_in_every_thread():
    """Every SQL statement any thread runs inside the block, in order (a list filled as they run).

    `django.test.utils.CaptureQueriesContext` sees one connection of one thread; the fast lanes run their
    database work on pool threads with connections of their own, so the query budgets of those paths are
    asserted with this instead."""
    from unittest import mock

    from django.db.backends import utils as db_utils

    seen: list[str] = []
    original = db_utils.CursorWrapper.execute

    def execute(cursor, sql, params=None):
        seen.append(sql)
        return original(cursor, sql, params)

    with mock.patch.object(db_utils.CursorWrapper, "execute", execute):
        yield seen


def run_concurrently(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` threads released together by a barrier; results in index order.

    Each thread has its own database connection (real, concurrent transactions), closed at the end.
    """
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def token_client(token: str) -> APIClient:
    """An API client sending the operator token (a fresh one per thread)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


_app = None


def _shared_app():
    """One lane dispatcher for the test process (its thread pools live as long as the process)."""
    global _app
    if _app is None:
        from core.lanes import build_application

        _app = build_application()
    return _app


class AsgiResult:
    """The answer of `asgi_request`: status, lower-case headers, the whole body."""

    def __init__(self, status: int, headers: dict[str, str], content: bytes):
        self.status_code = status
        self.headers = headers
        self.content = content

    def json(self):
        import json

        return json.loads(self.content)

    def __getitem__(self, name: str) -> str:
        return self.headers[name.lower()]


def asgi_request(method: str, path: str, *, json_body: Any = None, headers: dict[str, str] | None = None,
                 app=None, disconnect_after: int | None = None, query: str = "",
                 raw_body: bytes | None = None) -> AsgiResult:
    """One request through the service's real ASGI application (`core.lanes`, the lane dispatcher), in one
    event loop from the request to the last byte of a streamed answer (as gunicorn's worker serves it).
    `disconnect_after=n`: the client goes away after n body messages of the answer. `raw_body`: these bytes
    as the body, as they are (the caller's `headers` name their type and length)."""
    import asyncio
    import json

    app = app or _shared_app()
    body = raw_body if raw_body is not None else b"" if json_body is None else json.dumps(json_body).encode()
    raw_headers = [(b"host", b"testserver")]
    if json_body is not None:
        raw_headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    for name, value in (headers or {}).items():
        raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "root_path": "", "headers": raw_headers, "client": ("127.0.0.1", 50000),
             "server": ("testserver", 80)}

    async def run() -> AsgiResult:
        sent_body = False
        gone = asyncio.Event()
        state: dict[str, Any] = {"status": 0, "headers": {}, "chunks": [], "messages": 0}

        async def receive():
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["headers"] = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in message["headers"]}
            elif message["type"] == "http.response.body":
                state["chunks"].append(message.get("body", b""))
                state["messages"] += 1
                if disconnect_after is not None and state["messages"] >= disconnect_after:
                    gone.set()  # the server sees http.disconnect and abandons the response
                if not message.get("more_body"):
                    gone.set()

        await app(scope, receive, send)
        return AsgiResult(state["status"], state["headers"], b"".join(state["chunks"]))

    from asgiref.sync import async_to_sync

    return async_to_sync(run)()


class FastLaneSpy:
    """A registered fast-lane handler (`core.lanes.register_fast_handler`) wrapped for tests.

    `outcomes` lists, per request that reached it, True (it answered) or False (it declined to Django);
    inside `with spy.django_only():` the route is out of the table, so requests go straight to Django.
    """

    def __init__(self, method: str, path: str, handler):
        self.method, self.path, self.handler = method, path, handler
        self.outcomes: list[bool] = []

    async def __call__(self, scope, body, send):
        answered = await self.handler(scope, body, send)
        self.outcomes.append(answered)
        return answered

    @contextlib.contextmanager
    def django_only(self):
        from core import lanes

        saved = {key: lanes._fast_handlers.pop(key) for key in list(lanes._fast_handlers)
                 if key[0] == self.method and (key[1].rstrip("/") or "/") == self.path}
        try:
            yield
        finally:
            lanes._fast_handlers.update(saved)


class FastPrefixSpy(FastLaneSpy):
    """A prefix handler (`core.lanes.register_fast_prefix`) wrapped the same way, under every prefix it is
    registered for; inside `django_only()` none of them is offered it."""

    def __init__(self, handler):
        super().__init__("", "", handler)

    @contextlib.contextmanager
    def django_only(self):
        from core import lanes

        saved = list(lanes._fast_prefixes)
        lanes._fast_prefixes[:] = [entry for entry in saved if entry[2] is not self]
        try:
            yield
        finally:
            lanes._fast_prefixes[:] = saved


def spy_on_fast_prefix(monkeypatch, expected) -> FastPrefixSpy:
    """Replace the prefix handler `expected` (which must be registered) with a `FastPrefixSpy`."""
    from core import lanes

    spy = FastPrefixSpy(expected)
    entries = [(method, prefix, spy if handler is expected else handler)
               for method, prefix, handler in lanes._fast_prefixes]
    assert any(handler is spy for _, _, handler in entries), f"{expected.__qualname__} is registered"
    monkeypatch.setattr(lanes, "_fast_prefixes", entries)
    return spy


def spy_on_fast_handler(monkeypatch, method: str, path: str, expected) -> FastLaneSpy:
    """Replace the handler registered for `method path` (which must be `expected`) with a `FastLaneSpy`."""
    from core import lanes

    handler = lanes._fast_handlers.get((method, path))
    assert handler is expected, f"{expected.__qualname__} is registered for {method} {path}"
    spy = FastLaneSpy(method, path, handler)
    for variant in (path, path + "/"):
        monkeypatch.setitem(lanes._fast_handlers, (method, variant), spy)
    return spy
