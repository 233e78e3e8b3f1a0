"""The async upstream call of the chat lane (api.md §10.7): `POST {base_url}/chat/completions`.

The OpenAI chat-completions protocol is called directly (no SDK): the request is one JSON body, the answer
one JSON body or an SSE stream of `data:` lines. An SDK client per call cost ~8 ms of CPU (building the
client, transforming the request, validating every chunk into pydantic-like models) on the event loop that
also serves every other chat request (README "Serving model").

* **Whole-call deadline.** `deadline` is an event-loop time (`loop.time()` based): the request, and for a
  stream every wait for the next line, runs under `asyncio.timeout_at(deadline)`, so the provider's
  `timeout` bounds the call from connecting to the last byte. A trickling upstream is cut at the deadline
  (CHAT_003); no retries.
* **No shared state.** Each call is one request over its own new connection (`chat.http1.Exchange`),
  closed after the call; there is no cookie jar, so nothing of one tenant's exchange (a cookie, a
  connection) reaches another's. Only the TLS trust store (an `ssl.SSLContext`, which holds no per-peer
  state we rely on) is shared, to avoid reloading the CA bundle on every call. Proxy variables of the
  environment are ignored and redirects are never followed.
* **Egress policy at connect time.** `chat.http1` resolves the host, checks every address (`core.egress`)
  and connects to the checked address; a refusal is CHAT_002.
* Upstream URLs are logged only at DEBUG, never with credentials; error bodies are logged redacted.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any

import httpx2
from httpx2 import _decoders
from django.conf import settings
from django.utils.translation import gettext as _

from chat.http1 import Exchange, Response
from chat.llm import (Completion, UpstreamStatusError, Usage, _finish_reason, _timeout_error, _unusable, _usage,
                      map_upstream_error)
from chat.routing import ModelTarget
from core import egress
from core.errors import ErrorCode
from core.exceptions import ApplicationError

logger = logging.getLogger("maimconfig.chat")

# An error body is read (for the log, redacted and cut to 500 characters) up to this many bytes.
_ERROR_BODY_BYTES = 8192
_USER_AGENT = "MaimConfig"
# The content codings httpx would accept (gzip and deflate; br and zstd when their decoders are installed).
_ACCEPT_ENCODING = ", ".join(name for name in _decoders.SUPPORTED_DECODERS if name != "identity").encode()


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    return httpx2.create_ssl_context(trust_env=False)


def warm_up() -> None:
    """Build what every call shares once, at worker start (ASGI lifespan), outside any request's deadline."""
    _ssl_context()


def new_exchange() -> Exchange:
    """A fresh one-request client for one upstream call (`chat.http1`): its own connection, no cookie jar,
    the egress check when connecting."""
    return Exchange(_ssl_context())


def request_body(target: ModelTarget, messages: list[dict], overrides: dict | None, stream: bool) -> dict[str, Any]:
    """The JSON body (§10.7): model, messages, temperature, max_tokens, stream, then the model's
    `extra_params` (which win over the configured values, not over the request's `overrides`)."""
    body: dict[str, Any] = {
        "model": target.model_identifier,
        "messages": messages,
        "temperature": target.temperature,
        "max_tokens": target.max_tokens,
        "stream": stream,
    }
    extra = dict(target.extra_params)
    for key, value in (overrides or {}).items():
        extra.pop(key, None)
        body[key] = value
    body.update(extra)
    return body


def _http_request(target: ModelTarget, messages: list[dict], overrides: dict | None,
                  stream: bool) -> tuple[str, list[tuple[bytes, bytes]], bytes]:
    """The URL, headers (`Host` is added by `chat.http1`) and body of the upstream request."""
    # `Accept: application/json` for streams too, as the official SDKs send it (providers answer SSE anyway).
    content = json.dumps(request_body(target, messages, capped_max_tokens(target, overrides), stream),
                         ensure_ascii=False, separators=(",", ":")).encode()
    headers = [(b"Content-Type", b"application/json"), (b"Accept", b"application/json"),
               (b"Accept-Encoding", _ACCEPT_ENCODING), (b"User-Agent", _USER_AGENT.encode()),
               (b"Content-Length", str(len(content)).encode())]
    if target.api_key:  # a provider without a key: no Authorization header at all
        headers.append((b"Authorization", f"Bearer {target.api_key}".encode()))
    return target.base_url.rstrip("/") + "/chat/completions", headers, content


