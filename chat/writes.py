"""Group commit of a worker's chat writes (issue 10: the CPU of the answers in a chat storm).

Every answered chat ends with a database write: the turn's rows (`chat_turn_store`: the
conversation, both messages, in one transaction) and its usage counters (`count_usage`); a `/v1` call
writes only the counters. Written one request at a time, each is a burst of its own in the chat lane's
executor: a transaction, three or four statements, and as many round trips and GIL hand-overs between the
executor's thread and the event loop. When hundreds of answers arrive together (a storm's upstream calls
end together), those bursts are most of the worker's CPU, and the loop's other work (the bot routes)
waits for the GIL behind them.

Here a worker's writes queue on its event loop and are written by one burst at a time, in batches of at
most `BATCH_MAX`: every turn of the batch in ONE transaction (the new conversations' rows in one INSERT and
their ids read back in one query, then all the messages in one INSERT), then the counters of the whole
batch in one upsert. A request still awaits its
own write: its answer is sent after its turn is committed, exactly as before, and carries the ids and
times of its own rows. A batch that fails is written again one write at a time, so a failure (a
conversation created twice, say) fails only its own request. The slots a write releases in its burst
(`release`, per-process slots) are released after the batch, whatever happened.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable

from django.db import transaction
from django.utils import timezone

from chat import selectors
from chat.aio import sqlite_turn
from chat.models import ChatConversation, ChatMessage
from core.errors import ErrorCode
from core.ids import new_id

logger = logging.getLogger("maimconfig.chat")

BATCH_MAX = 64


@dataclass
class _Write:
    turn: dict | None  # the arguments of `chat_turn_store` (None: counters only)
    usage: dict | None  # the arguments of `count_usage` (None: none, or the turn's own)
    release: Callable[[], None] | None
    future: asyncio.Future = field(repr=False, default=None)


class _Writer:
    """One event loop's queue of writes and its one burst at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.pending: list[_Write] = []
        self.draining = False

    def submit(self, write: _Write) -> asyncio.Future:
        write.future = self.loop.create_future()
        self.pending.append(write)
        if not self.draining:
            self.draining = True
            self.loop.create_task(self._drain())
        return write.future

    async def _drain(self) -> None:
        from chat.aio import run_db

        try:
            while self.pending:
                batch = self.pending[:BATCH_MAX]
                del self.pending[:BATCH_MAX]
                try:
                    results = await run_db(write_batch, batch)
                except BaseException as exc:  # noqa: BLE001 - the executor failed: every write of the batch
                    results = [exc] * len(batch)
                for write, result in zip(batch, results):
                    if write.future.done():  # its request was cancelled (client gone): written all the same
                        continue
                    if isinstance(result, BaseException):
                        write.future.set_exception(result)
                    else:
                        write.future.set_result(result)
        finally:
            self.draining = False


_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writer] = weakref.WeakKeyDictionary()


def _writer() -> _Writer:
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = _Writer(loop)
    return writer


async def store_turn(*, release: Callable[[], None] | None = None, **turn: Any):
    """`chat_turn_store(**turn)` in the worker's next batch; returns its (user message,
    assistant message). `release` runs in that burst, after the batch."""
    return await _writer().submit(_Write(turn, None, release))


async def count(*, release: Callable[[], None] | None = None, **usage: Any) -> None:
    """`count_usage(**usage)` in the worker's next batch (a `/v1` call, a failure)."""
    await _writer().submit(_Write(None, usage, release))


# --- in the burst -------------------------------------------------------------------------------------------

def write_batch(batch: list[_Write]) -> list[Any]:
    """Write `batch` (module docstring); one result per write: its rows, None, or the exception it raised."""
    try:
        return _write_together(batch) if len(batch) > 1 else [_write_alone(batch[0])]
    except Exception:  # noqa: BLE001 - written again one at a time: a failure fails only its own write
        logger.warning("A batch of chat writes failed; writing them one at a time.", exc_info=True)
        return [_write_alone(write) for write in batch]
    finally:
        for write in batch:
            if write.release is not None:
                try:
                    write.release()
                except Exception:  # noqa: BLE001 - a slot not released expires at its deadline
                    logger.exception("Releasing a chat request's slots failed")


