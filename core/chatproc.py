"""The chat process: a bulkhead between chat and the bot routes made of processes (README "Serving model").

A gunicorn worker's event loop serves both the bots (validate, heartbeats: milliseconds) and chat (a
thousand requests arriving together, their upstream answers coming back together). Within one process the
chat work, on the loop and through the GIL, delays the bots in those bursts; no tuning inside the process
removed that (README, "What the bot target needs"). So each worker starts one **chat process** of its own
at a lower CPU priority (`MAIMCONFIG_CHAT_PROCESS_NICE`, 10), and hands it every chat request's connection:

1. the worker accepts and parses the request as before and reads its body (`LaneDispatcher`);
2. it sends the chat process the connection's file descriptor (`SCM_RIGHTS` over a `socketpair`) with the
   request rebuilt as HTTP/1.1 bytes, then lets go of the connection without closing it for the client;
3. the chat process adopts the connection with gunicorn's own `ASGIProtocol`, replays the request into it
   and serves it (and anything else that comes on that connection) with the same application.

The kernel then schedules the worker's bot requests ahead of the chat work. Nothing is lost when the chat
process is missing: a worker whose chat process is not ready, has died, or whose hand-off would not be
exact (TLS, HTTP/2, bytes of a next request already read, a body over `MAX_HANDOFF_BYTES`) serves the chat
itself, as before. The chat process lives and dies with its worker: it stops when the `socketpair` reaches
end of file (the worker stopped, was reloaded or was killed), finishes the connections it holds (up to the
graceful timeout), runs the application's shutdown callbacks (usage counts pending in Redis are flushed)
and exits.

The worker side reaches into gunicorn's HTTP/1 protocol: it replaces `gunicorn.workers.gasgi.ASGIProtocol`
with a subclass before the worker's servers are created, and reads and sets private attributes of it
(`_callback_parser`, `_closed`, `_is_ssl`, `_websocket`, `_finishing_calls`). gunicorn is pinned in
requirements.txt; the serving tests (chat/tests/test_serving.py) cover the hand-off end to end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

logger = logging.getLogger(__name__)

MAX_HANDOFF_BYTES = 200_000  # one SOCK_SEQPACKET message: request head and body
CHAT_PROCESS_START_SECONDS = 30.0
HANDOFF_WAIT_SECONDS = 5.0  # a burst waits this long for the chat process to take it, then is served here
_READY = b"R"
# gunicorn settings the chat process's protocol reads; values only (hooks and objects stay in the worker).
_PASSED_TYPES = (str, int, float, bool, type(None), list, tuple, dict)


class Front:
    """The worker's side: starts the chat process and hands it connections."""

    def __init__(self) -> None:
        self.ctrl: socket.socket | None = None
        self.process: subprocess.Popen | None = None
        self.ready = False
        self._waiters: list[asyncio.Future] = []

    def start(self, cfg) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        settings = {}
        for name, setting in cfg.settings.items():
            value = setting.get()
            if isinstance(value, _PASSED_TYPES) and not callable(value):
                try:
                    json.dumps(value)
                except (TypeError, ValueError):
                    continue
                settings[name] = value
        env = dict(os.environ, MAIMCONFIG_IN_CHAT_PROCESS="1",
                   MAIMCONFIG_CHAT_PROCESS_CFG=json.dumps(settings),
                   MAIMCONFIG_SYNC_THREADS=os.environ.get("MAIMCONFIG_CHAT_PROCESS_SYNC_THREADS", "2"))
        from django.conf import settings as django_settings

        self.process = subprocess.Popen(
            [sys.executable, "-m", "core.chatproc", str(theirs.fileno())], pass_fds=[theirs.fileno()], env=env,
            stdin=subprocess.DEVNULL, cwd=str(django_settings.BASE_DIR))
        theirs.close()
        ours.setblocking(False)
        self.ctrl = ours

    def wait_ready(self, seconds: float) -> bool:
        """Block until the chat process is ready (the worker waits before it serves), at most `seconds`."""
        return self._read_ready(seconds)

    def _check_ready(self) -> bool:
        return self.ready or self._read_ready(None)

    def _read_ready(self, seconds: float | None) -> bool:
        """Read the chat process's one message, "ready" (`seconds`: wait that long; None: don't wait); end
        of file means it is gone."""
        if self.ctrl is None:
            return False
        if seconds is not None:
            self.ctrl.settimeout(seconds)
        try:
            message = self.ctrl.recv(16)
        except (BlockingIOError, TimeoutError):
            return False
        except OSError:
            self._lost()
            return False
        finally:
            if self.ctrl is not None:
                self.ctrl.setblocking(False)
        if message == _READY:
            self.ready = True
            return True
        self._lost()
        return False

    def _lost(self) -> None:
        self.ready = False
        if self.ctrl is not None:
            if self._waiters:
                self._writable()  # unregisters the descriptor and wakes the waiting sends (they see no ctrl)
            self.ctrl.close()
            self.ctrl = None
        if self.process is not None:
            self.process.poll()  # reaped, not left a zombie
        logger.warning("The chat process is gone; this worker serves chat itself.")

    async def handoff(self, scope: dict, body: bytes, receive) -> bool:
        """Give the chat process this request's connection; False: serve it here (nothing was sent)."""
        if not self._check_ready():
            return False
        connection = (scope.get("extensions") or {}).get("maimconfig.connection")
        if connection is None or not connection.can_hand_off():
            return False
        payload = request_bytes(scope, body)
        if len(payload) > MAX_HANDOFF_BYTES:
            return False
        fd = connection.duplicate_fd()
        connection.pause_reading()  # nothing more of the client's is read here while the send waits
        try:
            sent = await self._send(payload, fd)
        finally:
            os.close(fd)
        if not sent:
            connection.resume_reading()
            return False
        connection.let_go()
        while (await receive())["type"] != "http.disconnect":  # the transport reports the loss at once
            pass
        return True

    async def _send(self, payload: bytes, fd: int) -> bool:
        """Send one hand-off; while the chat process's queue is full (a burst: the kernel queues only
        `net.unix.max_dgram_qlen` messages, 10 by default), wait until it reads, up to `HANDOFF_WAIT_SECONDS`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + HANDOFF_WAIT_SECONDS
        while self.ctrl is not None:
            try:
                socket.send_fds(self.ctrl, [payload], [fd], socket.MSG_NOSIGNAL)
                return True
            except BlockingIOError:
                pass
            except OSError:
                self._lost()
                return False
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter = loop.create_future()
            if not self._waiters:
                loop.add_writer(self.ctrl.fileno(), self._writable)
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                return False
        return False

    def _writable(self) -> None:
        if self.ctrl is not None:
            asyncio.get_running_loop().remove_writer(self.ctrl.fileno())
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def request_bytes(scope: dict, body: bytes) -> bytes:
    """The request as HTTP/1.1 bytes: the head as parsed (header names lower-case, as HTTP allows), the
    body framed by its length."""
    target = scope.get("raw_path") or scope["path"].encode("utf-8")
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    version = b"HTTP/1.0" if scope.get("http_version") == "1.0" else b"HTTP/1.1"
    lines = [scope["method"].encode("ascii") + b" " + target + b" " + version]
    for name, value in scope["headers"]:
        if name in (b"content-length", b"transfer-encoding"):
            continue
        lines.append(name + b": " + value)
    lines.append(b"content-length: " + str(len(body)).encode("ascii"))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def protocol_class():
    """gunicorn's `ASGIProtocol` with a handle on its connection in each HTTP/1 request's scope
    (`extensions["maimconfig.connection"]`), for `Front.handoff`."""
    from gunicorn.asgi.protocol import ASGIProtocol

    # gunicorn caches whether its C parser is available on the class it is asked through, but reads the
    # cache from `ASGIProtocol` itself: asked first through a subclass, every connection would get the
    # Python parser. Asking the base class once fills the cache where it is read.
    ASGIProtocol._check_h1c_protocol_available()

    class HandOffProtocol(ASGIProtocol):
        def _build_http_scope(self, request, sockname, peername):
            scope = super()._build_http_scope(request, sockname, peername)
            scope.setdefault("extensions", {})["maimconfig.connection"] = _Connection(self)
            return scope

    return HandOffProtocol


class _Connection:
    """One HTTP/1 connection of the worker, as the hand-off sees it."""

    __slots__ = ("protocol",)

    def __init__(self, protocol) -> None:
        self.protocol = protocol

    def can_hand_off(self) -> bool:
        """Only a plain HTTP/1 connection holding nothing past this request: the chat process must see
        exactly what the client sent after it."""
        protocol = self.protocol
        parser = protocol._callback_parser
        return (not protocol._closed and not protocol._is_ssl and protocol._websocket is None
                and protocol.transport.get_extra_info("socket") is not None
                and parser is not None and not getattr(parser, "remaining_truncated", False)
                and not parser.remaining() and not protocol._finishing_calls)

    def pause_reading(self) -> None:
        self.protocol.transport.pause_reading()

    def resume_reading(self) -> None:
        if not self.protocol._closed:
            self.protocol.transport.resume_reading()

    def duplicate_fd(self) -> int:
        return os.dup(self.protocol.transport.get_extra_info("socket").fileno())

    def let_go(self) -> None:
        """Forget the connection without a byte or a shutdown: the chat process holds it now. (gunicorn
        would `write_eof()` a connection it closes, which would end it for the chat process too.)"""
        protocol = self.protocol
        protocol._closed = True
        protocol.transport.abort()


_front: Front | None = None


def front() -> Front | None:
    return _front


def start_for_worker(worker) -> None:
    """gunicorn's `post_worker_init`: start this worker's chat process (when enabled)."""
    global _front
    from django.conf import settings

    if not settings.MAIMCONFIG_CHAT_PROCESS or os.environ.get("MAIMCONFIG_IN_CHAT_PROCESS"):
        return
    if getattr(worker.cfg, "is_ssl", False):
        return
    import gunicorn.workers.gasgi as gasgi

    gasgi.ASGIProtocol = protocol_class()  # the worker's servers are created after this hook
    _front = Front()
    _front.start(worker.cfg)


def wait_for_worker() -> None:
    """gunicorn's `post_worker_init`, after the worker's own warm-up: wait for the chat process (it starts
    at the same time), so a new worker hands off from its first request."""
    if _front is not None and not _front.wait_ready(CHAT_PROCESS_START_SECONDS):
        logger.warning("The chat process is not ready; this worker serves chat itself until it is.")


# --- the chat process --------------------------------------------------------------------------------


class _Worker:
    """What gunicorn's `ASGIProtocol` reads of its worker."""

    def __init__(self, cfg, log, app, loop) -> None:
        self.cfg, self.log, self.asgi, self.loop = cfg, log, app, loop
        self.alive = True
        self.nr = 0
        self.nr_conns = 0
        self.max_requests = sys.maxsize
        self.state: dict = {}