class _Body:
    """The body of an upstream response: content decoding (gzip, deflate, … as httpx does), bytes and
    lines (httpx's line rules: `\n`, `\r\n` and `\r`)."""

    def __init__(self, response: Response):
        self.response = response
        self.status = response.status
        codings = [coding.strip().lower() for name, value in response.headers if name.lower() == b"content-encoding"
                   for coding in value.decode("latin-1").split(",")]
        codings = [coding for coding in codings if coding != "identity"]
        self._decoder = None  # identity, as httpx (`Response._get_content_decoder`)
        if codings:
            decoder = _decoders.MultiDecoder(codings)
            if decoder.children:
                self._decoder = decoder.children[0] if len(decoder.children) == 1 else decoder

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        decoder = self._decoder
        async for raw in self.response.stream:
            if decoder is None:
                if raw:
                    yield raw
                continue
            for part in decoder.decode(raw):
                if part:
                    yield part
        if decoder is not None:
            for part in decoder.flush():
                if part:
                    yield part

    async def aread(self) -> bytes:
        return b"".join([part async for part in self.aiter_bytes()])

    async def aiter_lines(self) -> AsyncIterator[str]:
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        lines = _decoders.LineDecoder()
        async for part in self.aiter_bytes():
            for line in lines.decode(text.decode(part)):
                yield line
        for line in lines.decode(text.decode(b"", final=True)):
            yield line
        for line in lines.flush():
            yield line

    async def aclose(self) -> None:
        await self.response.aclose()


async def _send(exchange: Exchange, request: tuple[str, list[tuple[bytes, bytes]], bytes]) -> _Body:
    """Send `request`, returning a 2xx response whose body is still to be read; a non-2xx status raises
    UpstreamStatusError (with the start of its body, for the log)."""
    body = _Body(await exchange.send(*request))
    if 200 <= body.status < 300:
        return body
    head = bytearray()
    try:
        async for part in body.aiter_bytes():
            head += part
            if len(head) >= _ERROR_BODY_BYTES:
                break
    except (httpx2.NetworkError, httpx2.ProtocolError, ValueError):
        pass  # an unreadable error body: the status suffices
    finally:
        await body.aclose()
    raise UpstreamStatusError(body.status, head[:_ERROR_BODY_BYTES].decode("utf-8", "replace"))


def deadline_for(target: ModelTarget) -> float:
    """The event-loop time at which the call to `target` is cut (provider timeout, capped, §10.7)."""
    return asyncio.get_running_loop().time() + target.timeout


def capped_max_tokens(target: ModelTarget, overrides: dict | None) -> dict:
    """`max_tokens` never above MAIMCONFIG_CHAT_MAX_TOKENS (§11.2), whether configured or requested."""
    overrides = dict(overrides or {})
    cap = settings.MAIMCONFIG_CHAT_MAX_TOKENS
    overrides["max_tokens"] = min(int(overrides.get("max_tokens") or target.max_tokens), cap)
    return overrides


def _map(target: ModelTarget, exc: BaseException) -> ApplicationError:
    if isinstance(exc, TimeoutError):
        logger.warning("Upstream model passed its deadline", extra={"provider_kind": target.provider_kind,
                                                                    "model": target.model_identifier})
        return _timeout_error(target)
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, egress.EgressRefused) or isinstance(cause, egress.EgressRefused):
        logger.warning("Upstream host refused by the egress policy",
                       extra={"provider_kind": target.provider_kind, "model": target.model_identifier})
        return ApplicationError(ErrorCode.CHAT_002, _("The language model's host is not allowed by the egress "
                                                      "policy."))
    return map_upstream_error(target, exc)


