"""The upstream call (api.md §10.7) through the official `openai` SDK, and its error mapping.

One request per reply, no retries. Timeouts (connect and each wait for data) -> CHAT_003; a non-2xx
status, an unreachable endpoint or an unusable body -> CHAT_002. The `error` sentence names the upstream
HTTP status only; the upstream body is logged (truncated) and never returned. Keys are never logged.
"""

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai

from chat.routing import ModelTarget
from core.errors import ErrorCode
from core.exceptions import ApplicationError

logger = logging.getLogger("maimconfig.chat")

_client_lock = threading.Lock()
_http_client: httpx2.Client | None = None


def _shared_http_client() -> httpx2.Client:
    """One connection pool per process, shared by every upstream call (thread-safe)."""
    global _http_client
    with _client_lock:
        if _http_client is None:
            _http_client = httpx2.Client(limits=httpx2.Limits(max_connections=200, max_keepalive_connections=40),
                                         follow_redirects=False)
        return _http_client


def _client(target: ModelTarget) -> openai.OpenAI:
    kwargs: dict[str, Any] = {
        "base_url": target.base_url,
        "timeout": httpx2.Timeout(target.timeout),
        "max_retries": 0,
        "http_client": _shared_http_client(),
        # Never forward the process's OPENAI_ORG_ID / OPENAI_PROJECT_ID to a third-party provider.
        "default_headers": {"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()},
    }
    if target.api_key:
        return openai.OpenAI(api_key=target.api_key, **kwargs)
    # A provider without a key (a local endpoint): send no Authorization header, and never fall back
    # to the process's OPENAI_API_KEY.
    return openai.OpenAI(api_key=lambda: "", **kwargs)


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated: bool

    def as_dict(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.total_tokens, "estimated": self.estimated}


@dataclass
class Completion:
    content: str
    finish_reason: str
    usage: Usage | None
    latency_ms: int


def _request(target: ModelTarget, messages: list[dict], overrides: dict | None, stream: bool) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": target.model_identifier,
        "messages": messages,
        "temperature": target.temperature,
        "max_tokens": target.max_tokens,
        "stream": stream,
    }
    extra = dict(target.extra_params)
    for key, value in (overrides or {}).items():
        extra.pop(key, None)
        params[key] = value
    if extra:
        params["extra_body"] = extra
    if not target.api_key:  # no key: the Authorization header is explicitly omitted
        params["extra_headers"] = {"Authorization": openai.Omit()}
    return params


def _finish_reason(value: Any) -> str:
    return "length" if value == "length" else "stop"


def _usage(raw: Any) -> Usage | None:
    if raw is None:
        return None
    try:
        prompt = int(getattr(raw, "prompt_tokens", None))
        completion = int(getattr(raw, "completion_tokens", None))
    except (TypeError, ValueError):
        return None
    total = getattr(raw, "total_tokens", None)
    total = int(total) if isinstance(total, int) else prompt + completion
    return Usage(prompt, completion, total, False)


def _timeout_error(target: ModelTarget) -> ApplicationError:
    return ApplicationError(ErrorCode.CHAT_003,
                            f"The language model did not answer within {target.timeout:g} seconds.")


