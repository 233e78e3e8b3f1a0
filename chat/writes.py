"""Group commit of a worker's chat writes (issue 10: the CPU of the answers in a chat storm).

Every answered chat ends with a database write: the turn's rows (`chat.services.chat_turn_store`: the
conversation, both messages, in one transaction) and its usage counters (`count_usage`); a `/v1` call
writes only the counters. Written one request at a time, each is a burst of its own in the chat lane's
executor: a transaction, three or four statements, and as many round trips and GIL hand-overs between the
executor's thread and the event loop. When hundreds of answers arrive together (a storm's upstream calls
end together), those bursts are most of the worker's CPU, and the loop's other work (the bot routes)
waits for the GIL behind them.

Here a worker's writes queue on its event loop and are written by one burst at a time, in batches of at
most `BATCH_MAX`: every turn of the batch in ONE transaction (each new conversation's row, then all the
messages in one INSERT), then the counters of the whole batch in one upsert. A request still awaits its
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
from typing import Any, Callable

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
    """`chat.services.chat_turn_store(**turn)` in the worker's next batch; returns its (user message,
    assistant message). `release` runs in that burst, after the batch."""
    return await _writer().submit(_Write(turn, None, release))


async def count(*, release: Callable[[], None] | None = None, **usage: Any) -> None:
    """`chat.services.count_usage(**usage)` in the worker's next batch (a `/v1` call, a failure)."""
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
    from chat import services

    try:
        if write.turn is not None:
            return services.chat_turn_store(**write.turn)
        services.count_usage(**write.usage)
        return None
    except Exception as exc:  # noqa: BLE001 - handed to its request
        return exc


def _write_together(batch: list[_Write]) -> list[Any]:
    from django.db import transaction

    from chat import services

    turns = [write.turn for write in batch if write.turn is not None]
    stored: list = []
    if turns:
        with services.db_turn():
            with transaction.atomic():
                stored = services.store_turns(turns)
    increments = []
    rows = iter(stored)
    results = []
    for write in batch:
        if write.turn is not None:
            results.append(next(rows))
            turn = write.turn
            if turn.get("route") is not None and turn.get("prepared") is not None:
                increments += services.usage_increments(route=turn["route"], prepared=turn["prepared"],
                                                        api_key_id=turn["api_key_id"], reply=turn["reply"])
        else:
            results.append(None)
            increments += services.usage_increments(**write.usage)
    services.add_counters(increments)
    return results
