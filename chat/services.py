"""Chat turns (api.md §10): prompt, model call or offline reply, storage of the completed turn.

The reply-producing functions are async (the chat lane, `core.lanes`): the upstream call is awaited on the
event loop, and the database work runs in short bursts through `chat.aio.run_db` (bounded executor). No
database connection or transaction belongs to a request while it waits: a turn is read (history),
answered, then stored in one short transaction (both messages together), in the worker's next group
commit (`chat.writes`). Nothing is stored when the reply fails. Every answered call and every upstream
failure is counted in the usage counters (`chat.writes.count_usage`).
"""

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from agents.models import Agent
from chat import agentcache, metrics, upstream, writes
from chat.aio import run_db, sqlite_turn
from chat.llm import Usage
from chat.models import ChatConversation, ChatMessage
from chat.prompt import (OFFLINE_MODEL, effective_document, estimate_tokens, max_context_size, offline_reply,
                         system_prompt)
from chat.routing import ModelChoice, choose_models
from chat.selectors import conversation_recent_turns
from core.errors import ErrorCode
from core.exceptions import ApplicationError
from core.ids import new_id

logger = logging.getLogger("maimconfig.chat")

KEEPALIVE_SECONDS = 15.0

def new_conversation_id() -> str:
    return new_id("conv_", 24)


@dataclass(frozen=True)
class PreparedChat:
    """What one request needs from the agent's configuration, read once at its start (§7)."""

    agent: Agent
    doc: dict
    choice: ModelChoice
    system_prompt: str
    max_context_size: int

    @property
    def model(self) -> str:
        target = self.choice.target
        return target.model_identifier if target else OFFLINE_MODEL

    @property
    def responder(self) -> str:
        return self.choice.responder


def chat_prepare(*, agent: Agent) -> PreparedChat:
    """What the request needs from the agent's configuration. For an agent read by `selectors.key_agent`,
    the effective document and the model choice come from the per-process cache (`chat.agentcache`: exact
    by the stored text and the server's side); the system prompt is drawn per request (its `states`)."""
    entry = getattr(agent, "chat_config_entry", None)
    if entry is None:
        doc = effective_document(agent)
        choice = choose_models(agent, doc)
    else:
        doc = entry.effective_document(lambda: effective_document(agent))
        choice = entry.choice(agentcache.choice_fingerprint(), lambda: choose_models(agent, doc))
    return PreparedChat(agent=agent, doc=doc, choice=choice, system_prompt=system_prompt(agent, doc),
                        max_context_size=max_context_size(doc))


@dataclass
class Reply:
    content: str
    model: str
    responder: str
    finish_reason: str
    usage: Usage
    latency_ms: int