def _write_alone(write: _Write) -> Any:
    try:
        if write.turn is not None:
            return chat_turn_store(**write.turn)
        count_usage(**write.usage)
        return None
    except Exception as exc:  # noqa: BLE001 - handed to its request
        return exc


def _write_together(batch: list[_Write]) -> list[Any]:
    turns = [write.turn for write in batch if write.turn is not None]
    stored: list = []
    if turns:
        with sqlite_turn():
            with transaction.atomic():
                stored = store_turns(turns)
    rows = iter(stored)
    results = [next(rows) if write.turn is not None else None for write in batch]
    # The turns are committed: from here nothing may raise (the fallback would write them a second time).
    try:
        increments = []
        for write in batch:
            turn = write.turn
            if turn is None:
                increments += usage_increments(**write.usage)
            elif turn.get("route") is not None and turn.get("prepared") is not None:
                increments += usage_increments(route=turn["route"], prepared=turn["prepared"],
                                                        api_key_id=turn["api_key_id"], reply=turn["reply"])
        add_counters(increments)
    except Exception:  # noqa: BLE001 - a counter never fails the chat it counts
        logger.exception("Recording a batch's chat usage counters failed")
    return results


# --- the rows and counters of a write (in a burst) -------------------------------------------------------

def new_message_id() -> str:
    return new_id("msg_", 24)


def chat_turn_store(*, agent, api_key_id: str | None, conversation_id: str, user_id: str | None, message: str,
                    reply, request_id: str, received_at, route: str | None = None, prepared=None,
                    fresh: bool = False) -> tuple[ChatMessage, ChatMessage]:
    """Store one completed turn: the user's message and the reply, in one transaction; then count it. A
    `fresh` conversation (id generated for this turn) is inserted without looking it up first. A batch of
    one write, or each write of a failed batch (`write_batch`)."""
    with sqlite_turn():
        with transaction.atomic():
            stored = _store(agent=agent, api_key_id=api_key_id, conversation_id=conversation_id,
                            user_id=user_id, message=message, reply=reply, request_id=request_id,
                            received_at=received_at, fresh=fresh)
        if route is not None and prepared is not None:
            count_usage(route=route, prepared=prepared, api_key_id=api_key_id, reply=reply)
    return stored


def _store(*, agent, api_key_id, conversation_id, user_id, message, reply, request_id, received_at, fresh=False):
    """The turn's rows: the conversation (created or moved on), then both messages in one INSERT."""
    user_message, assistant = _turn_rows(agent=agent, api_key_id=api_key_id, conversation_id=conversation_id,
                                         user_id=user_id, message=message, reply=reply, request_id=request_id,
                                         received_at=received_at, fresh=fresh)
    selectors.insert([user_message, assistant])  # the user's message first (reply_to)
    return user_message, assistant


def store_turns(turns: list[dict]) -> list[tuple[ChatMessage, ChatMessage]]:
    """Inside a transaction: the rows of several turns (`chat.writes`, arguments as `chat_turn_store`'s).
    The new conversations (`fresh`) are inserted in one statement and their ids read back in one query;
    a given conversation is created or moved on as `_store` does; then every message in one INSERT (the
    users' first: `reply_to`). Three statements for a batch of new conversations, whatever its size: each
    statement of a burst hands the GIL back and forth with the event loop."""
    keys = ("agent", "api_key_id", "conversation_id", "user_id", "message", "reply", "request_id", "received_at")
    created = _insert_fresh_conversations([turn for turn in turns if turn.get("fresh")])
    pairs = []
    for turn in turns:
        conversation = created.get((turn["agent"].id, turn["conversation_id"])) if turn.get("fresh") else None
        pairs.append(_turn_rows(**{k: turn[k] for k in keys}, fresh=bool(turn.get("fresh")),
                                conversation=conversation))
    selectors.insert([user for user, _ in pairs] + [assistant for _, assistant in pairs])
    return pairs


