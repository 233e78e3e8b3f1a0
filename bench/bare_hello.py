"""The bare "hello" apps of `make bench-auth` (issue 11's self-check: the trivial route >= 35 % of a bare
WSGI hello app served by the same gunicorn configuration).

Served by `gunicorn -c gunicorn.conf.py bench.bare_hello:<app>`, i.e. the service's own worker class,
loop, parser, worker count and connection settings:

* `wsgi_app`: a WSGI hello run the way this configuration runs every WSGI application, in the sync lane's
  thread pool (`core.lanes.SyncLane`): the ceiling for any route Django answers;
* `asgi_app`: an ASGI hello answered on the event loop: the ceiling of the server itself (and of the fast
  lane).

No Django request handling, no database, no middleware.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maimconfig.settings.base")

from core.lanes import SyncLane, read_body  # noqa: E402 - needs the settings module name

_BODY = b'{"message":"hello"}'
_HEADERS = [(b"content-type", b"application/json")]


def _hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [_BODY]


_lane = SyncLane(_hello, int(os.environ.get("MAIMCONFIG_SYNC_THREADS", "6")))


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def wsgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    body, disconnected = await read_body(receive, 1 << 20)
    if not disconnected:
        await _lane(scope, body, send)


async def asgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})