async def complete(target: ModelTarget, messages: list[dict], overrides: dict | None = None, *,
                   deadline: float) -> Completion:
    """One non-streaming completion, cut at `deadline`. Raises ApplicationError CHAT_002/CHAT_003."""
    started = time.perf_counter()
    logger.debug("Calling upstream model", extra={"upstream_url": target.base_url,
                                                  "model": target.model_identifier})
    http_client = new_exchange()
    try:
        async with asyncio.timeout_at(deadline):
            response = await _send(http_client, _http_request(target, messages, overrides, False))
            try:
                raw = await response.aread()
            finally:
                await response.aclose()
    except Exception as exc:  # noqa: BLE001 - every failure of the call maps to CHAT_002/003
        raise _map(target, exc) from None
    finally:
        await _close(http_client)
    latency_ms = int((time.perf_counter() - started) * 1000)
    try:
        payload = json.loads(raw)
    except ValueError:
        raise _unusable() from None
    choices = payload.get("choices") if isinstance(payload, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise _unusable()
    return Completion(content, _finish_reason(choice.get("finish_reason")), _usage(payload.get("usage")),
                      latency_ms)


async def _close(http_client: Exchange) -> None:
    try:
        await asyncio.shield(http_client.aclose())
    except BaseException:  # noqa: BLE001 - closing a broken or cancelled connection
        pass


async def _sse_data(lines: AsyncIterator[str]) -> AsyncIterator[Any]:
    """The JSON `data` of each unnamed server-sent event of an OpenAI stream, up to `data: [DONE]`.
    An `error` event, or an event whose data is an object with an `error`, is an unusable response."""
    event, data = None, []
    async for line in lines:
        if line:
            field, _sep, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data.append(value)
            elif field == "event":
                event = value
            continue  # comments (`: keep-alive`), `id:` and `retry:` lines carry nothing we use
        if not data:
            event = None
            continue
        text = "\n".join(data)
        name, event, data = event, None, []
        if text == "[DONE]":
            return
        try:
            payload = json.loads(text)
        except ValueError:
            raise _unusable() from None
        if name == "error" or (isinstance(payload, dict) and payload.get("error")):
            raise _unusable()
        if name is None:
            yield payload


class UpstreamStream:
    """An accepted (2xx) streaming completion. `async for fragment in stream.fragments()`, then read the
    results. `aclose()` abandons the call (client disconnect, error)."""

    def __init__(self, target: ModelTarget, response: _Body, http_client, started: float,
                 deadline: float):
        self.target = target
        self._response = response
        self._http_client = http_client
        self.started = started
        self.deadline = deadline
        self.finish_reason = "stop"
        self.usage: Usage | None = None
        self.latency_ms = 0
        self.content_parts: list[str] = []

    async def fragments(self) -> AsyncIterator[str]:
        iterator = _sse_data(self._response.aiter_lines()).__aiter__()
        try:
            while True:
                try:
                    async with asyncio.timeout_at(self.deadline):
                        chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                if not isinstance(chunk, dict):
                    continue
                usage = _usage(chunk.get("usage"))
                if usage is not None:
                    self.usage = usage
                choices = chunk.get("choices")
                for choice in choices if isinstance(choices, list) else ():
                    if not isinstance(choice, dict) or choice.get("index", 0) not in (0, None):
                        continue
                    if choice.get("finish_reason"):
                        self.finish_reason = _finish_reason(choice["finish_reason"])
                    delta = choice.get("delta")
                    text = delta.get("content") if isinstance(delta, dict) else None
                    if isinstance(text, str) and text:
                        self.content_parts.append(text)
                        yield text
        except (GeneratorExit, asyncio.CancelledError):
            await self.aclose()
            raise
        except Exception as exc:  # noqa: BLE001 - mid-stream failures map to CHAT_002/003
            await self.aclose()
            raise _map(self.target, exc) from None
        self.latency_ms = int((time.perf_counter() - self.started) * 1000)
        await self.aclose()

    @property
    def content(self) -> str:
        return "".join(self.content_parts)

    async def aclose(self) -> None:
        try:
            await asyncio.shield(self._response.aclose())
        except BaseException:  # noqa: BLE001 - closing an already-broken stream
            pass
        await _close(self._http_client)


async def open_stream(target: ModelTarget, messages: list[dict], overrides: dict | None = None, *,
                      deadline: float) -> UpstreamStream:
    """Start a streaming completion; returns once the upstream accepted it (2xx), before `deadline`."""
    started = time.perf_counter()
    logger.debug("Calling upstream model (stream)", extra={"upstream_url": target.base_url,
                                                           "model": target.model_identifier})
    http_client = new_exchange()
    try:
        async with asyncio.timeout_at(deadline):
            response = await _send(http_client, _http_request(target, messages, overrides, True))
    except BaseException as exc:
        await _close(http_client)
        if isinstance(exc, Exception):
            raise _map(target, exc) from None
        raise
    return UpstreamStream(target, response, http_client, started, deadline)