def _insert_fresh_conversations(turns: list[dict]) -> dict[tuple[str, str], ChatConversation]:
    """The conversation rows of `turns` (new conversations, ids generated here) in one INSERT, with their
    primary keys read back by (agent, conversation id), the table's unique key."""
    if not turns:
        return {}
    rows = {}
    for turn in turns:
        agent, received_at = turn["agent"], turn["received_at"]
        rows[(agent.id, turn["conversation_id"])] = ChatConversation(
            agent=agent, conversation_id=turn["conversation_id"], tenant_id=agent.tenant_id,
            created_at=received_at, last_message_at=_replied_at(received_at))
    conversations = list(rows.values())
    selectors.insert(conversations)
    if len(conversations) > 1:  # a single row's id is read back by the insert itself
        for pk, agent_id, conversation_id in selectors.conversation_ids(list(rows)):
            rows[(agent_id, conversation_id)].pk = pk
    return rows


def _replied_at(received_at):
    now = timezone.now()
    return now if now > received_at else received_at + timedelta(microseconds=1)


def _turn_rows(*, agent, api_key_id, conversation_id, user_id, message, reply, request_id, received_at,
               fresh=False, conversation=None) -> tuple[ChatMessage, ChatMessage]:
    """The turn's conversation row (inserted, or created or moved on; `conversation`: a new one already
    inserted) and its two messages, not yet inserted."""
    replied_at = _replied_at(received_at)
    if conversation is not None:
        replied_at, created = conversation.last_message_at, True
    elif fresh:
        conversation, created = ChatConversation(agent=agent, conversation_id=conversation_id,
                                                 tenant_id=agent.tenant_id, created_at=received_at,
                                                 last_message_at=replied_at), True
        selectors.insert([conversation])
    else:
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
    assistant = ChatMessage(
        id=new_message_id(), role=ChatMessage.Role.ASSISTANT, content=reply.content, reply_to=user_message,
        model=reply.model, responder=reply.responder, finish_reason=reply.finish_reason,
        prompt_tokens=reply.usage.prompt_tokens, completion_tokens=reply.usage.completion_tokens,
        total_tokens=reply.usage.total_tokens, usage_estimated=reply.usage.estimated, latency_ms=reply.latency_ms,
        created_at=replied_at, **common,
    )
    return user_message, assistant


def usage_increments(*, route: str, prepared, api_key_id: str | None, reply=None, error_code: str | None = None) -> list:
    """One chat call's additions to the hourly usage counters (`metering`): on an upstream answer,
    `chat.requests` (dimension: the route) and the tokens in and out (dimension: the model); on an upstream
    failure, `chat.upstream_errors` (dimension: the code). Offline replies call no model and count nothing."""
    from metering.metrics import CHAT_REQUESTS, CHAT_TOKENS_IN, CHAT_TOKENS_OUT, CHAT_UPSTREAM_ERRORS
    from metering.services import Increment

    scope = {"tenant_id": prepared.agent.tenant_id, "agent_id": prepared.agent.id, "api_key_id": api_key_id}
    if reply is not None:
        if reply.responder != "llm":
            return []
        return [Increment(metric=CHAT_REQUESTS, dimension=route, **scope),
                Increment(metric=CHAT_TOKENS_IN, value=reply.usage.prompt_tokens, dimension=reply.model, **scope),
                Increment(metric=CHAT_TOKENS_OUT, value=reply.usage.completion_tokens, dimension=reply.model,
                          **scope)]
    if error_code in (ErrorCode.CHAT_002.value, ErrorCode.CHAT_003.value):
        return [Increment(metric=CHAT_UPSTREAM_ERRORS, dimension=error_code, **scope)]
    return []


def add_counters(increments: list) -> None:
    """Add `increments` to the usage counters in one upsert; a failure is logged, never raised (a counter
    never fails the chat it counts)."""
    if not increments:
        return
    from metering.services import counters_add

    try:
        counters_add(increments=increments)
    except Exception:  # noqa: BLE001
        logger.exception("Recording chat usage counters failed")


def count_usage(*, route: str, prepared, api_key_id: str | None, reply=None, error_code: str | None = None) -> None:
    """Add one chat call to the hourly usage counters (`usage_increments`)."""
    add_counters(usage_increments(route=route, prepared=prepared, api_key_id=api_key_id, reply=reply,
                                  error_code=error_code))
