"""The lane dispatcher (core.lanes, README "Serving model"): chat paths to the chat lane, the fast-lane hook
(answer or decline with the same body), the sync lane's bounded pool, and the lifespan callbacks."""

import asyncio
import json

import pytest

from core import lanes
from core.testing import _shared_app, asgi_request

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("path", ["/api/v2/chat", "/api/v2/chat/", "/api/v2/chat/batch", "/api/v2/chat/batch/",
                                  "/v1/chat/completions", "/v1/chat/completions/"])
def test_chat_paths_take_the_chat_lane(path):
    assert lanes.is_chat_lane(path)


@pytest.mark.parametrize("path", ["/api/v2/chat-agents", "/api/v2/chat/conversations/c/messages", "/v1/models",
                                  "/api/v2/auth/validate-api-key", "/api/v2/agent-activity", "/", "/admin/"])
def test_other_paths_take_the_sync_lane(path):
    assert not lanes.is_chat_lane(path)


@pytest.fixture
def fast_handlers():
    registered = []

    def register(method, path, handler):
        lanes.register_fast_handler(method, path, handler)
        registered.append((method, path))

    yield register
    for method, path in registered:
        lanes.unregister_fast_handler(method, path)


def test_fast_handler_answers_the_request(fast_handlers):
    seen = {}

    async def handler(scope, body, send):
        seen["body"] = body
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"fast " + body})
        return True

    fast_handlers("POST", "/api/v2/auth/parse-api-key", handler)
    for path in ("/api/v2/auth/parse-api-key", "/api/v2/auth/parse-api-key/"):
        response = asgi_request("POST", path, json_body={"api_key": "x"})
        assert response.status_code == 200 and response.content == b'fast {"api_key": "x"}'
    assert seen["body"] == b'{"api_key": "x"}'
    # Another method on the same path is not the handler's.
    response = asgi_request("GET", "/api/v2/auth/parse-api-key")
    assert response.status_code == 405


def test_declining_handler_passes_the_same_body_to_django(fast_handlers):
    calls = []

    async def decline(scope, body, send):
        calls.append(body)
        return False

    fast_handlers("POST", "/api/v2/auth/parse-api-key", decline)
    response = asgi_request("POST", "/api/v2/auth/parse-api-key", json_body={"api_key": "not-a-key"},
                            headers={"X-Request-ID": "fast-decline-1"})
    assert calls == [b'{"api_key": "not-a-key"}']
    assert response.status_code == 200  # Django's verdict, from the same body
    body = response.json()
    assert body["error_code"] == "AUTH_001" and body["request_id"] == "fast-decline-1"


def test_prefix_handlers_are_offered_in_order_after_exact_routes(fast_handlers):
    seen = []

    def handler(name, answer):
        async def handle(scope, body, send):
            seen.append((name, scope["path"]))
            if answer:
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": name.encode()})
            return answer
        return handle

    async def exact(scope, body, send):
        seen.append(("exact", scope["path"]))
        return False

    registered = list(lanes._fast_prefixes)  # with Redis, the read cache's (readcache.fastlane)
    lanes._fast_prefixes.clear()
    lanes.register_fast_prefix("GET", "/api/v2/tenants/", handler("declines", False))
    lanes.register_fast_prefix("GET", "/api/v2/", handler("answers", True))
    fast_handlers("GET", "/api/v2/system/models", exact)
    try:
        response = asgi_request("GET", "/api/v2/tenants/t_1")
        assert response.status_code == 200 and response.content == b"answers"
        assert seen == [("declines", "/api/v2/tenants/t_1"), ("answers", "/api/v2/tenants/t_1")]
        seen.clear()
        # An exact registration takes the request alone: declining sends it to Django, not to a prefix.
        response = asgi_request("GET", "/api/v2/system/models")
        assert seen == [("exact", "/api/v2/system/models")] and response.status_code == 401
        seen.clear()
        # Another method, or a path outside every prefix, is not offered.
        assert asgi_request("GET", "/health").status_code in (200, 503) and seen == []
    finally:
        lanes.unregister_fast_prefix("GET", "/api/v2/tenants/")
        lanes.unregister_fast_prefix("GET", "/api/v2/")
        assert lanes._fast_prefixes == []
        lanes._fast_prefixes[:] = registered


def test_fast_handlers_must_be_async():
    def sync_handler(scope, body, send):
        return False

    with pytest.raises(TypeError):
        lanes.register_fast_handler("GET", "/x", sync_handler)


def test_sync_lane_serves_django_with_headers_and_query(operator_client):
    response = asgi_request("GET", "/api/v2/tenants", query="page=1&page_size=5",
                            headers={"X-Request-ID": "sync-lane-1", "Authorization": "Token nope"})
    assert response.status_code == 401 and response["x-request-id"] == "sync-lane-1"
    assert response["www-authenticate"] == 'Bearer realm="maimconfig"'


def test_sync_lane_pool_is_bounded_by_the_setting(settings):
    settings.MAIMCONFIG_SYNC_THREADS = 3
    app = lanes.build_application()
    try:
        assert app.sync_lane.executor._max_workers == 3
    finally:
        app.sync_lane.executor.shutdown()