def estimated_usage(messages: list[dict], content: str) -> Usage:
    prompt_chars = sum(len(m["content"]) for m in messages if isinstance(m.get("content"), str))
    prompt = -(-prompt_chars // 4)
    completion = estimate_tokens(content)
    return Usage(prompt, completion, prompt + completion, True)


def prompt_messages(prepared: PreparedChat, *, conversation_id: str, message: str,
                    fresh: bool = False) -> list[dict]:
    """System prompt, the last `max_context_size` stored turns (oldest first), then the new message. A
    `fresh` conversation (its id just generated here) has no stored turn: no query."""
    turns: list[tuple[str, str]] = []
    if not fresh:
        with sqlite_turn():
            turns = conversation_recent_turns(agent_id=prepared.agent.id, conversation_id=conversation_id,
                                              turns=prepared.max_context_size)
    messages = [{"role": "system", "content": prepared.system_prompt}]
    for user_text, reply_text in turns:
        messages.append({"role": "user", "content": user_text})
        messages.append({"role": "assistant", "content": reply_text})
    messages.append({"role": "user", "content": message})
    return messages


def offline_reply_of(prepared: PreparedChat, messages: list[dict], excerpt_source: str) -> Reply:
    content = offline_reply(prepared.agent, prepared.doc, excerpt_source)
    return Reply(content, OFFLINE_MODEL, "offline", "stop", estimated_usage(messages, content), 0)


async def generate_reply(prepared: PreparedChat, messages: list[dict], *, excerpt_source: str,
                         overrides: dict | None = None, deadline: float | None = None) -> Reply:
    """Call the chosen model (cut at its deadline, or `deadline` if earlier), or answer offline.
    Raises ApplicationError CHAT_002/CHAT_003."""
    target = prepared.choice.target
    if target is None:
        return offline_reply_of(prepared, messages, excerpt_source)
    own = upstream.deadline_for(target)
    with metrics.upstream_timer(target.provider_kind):
        completion = await upstream.complete(target, messages, overrides,
                                             deadline=own if deadline is None else min(own, deadline))
    usage = completion.usage or estimated_usage(messages, completion.content)
    return Reply(completion.content, target.model_identifier, "llm", completion.finish_reason, usage,
                 completion.latency_ms)


# --- Usage counters (issue 10 item 6) ---------------------------------------------------------------

async def count_failure(*, route: str, prepared: PreparedChat, api_key_id: str | None, code: str,
                        release: Callable[[], None] | None = None) -> None:
    """Count an upstream failure; `release` (the slots) runs in the same burst when there is one."""
    metrics.chat_request(route, prepared.responder, code)
    if code in (ErrorCode.CHAT_002.value, ErrorCode.CHAT_003.value):
        await writes.count(release=release, route=route, prepared=prepared, api_key_id=api_key_id, error_code=code)


def reply_payload(*, agent: Agent, conversation_id: str, user_id: str | None, reply: Reply,
                  user_message: ChatMessage, assistant: ChatMessage) -> dict[str, Any]:
    """The `data` object of a successful turn (spec §10.2)."""
    return {
        "response": reply.content,
        "conversation_id": conversation_id,
        "message_id": assistant.id,
        "user_message_id": user_message.id,
        "tenant_id": agent.tenant_id,
        "agent_id": agent.id,
        "user_id": user_id,
        "model": reply.model,
        "responder": reply.responder,
        "finish_reason": reply.finish_reason,
        "usage": reply.usage.as_dict(),
        "latency_ms": reply.latency_ms,
        "created_at": assistant.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


@dataclass(frozen=True)
class TurnRequest:
    message: str
    conversation_id: str | None = None
    user_id: str | None = None


@dataclass
class History:
    """A turn's conversation and prompt, read in the request's first database burst (`read_history`).
    A failure to read is kept in `error` for the turn to report (in a stream: an `error` event)."""

    conversation_id: str
    received_at: datetime
    messages: list[dict] | None = None
    error: Exception | None = None

    def prompt(self) -> list[dict]:
        if self.error is not None:
            raise self.error
        return self.messages


def read_history(prepared: PreparedChat, turn: TurnRequest) -> History:
    """In a burst: the turn's conversation id (a new one when absent) and its prompt messages."""
    received_at = timezone.now()
    fresh = not turn.conversation_id
    conversation_id = turn.conversation_id or new_conversation_id()
    try:
        messages = prompt_messages(prepared, conversation_id=conversation_id, message=turn.message, fresh=fresh)
    except Exception as exc:  # noqa: BLE001 - reported by the turn (INTERNAL_ERROR)
        return History(conversation_id, received_at, error=exc)
    return History(conversation_id, received_at, messages)


def _turn_ids(history, turn) -> tuple[datetime, str]:
    """When the turn was received and its conversation: those of the prompt read in the request's first
    burst, else now and the given (or a new) conversation id."""
    if history is not None:
        return history.received_at, history.conversation_id
    return timezone.now(), turn.conversation_id or new_conversation_id()


async def _prompt(prepared: PreparedChat, history, turn, conversation_id: str) -> list[dict]:
    """The prompt: read in the request's first burst, else read now (none to read for a new conversation)."""
    if history is not None:
        return history.prompt()
    return await run_db(prompt_messages, prepared, conversation_id=conversation_id, message=turn.message,
                        fresh=not turn.conversation_id)


async def chat_send(*, prepared: PreparedChat, turn: TurnRequest, api_key_id: str | None, request_id: str,
                    route: str = "chat", deadline: float | None = None, history: History | None = None,
                    release: Callable[[], None] | None = None,
                    pace: Callable[[], Awaitable[Any]] | None = None) -> dict[str, Any]:
    """One non-streaming turn (spec §10.2): prompt -> reply -> store -> `data`. `deadline` (event-loop
    time) cuts the upstream call earlier than its own deadline (a batch's bound). `history` is the prompt
    read in the request's first burst (else read here); `release` frees the request's slots in the last
    burst (storing the turn, or counting the failure); `pace` is awaited once the turn is stored, before the
    answer is built (the chat express waits there for its turn on the loop: `chat.express`)."""
    received_at, conversation_id = _turn_ids(history, turn)
    try:
        messages = await _prompt(prepared, history, turn, conversation_id)
        if deadline is not None and asyncio.get_running_loop().time() >= deadline:
            raise ApplicationError(ErrorCode.CHAT_003, "The batch reached its time limit before this item ran.")
        reply = await generate_reply(prepared, messages, excerpt_source=turn.message, deadline=deadline)
        user_message, assistant = await writes.store_turn(
            release=release, agent=prepared.agent, api_key_id=api_key_id, conversation_id=conversation_id,
            user_id=turn.user_id, message=turn.message, reply=reply, request_id=request_id,
            received_at=received_at, route=route, prepared=prepared, fresh=not turn.conversation_id)
        if pace is not None:
            await pace()
    except ApplicationError as exc:
        await count_failure(route=route, prepared=prepared, api_key_id=api_key_id, code=exc.code.value,
                            release=release)
        raise
    except Exception:
        metrics.chat_request(route, prepared.responder, ErrorCode.INTERNAL_ERROR.value)
        raise
    metrics.chat_request(route, reply.responder, "ok")
    return reply_payload(agent=prepared.agent, conversation_id=conversation_id, user_id=turn.user_id, reply=reply,
                         user_message=user_message, assistant=assistant)


# --- Streaming (§10.3) ------------------------------------------------------------------------------

_END = object()
_FAILED = object()


def _wake(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def with_keepalive(fragments: AsyncIterator[str], seconds: float) -> AsyncIterator[str | None]:
    """The fragments of `fragments`, and None whenever `seconds` pass without one (a keep-alive).

    One task reads `fragments` (its exceptions are raised here, in order); waiting for the next fragment
    costs a future and a timer, not a task and `asyncio.wait` per fragment. Closing this generator cancels
    the read and closes `fragments`."""
    loop = asyncio.get_running_loop()
    iterator = fragments.__aiter__()
    ready: collections.deque = collections.deque()
    waiter: asyncio.Future | None = None

    def push(item) -> None:
        ready.append(item)
        if waiter is not None:
            _wake(waiter)

    async def read() -> None:
        try:
            while True:
                try:
                    fragment = await iterator.__anext__()
                except StopAsyncIteration:
                    push((_END, None))
                    return
                push((fragment, None))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            push((_FAILED, exc))

    reader = loop.create_task(read())
    try:
        while True:
            if not ready:
                waiter = loop.create_future()
                timer = loop.call_later(seconds, _wake, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
                    waiter = None
                if not ready:
                    yield None
                    continue
            value, exc = ready.popleft()
            if value is _END:
                return
            if value is _FAILED:
                raise exc
            yield value
    finally:
        if not reader.done():
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(BaseException):
                await aclose()


def _internal_error(what: str, exc: BaseException) -> ApplicationError:
    logger.error(what, exc_info=(type(exc), exc, exc.__traceback__))
    return ApplicationError(ErrorCode.INTERNAL_ERROR)


async def chat_stream(*, prepared: PreparedChat, turn: TurnRequest, api_key_id: str | None,
                      request_id: str, history: History | None = None,
                      release: Callable[[], None] | None = None) -> AsyncIterator[tuple[str, Any]]:
    """The events of a streamed turn: ("start", dict), ("delta", dict)…, then ("done", data) or
    ("error", ApplicationError); (":", None) is a keep-alive. Closing the generator before the end
    (client disconnect) abandons the upstream call and stores nothing. `history` and `release` as in
    `chat_send`."""
    received_at, conversation_id = _turn_ids(history, turn)
    agent = prepared.agent
    yield "start", {"conversation_id": conversation_id, "tenant_id": agent.tenant_id, "agent_id": agent.id,
                    "model": prepared.model, "responder": prepared.responder, "request_id": request_id}
    try:
        messages = await _prompt(prepared, history, turn, conversation_id)
    except Exception as exc:  # noqa: BLE001 - INTERNAL_ERROR event, code path 1 of 3
        metrics.chat_request("chat", prepared.responder, ErrorCode.INTERNAL_ERROR.value)
        yield "error", _internal_error("Reading the conversation failed", exc)
        return

    target = prepared.choice.target
    if target is None:
        reply = offline_reply_of(prepared, messages, turn.message)
        yield "delta", {"content": reply.content}
    else:
        started = time.perf_counter()
        stream = None

        async def fragments():
            nonlocal stream
            stream = await upstream.open_stream(target, messages, deadline=upstream.deadline_for(target))
            async for text in stream.fragments():
                yield text

        try:
            async for fragment in with_keepalive(fragments(), KEEPALIVE_SECONDS):
                if fragment is None:
                    yield ":", None
                else:
                    yield "delta", {"content": fragment}
        except ApplicationError as exc:
            await count_failure(route="chat", prepared=prepared, api_key_id=api_key_id, code=exc.code.value,
                                release=release)
            yield "error", exc
            return
        except Exception as exc:  # noqa: BLE001 - INTERNAL_ERROR event, code path 2 of 3
            metrics.chat_request("chat", "llm", ErrorCode.INTERNAL_ERROR.value)
            yield "error", _internal_error("Streaming chat failed", exc)
            return
        finally:
            if stream is not None:
                await stream.aclose()
        metrics.observe_upstream(target.provider_kind, time.perf_counter() - started)
        usage = stream.usage or estimated_usage(messages, stream.content)
        reply = Reply(stream.content, prepared.model, "llm", stream.finish_reason, usage, stream.latency_ms)
    try:
        user_message, assistant = await writes.store_turn(
            release=release, agent=agent, api_key_id=api_key_id, conversation_id=conversation_id,
            user_id=turn.user_id, message=turn.message, reply=reply, request_id=request_id,
            received_at=received_at, route="chat", prepared=prepared, fresh=not turn.conversation_id)
    except Exception as exc:  # noqa: BLE001 - INTERNAL_ERROR event, code path 3 of 3
        metrics.chat_request("chat", reply.responder, ErrorCode.INTERNAL_ERROR.value)
        yield "error", _internal_error("Storing the chat turn failed", exc)
        return
    metrics.chat_request("chat", reply.responder, "ok")
    yield "done", reply_payload(agent=agent, conversation_id=conversation_id, user_id=turn.user_id, reply=reply,
                                user_message=user_message, assistant=assistant)


# --- Batch (§10.4) ----------------------------------------------------------------------------------

@dataclass
class BatchItemResult:
    index: int
    data: dict | None = None
    error: ApplicationError | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.error is None:
            return {"index": self.index, "success": True, "data": self.data, "error_code": None, "error": None,
                    "errors": None}
        errors = None
        if self.error.code == ErrorCode.VALIDATION_ERROR and isinstance(self.error.data, dict):
            errors = self.error.data.get("errors")
        return {"index": self.index, "success": False, "data": None, "error_code": self.error.code.value,
                "error": self.error.error, "errors": errors}


def batch_groups(items: list[tuple[int, TurnRequest]]) -> list[list[tuple[int, TurnRequest]]]:
    """The items by conversation (list order kept); items without a conversation_id each alone."""
    groups: dict[str, list[tuple[int, TurnRequest]]] = {}
    for index, turn in items:
        key = f"c:{turn.conversation_id}" if turn.conversation_id else f"i:{index}"
        groups.setdefault(key, []).append((index, turn))
    return list(groups.values())


def batch_time_limit() -> float:
    """Seconds a whole batch may take (§10.4, README): twice MAIMCONFIG_CHAT_TIMEOUT_SECONDS. Items still
    waiting or running at that point fail with CHAT_003; the others keep their results."""
    return 2 * float(settings.MAIMCONFIG_CHAT_TIMEOUT_SECONDS)


def batch_parallelism(items: list[tuple[int, TurnRequest]], concurrency: int) -> int:
    """How many items of the batch run at once (the chat slots it takes, §10.7)."""
    return max(1, min(concurrency, len(batch_groups(items))))


async def chat_batch(*, prepared: PreparedChat, items: list[tuple[int, TurnRequest]], api_key_id: str | None,
                     request_id: str, concurrency: int) -> list[BatchItemResult]:
    """Run the valid items: concurrently (at most `concurrency`), one conversation's items in order, the
    whole batch bounded by `batch_time_limit()`."""
    groups = batch_groups(items)
    if not groups:
        return []
    deadline = asyncio.get_running_loop().time() + batch_time_limit()
    gate = asyncio.Semaphore(max(1, concurrency))

    async def run_group(group):
        results = []
        async with gate:
            for index, turn in group:
                try:
                    data = await chat_send(prepared=prepared, turn=turn, api_key_id=api_key_id,
                                           request_id=request_id, route="batch_item", deadline=deadline)
                    results.append(BatchItemResult(index, data=data))
                except ApplicationError as exc:
                    results.append(BatchItemResult(index, error=exc))
                except Exception as exc:  # noqa: BLE001 - one item's failure never fails the batch
                    results.append(BatchItemResult(index, error=_internal_error("Chat batch item failed", exc)))
        return results

    outcomes = await asyncio.gather(*(run_group(group) for group in groups))
    return sorted((result for group in outcomes for result in group), key=lambda r: r.index)


@transaction.atomic
def conversation_delete(*, conversation: ChatConversation) -> None:
    """Delete a conversation and its messages (operators, through the admin); audited."""
    from audit.models import AuditAction, AuditTarget
    from audit.services import audit_record

    target_id, tenant_id = conversation.pk, conversation.tenant_id
    before = {"agent_id": conversation.agent_id, "conversation_id": conversation.conversation_id}
    conversation.delete()
    audit_record(action=AuditAction.CONVERSATION_DELETE, target_type=AuditTarget.CONVERSATION,
                 target_id=target_id, tenant_id=tenant_id, before=before, after=None)
