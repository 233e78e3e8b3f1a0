"""The async upstream call of the chat lane (api.md §10.7) through the official `openai` SDK's `AsyncOpenAI`.

* **Whole-call deadline.** `deadline` is an event-loop time (`loop.time()` based): the request, and for a
  stream every wait for the next chunk, runs under `asyncio.timeout_at(deadline)`, so the provider's
  `timeout` bounds the call from connecting to the last byte. A trickling upstream is cut at the deadline
  (CHAT_003); no retries.
* **No shared state.** Each call gets its own HTTP client (connection pool and cookie jar), closed after
  the call, so nothing of one tenant's exchange (a cookie, a connection) reaches another's. Only the TLS
  trust store (an `ssl.SSLContext`, which holds no per-peer state we rely on) is shared, to avoid reloading
  the CA bundle on every call. Proxy variables of the environment are ignored (`trust_env=False`) and
  redirects are never followed.
* **Egress policy at connect time.** The connection pool's network backend resolves the host, checks every
  address (`core.egress`) and connects to the checked address; a refusal is CHAT_002.
* Upstream URLs are logged only at DEBUG, never with credentials; error bodies are logged redacted.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any

import httpcore2
import httpx2
import openai
from django.conf import settings
from django.utils.translation import gettext as _

from chat.llm import Completion, Usage, _finish_reason, _request, _timeout_error, _unusable, _usage, map_upstream_error
from chat.routing import ModelTarget
from core import egress
from core.errors import ErrorCode
from core.exceptions import ApplicationError

logger = logging.getLogger("maimconfig.chat")


class EgressCheckingBackend(httpcore2.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the egress policy allows."""

    def __init__(self):
        from httpcore2._backends.auto import AutoBackend

        self._inner = AutoBackend()

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        address = await egress.resolve_checked(host, port)
        return await self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                             socket_options=socket_options)

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise egress.EgressRefused("Unix sockets are not allowed.")

    async def sleep(self, seconds):
        await self._inner.sleep(seconds)


@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    return httpx2.create_ssl_context(trust_env=False)


def warm_up() -> None:
    """Build what every call shares once, at worker start (ASGI lifespan), outside any request's deadline."""
    _ssl_context()
    openai.AsyncOpenAI(api_key="warm-up", base_url="http://127.0.0.1/v1", http_client=new_http_client(1.0))


def new_http_client(timeout: float) -> httpx2.AsyncClient:
    """A fresh client for one upstream call (its own pool and cookie jar)."""
    transport = httpx2.AsyncHTTPTransport(verify=_ssl_context(), trust_env=False)
    # httpx has no public hook for the network backend: give the transport a pool that uses ours.
    transport._pool = httpcore2.AsyncConnectionPool(ssl_context=_ssl_context(), max_connections=2,
                                                    network_backend=EgressCheckingBackend())
    return httpx2.AsyncClient(transport=transport, trust_env=False, follow_redirects=False,
                              timeout=httpx2.Timeout(timeout))


def _client(target: ModelTarget, http_client: httpx2.AsyncClient) -> openai.AsyncOpenAI:
    kwargs: dict[str, Any] = {
        "base_url": target.base_url,
        "timeout": httpx2.Timeout(target.timeout),
        "max_retries": 0,
        "http_client": http_client,
        # Never forward the process's OPENAI_ORG_ID / OPENAI_PROJECT_ID to a third-party provider.
        "default_headers": {"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()},
    }
    # A provider without a key: no Authorization header, and never the process's OPENAI_API_KEY.
    return openai.AsyncOpenAI(api_key=target.api_key or _no_key, **kwargs)


async def _no_key() -> str:
    return ""


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
    http_client = new_http_client(target.timeout)
    try:
        async with asyncio.timeout_at(deadline):
            response = await _client(target, http_client).chat.completions.create(
                **_request(target, messages, capped_max_tokens(target, overrides), False))
    except Exception as exc:  # noqa: BLE001 - every failure of the call maps to CHAT_002/003
        raise _map(target, exc) from None
    finally:
        await _close(http_client)
    latency_ms = int((time.perf_counter() - started) * 1000)
    choices = getattr(response, "choices", None)
    if not choices:
        raise _unusable()
    content = getattr(getattr(choices[0], "message", None), "content", None)
    if not isinstance(content, str):
        raise _unusable()
    return Completion(content, _finish_reason(getattr(choices[0], "finish_reason", None)),
                      _usage(getattr(response, "usage", None)), latency_ms)


async def _close(http_client: httpx2.AsyncClient) -> None:
    try:
        await asyncio.shield(http_client.aclose())
    except BaseException:  # noqa: BLE001 - closing a broken or cancelled connection
        pass


class UpstreamStream:
    """An accepted (2xx) streaming completion. `async for fragment in stream.fragments()`, then read the
    results. `aclose()` abandons the call (client disconnect, error)."""

    def __init__(self, target: ModelTarget, stream, http_client, started: float, deadline: float):
        self.target = target
        self._stream = stream
        self._http_client = http_client
        self.started = started
        self.deadline = deadline
        self.finish_reason = "stop"
        self.usage: Usage | None = None
        self.latency_ms = 0
        self.content_parts: list[str] = []

    async def fragments(self) -> AsyncIterator[str]:
        iterator = self._stream.__aiter__()
        try:
            while True:
                try:
                    async with asyncio.timeout_at(self.deadline):
                        chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                usage = _usage(getattr(chunk, "usage", None))
                if usage is not None:
                    self.usage = usage
                for choice in getattr(chunk, "choices", None) or []:
                    if getattr(choice, "index", 0) not in (0, None):
                        continue
                    if getattr(choice, "finish_reason", None):
                        self.finish_reason = _finish_reason(choice.finish_reason)
                    text = getattr(getattr(choice, "delta", None), "content", None)
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
            await asyncio.shield(self._stream.close())
        except BaseException:  # noqa: BLE001 - closing an already-broken stream
            pass
        await _close(self._http_client)


async def open_stream(target: ModelTarget, messages: list[dict], overrides: dict | None = None, *,
                      deadline: float) -> UpstreamStream:
    """Start a streaming completion; returns once the upstream accepted it (2xx), before `deadline`."""
    started = time.perf_counter()
    logger.debug("Calling upstream model (stream)", extra={"upstream_url": target.base_url,
                                                           "model": target.model_identifier})
    http_client = new_http_client(target.timeout)
    try:
        async with asyncio.timeout_at(deadline):
            stream = await _client(target, http_client).chat.completions.create(
                **_request(target, messages, capped_max_tokens(target, overrides), True))
    except BaseException as exc:
        await _close(http_client)
        if isinstance(exc, Exception):
            raise _map(target, exc) from None
        raise
    return UpstreamStream(target, stream, http_client, started, deadline)