def test_sync_lane_threads_start_with_their_database_and_cache_handles():
    """core.handlers.prepare_thread: a new sync-lane thread holds Django's handle on each database and
    cache before its first request (Django's request-end walk then finds them), and opens no connection."""
    from django.core.cache import caches
    from django.db import connections

    app = lanes.build_application()

    def handles():
        return ([c.alias for c in connections.all(initialized_only=True)],
                [c.connection is None for c in connections.all(initialized_only=True)],
                len(caches.all(initialized_only=True)))

    try:
        databases, unconnected, cache_count = app.sync_lane.executor.submit(handles).result(timeout=10)
    finally:
        app.sync_lane.executor.shutdown()
    assert sorted(databases) == sorted(connections) and all(unconnected)
    assert cache_count == len(list(caches))


def test_sync_lane_streams_large_bodies():
    """A body larger than the buffer goes out in several messages, in order."""
    big = [b"x" * 100_000, b"y" * 100_000, b"z" * 100_000]

    def wsgi_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return iter(big)

    lane = lanes.SyncLane(wsgi_app, 2)
    messages = []

    async def send(message):
        messages.append(message)

    scope = {"type": "http", "method": "GET", "path": "/big", "query_string": b"", "headers": []}
    asyncio.run(lane(scope, b"", send))
    lane.executor.shutdown()
    assert messages[0]["type"] == "http.response.start" and messages[0]["status"] == 200
    bodies = [m["body"] for m in messages[1:]]
    assert len(bodies) > 1 and b"".join(bodies) == b"".join(big) and messages[-1].get("more_body") is not True


def test_lifespan_runs_startup_and_shutdown_callbacks(monkeypatch):
    order = []
    monkeypatch.setattr(lanes, "_startup_callbacks", [lambda: order.append("startup")])

    def failing():
        order.append("failing")
        raise RuntimeError("boom")

    async def async_hook():
        order.append("async")

    monkeypatch.setattr(lanes, "_shutdown_callbacks", [])
    lanes.on_shutdown(failing)
    lanes.on_shutdown(async_hook)
    lanes.on_shutdown(lambda: order.append("sync"))
    app = lanes.build_application()
    sent = []
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive():
        return inbox.pop(0)

    async def send(message):
        sent.append(message["type"])

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert order == ["startup", "failing", "async", "sync"]  # a failing hook does not stop the others


def test_chat_lane_answers_in_the_envelope_with_security_headers():
    response = asgi_request("POST", "/api/v2/chat", json_body={"message": "hi"},
                            headers={"X-Request-ID": "chat-lane-1"})
    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED" and response.json()["request_id"] == "chat-lane-1"
    assert response["x-content-type-options"] == "nosniff" and response["x-request-id"] == "chat-lane-1"


def test_chat_lane_refuses_a_disallowed_host():
    response = asgi_request("POST", "/api/v2/chat", json_body={"message": "hi"}, headers={"Host": "evil.example"})
    assert response.status_code == 400 and response.json()["error_code"] == "VALIDATION_ERROR"


def test_chat_lane_body_guard():
    too_big = asgi_request("POST", "/api/v2/chat", json_body={"message": "x" * 2_000_000})
    assert too_big.status_code == 413 and json.loads(too_big.content)["error_code"] == "PAYLOAD_TOO_LARGE"


async def _teapot(request):
    from django.http import HttpResponse

    return HttpResponse(b"another urlconf", status=418)


# A URLconf for the override in the test below (ROOT_URLCONF = this module).
urlpatterns = [__import__("django.urls").urls.path("v1/chat/completions", _teapot)]


def test_chat_lane_resolves_a_chat_path_once_per_urlconf(monkeypatch, settings):
    """The chat lane remembers the match of its few paths (no walk of the whole URLconf per chat request);
    another URLconf (an override) resolves afresh."""
    from django.urls.resolvers import URLResolver

    walks = []
    resolve = URLResolver.resolve

    def counting(self, path):
        if self.pattern.regex.pattern == "^/":  # the root resolver: a walk of the URLconf
            walks.append(path)
        return resolve(self, path)

    monkeypatch.setattr(URLResolver, "resolve", counting)
    app = lanes.build_application()
    for _ in range(3):
        response = asgi_request("POST", "/v1/chat/completions", json_body={"messages": []}, app=app)
        assert response.status_code == 401
    assert walks == ["/v1/chat/completions"]
    settings.ROOT_URLCONF = __name__
    response = asgi_request("POST", "/v1/chat/completions", json_body={"messages": []}, app=app)
    assert response.status_code == 418 and response.content == b"another urlconf"
    assert len(walks) == 2


def test_shared_app_is_the_lane_dispatcher():
    assert isinstance(_shared_app(), lanes.LaneDispatcher)


