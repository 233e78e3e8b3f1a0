"""The shapes and error mapping of the upstream call (api.md §10.7); the call itself is `chat.upstream`.

One request per reply, no retries. A timeout -> CHAT_003; a non-2xx status, an unreachable endpoint or an
unusable body -> CHAT_002. The `error` sentence names the upstream HTTP status only; the upstream body is
logged (truncated) and never returned. Keys are never logged.
"""

import logging
from dataclasses import dataclass
from typing import Any

import httpx2

from chat.routing import ModelTarget
from core.errors import ErrorCode
from core.exceptions import ApplicationError

logger = logging.getLogger("maimconfig.chat")


class UpstreamStatusError(Exception):
    """The upstream answered with a non-2xx status; `body` is its (possibly cut) text, for the log only."""

    def __init__(self, status_code: int, body: str):
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.body = body


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


def _finish_reason(value: Any) -> str:
    return "length" if value == "length" else "stop"


def _usage(raw: Any) -> Usage | None:
    """The upstream's `usage` object (a JSON mapping), or None when absent or malformed."""
    if not isinstance(raw, dict):
        return None
    try:
        prompt = int(raw.get("prompt_tokens"))
        completion = int(raw.get("completion_tokens"))
    except (TypeError, ValueError):
        return None
    total = raw.get("total_tokens")
    total = int(total) if isinstance(total, int) else prompt + completion
    return Usage(prompt, completion, total, False)


def _timeout_error(target: ModelTarget) -> ApplicationError:
    return ApplicationError(ErrorCode.CHAT_003,
                            f"The language model did not answer within {target.timeout:g} seconds.")


def map_upstream_error(target: ModelTarget, exc: BaseException) -> ApplicationError:
    """The CHAT_002/CHAT_003 error for an exception raised by the upstream call (`chat.upstream`)."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, (TimeoutError, httpx2.TimeoutException)):
        logger.warning("Upstream model timed out", extra={"provider_kind": target.provider_kind,
                                                          "model": target.model_identifier})
        return _timeout_error(target)
    if isinstance(exc, UpstreamStatusError):
        body = exc.body
        if target.api_key:  # some providers echo the key they refused; redact before truncating, so a
            body = body.replace(target.api_key, "[redacted]")  # key cut at the limit leaks no prefix
        body = body[:500]
        logger.warning("Upstream model returned an error status",
                       extra={"provider_kind": target.provider_kind, "model": target.model_identifier,
                              "upstream_status": exc.status_code, "upstream_body": body})
        return ApplicationError(ErrorCode.CHAT_002, f"The language model returned HTTP {exc.status_code}.")
    if isinstance(exc, (httpx2.TransportError, OSError)):
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
