"""A one-request HTTP/1.1 client on the event loop for the chat lane's upstream calls (`chat.upstream`).

Why not httpcore's connection pool: every chat request makes exactly one upstream request over its own
connection (isolation, api.md §10.7), so a pool's machinery (its locks, events, request queue, anyio cancel
scopes around every read and write, anyio's happy-eyeballs connect in a task group) bought nothing and was
the largest share of a chat's CPU on the event loop that also answers the bot fast lane (issue 10: a
third of the loop's Python samples in a `make bench-chat` storm). This client is one `asyncio.Protocol`
over `loop.create_connection` (uvloop's when installed), with h11 (httpcore's own HTTP/1.1 parser) for
the wire format, so framing (Content-Length, chunked, close-delimited), 1xx answers and protocol errors
behave as before.

* One connection per `Exchange`, one request, then closed: nothing (connection, cookie) outlives the call.
* The egress policy is checked when connecting (`core.egress.resolve_checked`): the checked address is
  what the socket connects to; TLS verifies the configured host name.
* No timeouts of its own: the caller bounds the whole call (`asyncio.timeout_at(deadline)`, §10.7).
* Failures raise httpx2's exception classes (ConnectError, ReadError, RemoteProtocolError, …), which
  `chat.llm.map_upstream_error` maps to CHAT_002 as it did for httpcore's.
* Back-pressure: reading pauses when more than `_READ_HIGH_WATER` bytes wait unread; writes wait for
  the transport to drain.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from functools import lru_cache
from urllib.parse import urlsplit

import h11
import httpx2

from core import egress

_READ_HIGH_WATER = 256 * 1024
_MAX_HEAD_BYTES = 64 * 1024  # status line and headers (h11's default limit)


class _Protocol(asyncio.Protocol):
    """Received bytes queued for `read()`; EOF and errors remembered; write flow control."""

    def __init__(self):
        self.transport: asyncio.Transport | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future | None = None
        self._paused = False
        self._drain: asyncio.Future | None = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > _READ_HIGH_WATER and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self):
        self._eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc):
        self._eof = True
        if exc is not None and self._error is None:
            self._error = exc
        self._wake()
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self):
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self):
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def _wake(self):
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self) -> bytes:
        """The next received bytes; b"" at end of stream. A connection error raises httpx2.ReadError."""
        while not self._chunks:
            if self._error is not None:
                raise httpx2.ReadError(str(self._error) or type(self._error).__name__) from self._error
            if self._eof:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._paused and self._buffered <= _READ_HIGH_WATER // 4:
            self._paused = False
            self.transport.resume_reading()
        return data

    async def write(self, data: bytes) -> None:
        if self._eof or self.transport.is_closing():
            raise httpx2.WriteError("The connection was closed before the request was sent.")
        self.transport.write(data)
        if self._drain is not None:
            await self._drain
            if self._error is not None:
                raise httpx2.WriteError(str(self._error)) from self._error


@lru_cache(maxsize=512)
def target_of(url: str) -> tuple[str, str, int, bytes, bytes]:
    """(scheme, host, port, request target, Host header) of an absolute http(s) URL. Raises
    httpx2.UnsupportedProtocol for another scheme or no host."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise httpx2.UnsupportedProtocol(f"Request URL has an unsupported protocol '{scheme}://'.")
    host = parts.hostname or ""
    if not host:
        raise httpx2.UnsupportedProtocol("Request URL is missing a host.")
    default = 443 if scheme == "https" else 80
    try:
        port = parts.port or default
    except ValueError:
        raise httpx2.UnsupportedProtocol("Request URL has an invalid port.") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host_header = f"[{host}]" if ":" in host else host
    if port != default:
        host_header += f":{port}"
    return scheme, host, port, path.encode("ascii", "strict"), host_header.encode("idna" if not host.isascii()
                                                                                 else "ascii")


class Response:
    """The status, headers (lower-case names) and, through `stream`, the body of an upstream answer."""

    def __init__(self, exchange: Exchange, status: int, headers: list[tuple[bytes, bytes]]):
        self._exchange = exchange
        self.status = status
        self.headers = headers

    @property
    def stream(self) -> AsyncIterator[bytes]:
        return self._exchange.body()

    async def aclose(self) -> None:
        await self._exchange.aclose()


class Exchange:
    """One request over one new connection. `await send(...)` returns the Response once its head arrived;
    `aclose()` closes the connection (always call it)."""

    def __init__(self, ssl_context: ssl.SSLContext | None):
        self._ssl_context = ssl_context
        self._protocol: _Protocol | None = None
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD_BYTES)
        self._closed = False

    async def send(self, url: str, headers: list[tuple[bytes, bytes]], content: bytes) -> Response:
        scheme, host, port, target, host_header = target_of(url)
        address = await egress.resolve_checked(host, port)
        loop = asyncio.get_running_loop()
        tls = scheme == "https"
        try:
            _, self._protocol = await loop.create_connection(
                _Protocol, address, port, ssl=self._ssl_context if tls else None,
                server_hostname=host if tls else None)
        except (OSError, ssl.SSLError) as exc:
            raise httpx2.ConnectError(str(exc) or type(exc).__name__) from exc
        try:
            request = self._h11.send(h11.Request(method=b"POST", target=target,
                                                 headers=[(b"Host", host_header), *headers]))
            request += self._h11.send(h11.Data(data=content)) + self._h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            raise httpx2.LocalProtocolError(str(exc)) from exc
        await self._protocol.write(request)
        while True:
            event = await self._next_event()
            if isinstance(event, h11.InformationalResponse):
                continue  # 100 Continue and the like: the answer follows
            if isinstance(event, h11.Response):
                return Response(self, event.status_code, list(event.headers))
            raise httpx2.RemoteProtocolError("The upstream closed the connection without an answer.")

    async def _next_event(self):
        connection = self._h11
        while True:
            try:
                event = connection.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx2.RemoteProtocolError(str(exc)) from exc
            if event is h11.NEED_DATA:
                data = await self._protocol.read()  # b"": the peer closed (h11 decides if that is an error)
                try:
                    connection.receive_data(data)
                except h11.RemoteProtocolError as exc:
                    raise httpx2.RemoteProtocolError(str(exc)) from exc
                continue
            return event

    async def body(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (transfer coding removed, content coding not)."""
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                if event.data:
                    yield bytes(event.data)
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                return
            else:  # pragma: no cover - h11 gives Data, then EndOfMessage or ConnectionClosed
                raise httpx2.RemoteProtocolError(f"Unexpected {type(event).__name__} in the body.")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._protocol is not None and self._protocol.transport is not None:
            # Unless the answer was read to its end, the connection is in an unknown state: drop it.
            if self._h11.their_state in (h11.DONE, h11.CLOSED, h11.MUST_CLOSE):
                self._protocol.transport.close()
            else:
                self._protocol.transport.abort()