def test_chat_lane_request_signals_run_on_the_event_loop_not_in_a_thread():
    """Django's ASGI handler runs the request signals' receivers in asgiref's single thread-sensitive thread
    (two hops per request, on which every chat of a worker queued in a storm); the chat lane runs them inline
    on the loop (core.lanes.ChatLaneHandler.handle)."""
    import threading

    from django.core import signals

    seen: list[tuple[str, bool]] = []

    def started(**kwargs):
        seen.append(("started", _on_a_loop()))

    def finished(**kwargs):
        seen.append(("finished", _on_a_loop()))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        response = asgi_request("POST", "/api/v2/chat", json_body={"message": "hi"})
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert response.status_code == 401
    assert seen == [("started", True), ("finished", True)], seen
    assert threading.current_thread() is threading.main_thread()


def _on_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_chat_lane_answers_without_a_sync_to_async_hop(monkeypatch):
    """Django renders a DRF answer with `sync_to_async(response.render)` in a per-request thread; the chat
    views hand back rendered answers, and the chat lane does not hop again (ChatLaneHandler._get_response_async)."""
    from asgiref import sync

    hops = []
    real = sync.SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        hops.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(sync.SyncToAsync, "__call__", counting)
    response = asgi_request("POST", "/api/v2/chat", json_body={"message": "hi"})
    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"
    # Django logs a 4xx answer through sync_to_async (thread_sensitive=False); nothing else hops.
    assert hops == ["log_response"], hops


# --- Chat admission (core.lanes.LaneDispatcher._admitted_chat) -------------------------------------------

def _hello_wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"sync"]


def _chat_scope():
    return {"type": "http", "method": "POST", "path": "/api/v2/chat", "headers": [], "query_string": b""}


async def _serve(app, body: bytes = b'{"message":"m"}', gate_body: asyncio.Event | None = None):
    sent = []

    async def receive():
        if gate_body is not None:
            await gate_body.wait()
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    await app(_chat_scope(), receive, send)
    return sent


def test_chat_admission_bounds_chat_requests_until_their_first_burst(settings):
    """At most MAIMCONFIG_CHAT_ADMISSION chat requests per worker are inside Django before their first burst;
    the wait for the upstream (after `release_admission`) is not gated, and every request is answered."""
    settings.MAIMCONFIG_CHAT_ADMISSION = 2
    inside = peak = upstream = upstream_peak = 0

    async def chat_app(scope, receive, send):
        nonlocal inside, peak, upstream, upstream_peak
        inside += 1
        peak = max(peak, inside)
        assert (await receive())["body"] == b'{"message":"m"}'  # the body, read before the gate, replayed
        await asyncio.sleep(0.01)  # Django's handling and the first burst
        inside -= 1
        lanes.release_admission()
        upstream += 1
        upstream_peak = max(upstream_peak, upstream)
        await asyncio.sleep(0.05)  # the upstream model
        upstream -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = lanes.LaneDispatcher(chat_app=chat_app, wsgi_app=_hello_wsgi, sync_threads=1, body_limit=1 << 20)

    async def storm():
        return await asyncio.gather(*(_serve(app) for _ in range(9)))

    answers = asyncio.run(storm())
    assert all(sent[-1]["body"] == b"ok" for sent in answers)
    assert peak == 2
    assert upstream_peak > 2  # many wait for the upstream at once


def test_chat_admission_is_given_back_when_a_request_ends_without_a_burst(settings):
    settings.MAIMCONFIG_CHAT_ADMISSION = 1

    async def chat_app(scope, receive, send):  # refuses at once (401, 413…): never reaches its burst
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b"no"})

    app = lanes.LaneDispatcher(chat_app=chat_app, wsgi_app=_hello_wsgi, sync_threads=1, body_limit=1 << 20)

    async def several():
        return await asyncio.wait_for(asyncio.gather(*(_serve(app) for _ in range(4))), timeout=5)

    assert [sent[-1]["body"] for sent in asyncio.run(several())] == [b"no"] * 4


def test_a_slow_chat_body_holds_no_place_at_the_gate(settings):
    settings.MAIMCONFIG_CHAT_ADMISSION = 1

    async def chat_app(scope, receive, send):
        await receive()
        lanes.release_admission()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = lanes.LaneDispatcher(chat_app=chat_app, wsgi_app=_hello_wsgi, sync_threads=1, body_limit=1 << 20)

    async def scenario():
        trickle = asyncio.Event()
        slow = asyncio.ensure_future(_serve(app, gate_body=trickle))  # its body has not arrived yet
        await asyncio.sleep(0.01)
        fast = await asyncio.wait_for(_serve(app), timeout=5)  # served while the slow one uploads
        trickle.set()
        return fast, await slow

    fast, slow = asyncio.run(scenario())
    assert fast[-1]["body"] == b"ok" and slow[-1]["body"] == b"ok"


def test_the_chat_lanes_database_pool_stops_with_the_worker():
    """The chat app registers its pool's shutdown (core never imports chat); it runs with the callbacks."""
    from chat import aio

    assert aio.shutdown_db_executor in lanes._shutdown_callbacks
    executor = aio.db_executor()
    aio.shutdown_db_executor()
    assert executor._shutdown and aio.db_executor() is not executor  # a later burst gets a fresh pool
