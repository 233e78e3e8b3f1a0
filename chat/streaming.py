"""Server-sent-event framing of the chat streams (spec §10.3 and §11.4)."""

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from typing import Any

from django.http import StreamingHttpResponse

from core.envelope import build_envelope, dumps
from core.exceptions import ApplicationError

KEEPALIVE = b": keep-alive\n\n"


def sse_event(name: str, data: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + dumps(data) + b"\n\n"


def sse_data(data: Any) -> bytes:
    return b"data: " + (data if isinstance(data, bytes) else dumps(data)) + b"\n\n"


async def chat_event_stream(events: AsyncIterable[tuple[str, Any]], *, tenant_id: str) -> AsyncIterator[bytes]:
    """Frame the events of `chat.services.chat_stream` (§10.3): `done`/`error` carry a full envelope."""
    async for name, value in events:
        if name == ":":
            yield KEEPALIVE
        elif name == "done":
            yield sse_event("done", build_envelope(success=True, message="Reply generated", data=value,
                                                   tenant_id=tenant_id))
        elif name == "error":
            error: ApplicationError = value
            yield sse_event("error", build_envelope(success=False, message=error.message, data=None,
                                                    tenant_id=tenant_id, error=error.error,
                                                    error_code=error.code.value))
        else:
            yield sse_event(name, value)


def event_stream_response(chunks: AsyncIterator[bytes] | Iterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def openai_chunk(base: dict, choices: list, usage: Any = ...) -> bytes:
    body = {**base, "choices": choices}
    if usage is not ...:
        body["usage"] = usage
    return sse_data(body)


def openai_json(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
