"""The OpenAI-compatible chat completions (spec §11): stateless, persona prepended, OpenAI shapes."""

import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from chat import metrics, upstream
from chat import writes
from chat.services import (PreparedChat, count_failure, estimated_usage, generate_reply, offline_reply_of,
                           with_keepalive, KEEPALIVE_SECONDS, Reply)
from chat.streaming import KEEPALIVE, openai_chunk, sse_data
from core.envelope import openai_error_body
from core.errors import ErrorCode
from core.exceptions import ApplicationError

logger = logging.getLogger("maimconfig.chat")

PASS_THROUGH = ("top_p", "stop", "presence_penalty", "frequency_penalty", "user")


def completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def upstream_messages(prepared: PreparedChat, messages: list[dict]) -> list[dict]:
    """The agent's system prompt first, then the client's messages unchanged (§11.2)."""
    out = [{"role": "system", "content": prepared.system_prompt}]
    for message in messages:
        entry = {"role": message["role"], "content": message.get("content")}
        if message.get("name"):
            entry["name"] = message["name"]
        out.append(entry)
    return out


def overrides_of(data: dict) -> dict[str, Any]:
    """Request parameters that override the configured ones or pass through (§11.2, agent-config §7.4)."""
    overrides: dict[str, Any] = {}
    if data.get("temperature") is not None:
        overrides["temperature"] = data["temperature"]
    max_tokens = data.get("max_completion_tokens") or data.get("max_tokens")
    if max_tokens is not None:
        overrides["max_tokens"] = max_tokens
    for name in PASS_THROUGH:
        if data.get(name) is not None:
            overrides[name] = data[name]
    return overrides


def _last_user_text(messages: list[dict]) -> str:
    for message in reversed(messages):
        if message["role"] == "user" and isinstance(message.get("content"), str):
            return message["content"]
    return ""


def _usage(reply_usage) -> dict[str, int]:
    return {"prompt_tokens": reply_usage.prompt_tokens, "completion_tokens": reply_usage.completion_tokens,
            "total_tokens": reply_usage.total_tokens}


async def completion_create(*, prepared: PreparedChat, data: dict, api_key_id: str | None,
                            release: Callable[[], None] | None = None,
                            pace: Callable[[], Awaitable[Any]] | None = None) -> dict[str, Any]:
    """A non-streaming completion in OpenAI's `chat.completion` shape. `release` (the request's slots) runs
    in the burst that counts the call; `pace` as in `chat.services.chat_send`."""
    messages = upstream_messages(prepared, data["messages"])
    try:
        reply = await generate_reply(prepared, messages, excerpt_source=_last_user_text(data["messages"]),
                                     overrides=overrides_of(data))
    except ApplicationError as exc:
        await count_failure(route="openai", prepared=prepared, api_key_id=api_key_id, code=exc.code.value,
                            release=release)
        raise
    await writes.count(release=release, route="openai", prepared=prepared, api_key_id=api_key_id, reply=reply)
    if pace is not None:
        await pace()
    metrics.chat_request("openai", reply.responder, "ok")
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content},
                     "finish_reason": reply.finish_reason}],
        "usage": _usage(reply.usage),
        "system_fingerprint": None,
    }


async def _single(text: str) -> AsyncIterator[str]:
    yield text


async def completion_stream(*, prepared: PreparedChat, data: dict, api_key_id: str | None,
                            release: Callable[[], None] | None = None) -> AsyncIterator[bytes]:
    """A streaming completion (§11.4). The upstream is opened before this returns, so a failure to start
    raises ApplicationError (an ordinary 502/504); later failures end the stream with an error event. The
    whole call, stream included, is cut at the provider's deadline (§10.7)."""
    messages = upstream_messages(prepared, data["messages"])
    include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
    target = prepared.choice.target
    if target is None:
        reply = offline_reply_of(prepared, messages, _last_user_text(data["messages"]))
        return _frames(prepared, include_usage, _single(reply.content), reply=reply, api_key_id=api_key_id,
                       release=release)
    try:
        stream = await upstream.open_stream(target, messages, overrides_of(data),
                                            deadline=upstream.deadline_for(target))
    except ApplicationError as exc:
        await count_failure(route="openai", prepared=prepared, api_key_id=api_key_id, code=exc.code.value,
                            release=release)
        raise
    return _frames(prepared, include_usage, stream.fragments(), stream=stream, messages=messages,
                   api_key_id=api_key_id, release=release)


async def _frames(prepared: PreparedChat, include_usage: bool, fragments: AsyncIterator[str], *,
                  reply: Reply | None = None, stream=None, messages=None, api_key_id=None,
                  release: Callable[[], None] | None = None) -> AsyncIterator[bytes]:
    base = {"id": completion_id(), "object": "chat.completion.chunk", "created": int(time.time()),
            "model": prepared.model}
    usage_field = {"usage": None} if include_usage else {}
    try:
        yield openai_chunk(base, [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                   "finish_reason": None}], **usage_field)
        try:
            async for fragment in with_keepalive(fragments, KEEPALIVE_SECONDS):
                if fragment is None:
                    yield KEEPALIVE
                    continue
                yield openai_chunk(base, [{"index": 0, "delta": {"content": fragment}, "finish_reason": None}],
                                   **usage_field)
        except ApplicationError as exc:
            await count_failure(route="openai", prepared=prepared, api_key_id=api_key_id, code=exc.code.value,
                                release=release)
            yield sse_data(openai_error_body(exc.code.value, exc.status, exc.error))
            return
        except Exception as exc:  # noqa: BLE001 - an unexpected failure mid-stream: INTERNAL_ERROR, logged
            logger.error("Streaming completion failed", exc_info=(type(exc), exc, exc.__traceback__))
            metrics.chat_request("openai", prepared.responder, ErrorCode.INTERNAL_ERROR.value)
            error = ApplicationError(ErrorCode.INTERNAL_ERROR)
            yield sse_data(openai_error_body(error.code.value, error.status, error.error))
            return
        if stream is not None:
            metrics.observe_upstream(stream.target.provider_kind, time.perf_counter() - stream.started)
            reply = Reply(stream.content, prepared.model, "llm", stream.finish_reason,
                          stream.usage or estimated_usage(messages, stream.content), stream.latency_ms)
            await writes.count(release=release, route="openai", prepared=prepared, api_key_id=api_key_id,
                               reply=reply)
        yield openai_chunk(base, [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}], **usage_field)
        if include_usage:
            yield openai_chunk(base, [], _usage(reply.usage))
        yield sse_data(b"[DONE]")
        metrics.chat_request("openai", prepared.responder, "ok")
    finally:
        if stream is not None:
            await stream.aclose()