def map_upstream_error(target: ModelTarget, exc: BaseException) -> ApplicationError:
    """The CHAT_002/CHAT_003 error for an exception raised by the SDK or the HTTP client."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, (openai.APITimeoutError, httpx2.TimeoutException)):
        logger.warning("Upstream model timed out", extra={"provider_kind": target.provider_kind,
                                                          "model": target.model_identifier})
        return _timeout_error(target)
    if isinstance(exc, openai.APIStatusError):
        try:
            body = exc.response.text
        except Exception:  # noqa: BLE001 - a streamed body may be unreadable; the status suffices
            body = ""
        if target.api_key:  # some providers echo the key they refused; redact before truncating, so a
            body = body.replace(target.api_key, "[redacted]")  # key cut at the limit leaks no prefix
        body = body[:500]
        logger.warning("Upstream model returned an error status",
                       extra={"provider_kind": target.provider_kind, "model": target.model_identifier,
                              "upstream_status": exc.status_code, "upstream_body": body})
        return ApplicationError(ErrorCode.CHAT_002, f"The language model returned HTTP {exc.status_code}.")
    if isinstance(exc, (openai.APIConnectionError, httpx2.TransportError)):
        logger.warning("Upstream model unreachable", extra={"provider_kind": target.provider_kind,
                                                           "model": target.model_identifier,
                                                           "error_type": type(exc).__name__})
        return ApplicationError(ErrorCode.CHAT_002, "The language model could not be reached.")
    logger.warning("Upstream model failed", extra={"provider_kind": target.provider_kind,
                                                   "model": target.model_identifier,
                                                   "error_type": type(exc).__name__})
    return ApplicationError(ErrorCode.CHAT_002, "The language model returned an unusable response.")


def _unusable() -> ApplicationError:
    return ApplicationError(ErrorCode.CHAT_002, "The language model returned an unusable response.")


def complete(target: ModelTarget, messages: list[dict], overrides: dict | None = None) -> Completion:
    """One non-streaming completion. Raises ApplicationError CHAT_002/CHAT_003."""
    started = time.perf_counter()
    try:
        response = _client(target).chat.completions.create(**_request(target, messages, overrides, False))
    except Exception as exc:  # noqa: BLE001 - every failure of the call maps to CHAT_002/003
        raise map_upstream_error(target, exc) from None
    latency_ms = int((time.perf_counter() - started) * 1000)
    choices = getattr(response, "choices", None)
    if not choices:
        raise _unusable()
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if not isinstance(content, str):
        raise _unusable()
    return Completion(content, _finish_reason(getattr(choices[0], "finish_reason", None)),
                      _usage(getattr(response, "usage", None)), latency_ms)


@dataclass
class UpstreamStream:
    """An accepted (2xx) streaming completion. Iterate `fragments()`; then read the results.
    `close()` abandons the upstream call (client disconnect)."""

    target: ModelTarget
    _stream: Any
    started: float
    finish_reason: str = "stop"
    usage: Usage | None = None
    latency_ms: int = 0
    content_parts: list[str] = field(default_factory=list)

    def fragments(self) -> Iterator[str]:
        try:
            for chunk in self._stream:
                usage = _usage(getattr(chunk, "usage", None))
                if usage is not None:
                    self.usage = usage
                for choice in getattr(chunk, "choices", None) or []:
                    if getattr(choice, "index", 0) not in (0, None):
                        continue
                    if getattr(choice, "finish_reason", None):
                        self.finish_reason = _finish_reason(choice.finish_reason)
                    delta = getattr(choice, "delta", None)
                    text = getattr(delta, "content", None)
                    if isinstance(text, str) and text:
                        self.content_parts.append(text)
                        yield text
        except GeneratorExit:
            self.close()
            raise
        except Exception as exc:  # noqa: BLE001 - mid-stream failures map to CHAT_002/003
            self.close()
            raise map_upstream_error(self.target, exc) from None
        self.latency_ms = int((time.perf_counter() - self.started) * 1000)

    @property
    def content(self) -> str:
        return "".join(self.content_parts)

    def close(self) -> None:
        try:
            self._stream.close()
        except Exception:  # noqa: BLE001 - closing an already-broken stream
            pass


def open_stream(target: ModelTarget, messages: list[dict], overrides: dict | None = None) -> UpstreamStream:
    """Start a streaming completion; returns once the upstream accepted it with a 2xx status."""
    started = time.perf_counter()
    try:
        stream = _client(target).chat.completions.create(**_request(target, messages, overrides, True))
    except Exception as exc:  # noqa: BLE001
        raise map_upstream_error(target, exc) from None
    return UpstreamStream(target=target, _stream=stream, started=started)
