"""A minimal pipelined Redis connection for the fast lane's key script (issue 11: the fast lane's CPU).

The fast lane makes ONE Redis call per request, an `EVALSHA` of `apikeys.fastlane.SCRIPT`. Through redis-py's
asyncio client that call cost ~80 µs of CPU (connection pool checkout, `async_timeout`, retry wrapper,
command packing and its response machinery) against ~10 µs for the same bytes on a plain asyncio
protocol: a sixth of a validate request's CPU in a loaded worker. So the key script goes through this:

* one connection per event loop (per worker), opened on first use with the cache's settings (host/port or
  Unix socket, db, username/password, client name, timeouts), shared by every request of the loop:
  requests are PIPELINED on it (each queues its command and waits for its reply, answered in order), so
  there is no pool to check out from and no per-call task; the commands queued during one turn of the
  loop leave in one write;
* replies are parsed by hiredis (already redis-py's parser here), as redis-py would return them;
* errors are redis-py's exception classes, so callers' handling is unchanged (`redisstate._redis_errors`):
  a lost connection fails every call in flight with `ConnectionError`, a reply later than `socket_timeout`
  aborts the connection (every call in flight fails with `TimeoutError`; the next call reconnects), a
  `NOSCRIPT` (Redis restarted, `SCRIPT FLUSH`) is answered by `EVAL` of the source, other error replies raise
  `ResponseError`.

Anything else the fast lane or the read cache needs from Redis keeps using redis-py (`fastlane.loop_client`).
"""

from __future__ import annotations

import asyncio
import collections

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


def pack(args) -> bytes:
    """A command in RESP (an array of bulk strings); str, bytes and int arguments (hiredis' C packer)."""
    return hiredis.pack_command(tuple(args))


class _Protocol(asyncio.Protocol):
    """One Redis connection: commands written in order, replies matched to their waiters in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float | None):
        self.loop = loop
        self.timeout = timeout
        self.reader = hiredis.Reader()
        self.waiters: collections.deque = collections.deque()
        self.transport = None
        self.closed = False
        self.timer = None
        self.outgoing: list[bytes] | None = None  # commands of this loop iteration after its first (`_flush`)

    def connection_made(self, transport):
        self.transport = transport

    def request(self, payload: bytes) -> asyncio.Future:
        if self.closed:
            raise RedisConnectionError("Connection closed by server.")
        future = self.loop.create_future()
        deadline = None if self.timeout is None else self.loop.time() + self.timeout
        self.waiters.append((future, deadline))
        # The first command of a loop iteration is written at once: deferred to the end of the iteration, it
        # waited for the whole next iteration, which in a chat storm is tens of milliseconds on every Redis
        # call of a bot request. Commands issued later in the same iteration share one system call at its end
        # (`_flush`): under load most commands come in bursts, and a write to a loopback socket is costly.
        if self.outgoing is None:
            self.transport.write(payload)
            self.outgoing = []
            self.loop.call_soon(self._flush)
        else:
            self.outgoing.append(payload)
        if deadline is not None and self.timer is None:
            self.timer = self.loop.call_at(deadline, self._check_deadline)
        return future

    def _flush(self) -> None:
        outgoing, self.outgoing = self.outgoing, None
        if outgoing and not self.closed:
            self.transport.write(outgoing[0] if len(outgoing) == 1 else b"".join(outgoing))

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        waiters = self.waiters
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail(RedisConnectionError(f"Protocol error from Redis: {exc}"))
                self.transport.abort()
                return
            if reply is False:
                return
            if not waiters:  # pragma: no cover - a reply nobody asked for: the stream is out of step
                self._fail(RedisConnectionError("Unexpected reply from Redis."))
                self.transport.abort()
                return
            future, _ = waiters.popleft()
            if not future.done():  # a caller that was cancelled still had its reply read
                future.set_result(reply)

    def _check_deadline(self) -> None:
        self.timer = None
        if not self.waiters or self.closed:
            return
        _, deadline = self.waiters[0]
        now = self.loop.time()
        if deadline <= now:
            self._fail(RedisTimeoutError("Timeout reading from Redis."))
            self.transport.abort()
            return
        self.timer = self.loop.call_at(deadline, self._check_deadline)

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        waiters, self.waiters = self.waiters, collections.deque()
        for future, _ in waiters:
            if not future.done():
                future.set_exception(exc)

    def connection_lost(self, exc) -> None:
        self._fail(RedisConnectionError("Connection to Redis lost." if exc is None else f"Connection to Redis lost: {exc}"))


class FastRedis:
    """The pipelined connection of one event loop (module docstring). `kwargs`: redis-py connection settings."""

    def __init__(self, **kwargs):
        self.host = kwargs.get("host", "localhost")
        self.port = kwargs.get("port", 6379)
        self.path = kwargs.get("path")
        self.db = kwargs.get("db") or 0
        self.username = kwargs.get("username")
        self.password = kwargs.get("password")
        self.client_name = kwargs.get("client_name")
        self.timeout = kwargs.get("socket_timeout")
        self.connect_timeout = kwargs.get("socket_connect_timeout") or self.timeout
        self._protocol: _Protocol | None = None
        self._opening: asyncio.Future | None = None

    async def _connection(self) -> _Protocol:
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            return protocol
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        opening = self._opening
        try:
            return await asyncio.shield(opening)
        finally:
            if opening.done() and self._opening is opening:
                self._opening = None

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()

        def factory():
            return _Protocol(loop, self.timeout)

        try:
            if self.path:
                connect = loop.create_unix_connection(factory, self.path)
            else:
                connect = loop.create_connection(factory, self.host, self.port)
            _, protocol = await asyncio.wait_for(connect, self.connect_timeout)
        except asyncio.TimeoutError:
            raise RedisTimeoutError("Timeout connecting to Redis.") from None
        except OSError as exc:
            raise RedisConnectionError(f"Error connecting to Redis: {exc}") from exc
        setup = []
        if self.password is not None:
            setup.append(pack(["AUTH", self.username, self.password] if self.username else ["AUTH", self.password]))
        if self.client_name:
            setup.append(pack(["CLIENT", "SETNAME", self.client_name]))
        if self.db:
            setup.append(pack(["SELECT", self.db]))
        futures = [protocol.request(command) for command in setup]
        for reply in await asyncio.gather(*futures):
            if isinstance(reply, hiredis.ReplyError):
                protocol.transport.close()
                raise RedisConnectionError(f"Redis refused the connection set-up: {reply}")
        self._protocol = protocol
        return protocol

    async def evalsha(self, sha: bytes, source: bytes, args) -> object:
        """`EVALSHA sha 0 args…` (`EVAL` of `source` when Redis does not know the script)."""
        protocol = await self._connection()
        reply = await protocol.request(pack([b"EVALSHA", sha, 0, *args]))
        if isinstance(reply, hiredis.ReplyError):
            if str(reply).startswith("NOSCRIPT"):
                protocol = await self._connection()
                reply = await protocol.request(pack([b"EVAL", source, 0, *args]))
            if isinstance(reply, hiredis.ReplyError):
                raise ResponseError(str(reply))
        return reply

    def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()
