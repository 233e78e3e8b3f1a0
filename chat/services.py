"""Chat turns (api.md §10): prompt, model call or offline reply, storage of the completed turn.

The upstream call is never made inside a database transaction: a turn is read (history), answered,
then stored in one short transaction (both messages together). Nothing is stored when the reply fails.
"""

import contextlib
import contextvars
import logging
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connections, transaction
from django.utils import timezone

from agents.models import Agent
from chat import llm, metrics
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

# SQLite has one writer at a time, and its shared-cache in-memory databases (the test suite) fail with
# "table is locked" instead of waiting: on SQLite, this process's chat reads and writes take turns
# (the upstream calls, the slow part, still overlap). Other databases need no guard.
_sqlite_lock = threading.RLock()


@contextlib.contextmanager
def _db_turn():
    if connections["default"].vendor == "sqlite":
        with _sqlite_lock:
            yield
    else:
        yield


def new_conversation_id() -> str:
    return new_id("conv_", 24)


def new_message_id() -> str:
    return new_id("msg_", 24)


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
    doc = effective_document(agent)
    return PreparedChat(agent=agent, doc=doc, choice=choose_models(agent, doc), system_prompt=system_prompt(agent, doc),
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


def prompt_messages(prepared: PreparedChat, *, conversation_id: str, message: str) -> list[dict]:
    """System prompt, the last `max_context_size` stored turns (oldest first), then the new message."""
    with _db_turn():
        turns = conversation_recent_turns(agent_id=prepared.agent.id, conversation_id=conversation_id,
                                          turns=prepared.max_context_size)
    messages = [{"role": "system", "content": prepared.system_prompt}]
    for user_text, reply_text in turns:
        messages.append({"role": "user", "content": user_text})
        messages.append({"role": "assistant", "content": reply_text})
    messages.append({"role": "user", "content": message})
    return messages


def generate_reply(prepared: PreparedChat, messages: list[dict], *, excerpt_source: str,
                   overrides: dict | None = None) -> Reply:
    """Call the chosen model, or answer offline. Raises ApplicationError CHAT_002/CHAT_003."""
    target = prepared.choice.target
    if target is None:
        content = offline_reply(prepared.agent, prepared.doc, excerpt_source)
        return Reply(content, OFFLINE_MODEL, "offline", "stop", estimated_usage(messages, content), 0)
    with metrics.upstream_timer(target.provider_kind):
        completion = llm.complete(target, messages, overrides)
    usage = completion.usage or estimated_usage(messages, completion.content)
    return Reply(completion.content, target.model_identifier, "llm", completion.finish_reason, usage,
                 completion.latency_ms)


def chat_turn_store(*, agent: Agent, api_key_id: str | None, conversation_id: str, user_id: str | None,
                    message: str, reply: Reply, request_id: str, received_at) -> tuple[ChatMessage, ChatMessage]:
    """Store one completed turn: the user's message and the reply, in one transaction."""
    with _db_turn(), transaction.atomic():
        return _store(agent=agent, api_key_id=api_key_id, conversation_id=conversation_id, user_id=user_id,
                      message=message, reply=reply, request_id=request_id, received_at=received_at)


def _store(*, agent, api_key_id, conversation_id, user_id, message, reply, request_id, received_at):
    now = timezone.now()
    replied_at = now if now > received_at else received_at + timedelta(microseconds=1)
    conversation, created = ChatConversation.objects.get_or_create(
        agent=agent, conversation_id=conversation_id,
        defaults={"tenant_id": agent.tenant_id, "created_at": received_at, "last_message_at": replied_at},
    )
    if not created:
        ChatConversation.objects.filter(pk=conversation.pk, last_message_at__lt=replied_at).update(
            last_message_at=replied_at)
    common = {"conversation": conversation, "tenant_id": agent.tenant_id, "agent": agent, "api_key_id": api_key_id,
              "user_id": user_id, "request_id": request_id[:128]}
    user_message = ChatMessage(id=new_message_id(), role=ChatMessage.Role.USER, content=message,
                               created_at=received_at, **common)
    user_message.save(force_insert=True)
    assistant = ChatMessage(
        id=new_message_id(), role=ChatMessage.Role.ASSISTANT, content=reply.content, reply_to=user_message,
        model=reply.model, responder=reply.responder, finish_reason=reply.finish_reason,
        prompt_tokens=reply.usage.prompt_tokens, completion_tokens=reply.usage.completion_tokens,
        total_tokens=reply.usage.total_tokens, usage_estimated=reply.usage.estimated, latency_ms=reply.latency_ms,
        created_at=replied_at, **common,
    )
    assistant.save(force_insert=True)
    return user_message, assistant


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


def chat_send(*, prepared: PreparedChat, turn: TurnRequest, api_key_id: str | None, request_id: str,
              route: str = "chat") -> dict[str, Any]:
    """One non-streaming turn (spec §10.2): prompt -> reply -> store -> `data`."""
    received_at = timezone.now()
    conversation_id = turn.conversation_id or new_conversation_id()
    try:
        messages = prompt_messages(prepared, conversation_id=conversation_id, message=turn.message)
        reply = generate_reply(prepared, messages, excerpt_source=turn.message)
        user_message, assistant = chat_turn_store(
            agent=prepared.agent, api_key_id=api_key_id, conversation_id=conversation_id, user_id=turn.user_id,
            message=turn.message, reply=reply, request_id=request_id, received_at=received_at)
    except ApplicationError as exc:
        metrics.chat_request(route, prepared.responder, exc.code.value)
        raise
    except Exception:
        metrics.chat_request(route, prepared.responder, ErrorCode.INTERNAL_ERROR.value)
        raise
    metrics.chat_request(route, reply.responder, "ok")
    return reply_payload(agent=prepared.agent, conversation_id=conversation_id, user_id=turn.user_id, reply=reply,
                         user_message=user_message, assistant=assistant)


# --- Streaming (§10.3) ------------------------------------------------------------------------------

class _Abandoned(Exception):
    """The client went away: the upstream call is abandoned."""


def _pump_upstream(prepared: PreparedChat, messages: list[dict], out: "queue.Queue", cancelled: threading.Event,
                   holder: dict) -> None:
    """Worker thread: call the upstream, push ("delta", text) items, then ("end", stream) or ("error", exc)."""
    target = prepared.choice.target
    started = time.perf_counter()
    try:
        stream = llm.open_stream(target, messages)
        holder["stream"] = stream
        if cancelled.is_set():
            stream.close()
            return
        for fragment in stream.fragments():
            if cancelled.is_set():
                stream.close()
                return
            out.put(("delta", fragment))
        metrics.observe_upstream(target.provider_kind, time.perf_counter() - started)
        out.put(("end", stream))
    except ApplicationError as exc:
        out.put(("error", exc))
    except Exception as exc:  # noqa: BLE001 - reported to the client as INTERNAL_ERROR
        if cancelled.is_set():
            return
        logger.error("Streaming chat failed", exc_info=(type(exc), exc, exc.__traceback__))
        out.put(("error", ApplicationError(ErrorCode.INTERNAL_ERROR)))


def chat_stream(*, prepared: PreparedChat, turn: TurnRequest, api_key_id: str | None,
                request_id: str) -> Iterator[tuple[str, Any]]:
    """The events of a streamed turn: ("start", dict), ("delta", dict)…, then ("done", data) or
    ("error", ApplicationError); (":", None) is a keep-alive. Closing the generator before the end
    (client disconnect) abandons the upstream call and stores nothing."""
    received_at = timezone.now()
    conversation_id = turn.conversation_id or new_conversation_id()
    agent = prepared.agent
    yield "start", {"conversation_id": conversation_id, "tenant_id": agent.tenant_id, "agent_id": agent.id,
                    "model": prepared.model, "responder": prepared.responder, "request_id": request_id}
    try:
        messages = prompt_messages(prepared, conversation_id=conversation_id, message=turn.message)
    except Exception as exc:  # noqa: BLE001
        logger.error("Reading the conversation failed", exc_info=(type(exc), exc, exc.__traceback__))
        metrics.chat_request("chat", prepared.responder, ErrorCode.INTERNAL_ERROR.value)
        yield "error", ApplicationError(ErrorCode.INTERNAL_ERROR)
        return

    if prepared.choice.target is None:
        reply = generate_reply(prepared, messages, excerpt_source=turn.message)
        yield "delta", {"content": reply.content}
    else:
        out: queue.Queue = queue.Queue()
        cancelled = threading.Event()
        holder: dict = {}
        context = contextvars.copy_context()
        worker = threading.Thread(target=context.run, args=(_pump_upstream, prepared, messages, out, cancelled, holder),
                                  name="chat-upstream", daemon=True)
        worker.start()
        stream = None
        try:
            while True:
                try:
                    kind, value = out.get(timeout=KEEPALIVE_SECONDS)
                except queue.Empty:
                    yield ":", None
                    continue
                if kind == "delta":
                    yield "delta", {"content": value}
                elif kind == "error":
                    metrics.chat_request("chat", "llm", value.code.value)
                    yield "error", value
                    return
                else:
                    stream = value
                    break
        finally:
            if stream is None:  # disconnect (GeneratorExit) or error: abandon the upstream
                cancelled.set()
                upstream = holder.get("stream")
                if upstream is not None:
                    upstream.close()
        usage = stream.usage or estimated_usage(messages, stream.content)
        reply = Reply(stream.content, prepared.model, "llm", stream.finish_reason, usage, stream.latency_ms)
    try:
        user_message, assistant = chat_turn_store(
            agent=agent, api_key_id=api_key_id, conversation_id=conversation_id, user_id=turn.user_id,
            message=turn.message, reply=reply, request_id=request_id, received_at=received_at)
    except Exception as exc:  # noqa: BLE001
        logger.error("Storing the chat turn failed", exc_info=(type(exc), exc, exc.__traceback__))
        metrics.chat_request("chat", reply.responder, ErrorCode.INTERNAL_ERROR.value)
        yield "error", ApplicationError(ErrorCode.INTERNAL_ERROR)
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


def _run_group(prepared: PreparedChat, items: list[tuple[int, TurnRequest]], api_key_id: str | None,
               request_id: str) -> list[BatchItemResult]:
    """Worker thread: one conversation's items, in list order. Closes this thread's DB connections."""
    results = []
    try:
        for index, turn in items:
            try:
                data = chat_send(prepared=prepared, turn=turn, api_key_id=api_key_id, request_id=request_id,
                                 route="batch_item")
                results.append(BatchItemResult(index, data=data))
            except ApplicationError as exc:
                results.append(BatchItemResult(index, error=exc))
            except Exception as exc:  # noqa: BLE001 - one item's failure never fails the batch
                logger.error("Chat batch item failed", exc_info=(type(exc), exc, exc.__traceback__))
                results.append(BatchItemResult(index, error=ApplicationError(ErrorCode.INTERNAL_ERROR)))
    finally:
        connections.close_all()
    return results


def chat_batch(*, prepared: PreparedChat, items: list[tuple[int, TurnRequest]], api_key_id: str | None,
               request_id: str, concurrency: int) -> list[BatchItemResult]:
    """Run the valid items: concurrently (at most `concurrency`), one conversation's items in order."""
    groups: dict[str, list[tuple[int, TurnRequest]]] = {}
    for index, turn in items:
        key = f"c:{turn.conversation_id}" if turn.conversation_id else f"i:{index}"
        groups.setdefault(key, []).append((index, turn))
    if not groups:
        return []
    results: list[BatchItemResult] = []
    workers = max(1, min(concurrency, len(groups)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chat-batch") as pool:
        futures = [pool.submit(contextvars.copy_context().run, _run_group, prepared, group, api_key_id, request_id)
                   for group in groups.values()]
        for future in futures:
            results.extend(future.result())
    return sorted(results, key=lambda r: r.index)


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