def _config():
    from gunicorn.config import Config

    cfg = Config()
    for name, value in json.loads(os.environ.get("MAIMCONFIG_CHAT_PROCESS_CFG", "{}")).items():
        if name in cfg.settings:
            try:
                cfg.set(name, value)
            except Exception:  # noqa: BLE001,S112 - a setting that does not round-trip keeps its default
                continue
    return cfg


class _Lifespan:
    """The ASGI lifespan of the application, driven by hand (no gunicorn worker runs it here)."""

    def __init__(self, app) -> None:
        self.app = app
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.replies: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Future | None = None

    async def startup(self) -> None:
        self.task = asyncio.ensure_future(self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                                   self.inbox.get, self._send))
        self.inbox.put_nowait({"type": "lifespan.startup"})
        await self.replies.get()

    async def shutdown(self) -> None:
        self.inbox.put_nowait({"type": "lifespan.shutdown"})
        await self.replies.get()
        await self.task

    async def _send(self, message) -> None:
        self.replies.put_nowait(message)


async def _serve(ctrl: socket.socket) -> None:
    from gunicorn.asgi.protocol import ASGIProtocol
    from gunicorn.glogging import Logger

    from maimconfig.asgi import application

    loop = asyncio.get_running_loop()
    cfg = _config()
    worker = _Worker(cfg, Logger(cfg), application, loop)
    lifespan = _Lifespan(application)
    await lifespan.startup()
    closed = loop.create_future()

    def adopt(fd: int, payload: bytes) -> None:
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)

        async def run():
            try:
                _, protocol = await loop.connect_accepted_socket(lambda: ASGIProtocol(worker), sock)
            except OSError:
                sock.close()
                return
            protocol.data_received(payload)

        loop.create_task(run())

    def readable() -> None:
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(ctrl, MAX_HANDOFF_BYTES + 1, 1)
            except BlockingIOError:
                return
            except OSError:
                message, fds = b"", []
            if not message:
                for fd in fds:
                    os.close(fd)
                loop.remove_reader(ctrl.fileno())
                if not closed.done():
                    closed.set_result(None)
                return
            if fds:
                adopt(fds[0], message)
                for fd in fds[1:]:
                    os.close(fd)

    ctrl.setblocking(False)
    loop.add_reader(ctrl.fileno(), readable)
    _lower_priority(int(os.environ.get("MAIMCONFIG_CHAT_PROCESS_NICE", "10")))
    ctrl.send(_READY)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):  # the worker's stop is what counts
        loop.add_signal_handler(sig, lambda: None)
    await closed
    deadline = time.monotonic() + float(cfg.graceful_timeout)
    while worker.nr_conns > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    worker.alive = False
    await lifespan.shutdown()
    from core.metrics_export import flush_metrics, mark_worker_dead

    flush_metrics()  # what the master does for a worker (gunicorn.conf.py), done here for this process
    mark_worker_dead(os.getpid())


def _lower_priority(nice: int) -> None:
    """Every thread of the process at `nice` (Linux keeps a nice value per thread, and a new thread takes its
    creator's): after start-up, which then competes with the worker's own warm-up on equal terms."""
    if not nice:
        return
    for task in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else [str(os.getpid())]:
        try:
            os.setpriority(os.PRIO_PROCESS, int(task), nice)
        except OSError:
            pass


def main() -> None:
    fd = int(sys.argv[1])
    ctrl = socket.socket(fileno=fd)
    try:
        import uvloop

        uvloop.run(_serve(ctrl))
    except ImportError:  # pragma: no cover - uvloop is in requirements.txt
        asyncio.run(_serve(ctrl))


if __name__ == "__main__":
    main()
