"""The group commit of a worker's chat writes (`chat.writes`, issue 10): the writes submitted on one event loop
are written by one burst at a time, in batches (every turn of a batch in one transaction, the counters of
the batch in one upsert); a failing batch is written again one write at a time, so a failure fails only
its own write; every write's `release` runs once, after its batch. SQLite and MariaDB; no Redis needed."""

import asyncio
import collections
import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from chat import services, writes
from chat.llm import Usage
from chat.models import ChatConversation, ChatMessage
from chat.services import Reply
from chat.tests.conftest import key_for
from metering.models import UsageCounter

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def prepared(llm_agent):
    return services.chat_prepare(agent=llm_agent)


@pytest.fixture
def key(llm_agent):
    return key_for(llm_agent)


@pytest.fixture
def batches(monkeypatch):
    """The length of every batch `chat.writes` hands to its burst, in order."""
    seen: list[int] = []
    real = writes.write_batch

    def spy(batch):
        seen.append(len(batch))
        return real(batch)

    monkeypatch.setattr(writes, "write_batch", spy)
    return seen


class Releases:
    """`release` callbacks: how often each ran, and the messages stored when it ran (its burst's thread)."""

    def __init__(self):
        self.calls: collections.Counter = collections.Counter()
        self.stored_then: dict[str, int] = {}
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, name: str):
        def release():
            with self._lock:
                self.calls[name] += 1
                self.stored_then[name] = ChatMessage.objects.count()
                self.threads.add(threading.current_thread().name)

        return release


def _reply(text: str, *, prompt: int = 11, completion: int = 7) -> Reply:
    return Reply(text, "fake-1", "llm", "stop", Usage(prompt, completion, prompt + completion, False), 5)


def _turn(prepared, key, message: str, *, conversation_id: str | None = None, fresh: bool = True,
          prompt: int = 11, completion: int = 7, at=None) -> dict:
    """The arguments of `chat_turn_store` for one answered turn."""
    return {"agent": prepared.agent, "api_key_id": key.id,
            "conversation_id": conversation_id or services.new_conversation_id(), "user_id": "user-1",
            "message": message, "reply": _reply(f"re: {message}", prompt=prompt, completion=completion),
            "request_id": f"req-{message}", "received_at": at or timezone.now(), "route": "chat",
            "prepared": prepared, "fresh": fresh}


def _counter(metric: str, *, dimension: str | None = None) -> int:
    rows = UsageCounter.objects.filter(metric=metric, span="h")
    if dimension is not None:
        rows = rows.filter(dimension=dimension)
    return sum(rows.values_list("value", flat=True))


def _gather(*calls):
    async def run():
        return await asyncio.gather(*(call() for call in calls), return_exceptions=True)

    return asyncio.run(run())


def _store(release, **turn):
    return lambda: writes.store_turn(release=release, **turn)


def _count(release, **usage):
    return lambda: writes.count(release=release, **usage)


def _assert_rows(result, turn):
    """The caller's own (user message, reply) as returned, and as stored."""
    user, assistant = result
    assert (user.role, user.content, user.user_id, user.api_key_id) == ("user", turn["message"], "user-1",
                                                                        turn["api_key_id"])
    assert (assistant.role, assistant.content, assistant.reply_to_id) == ("assistant", turn["reply"].content,
                                                                          user.id)
    assert user.created_at == turn["received_at"] and assistant.created_at > user.created_at
    assert user.conversation.conversation_id == assistant.conversation.conversation_id == turn["conversation_id"]
    assert (assistant.prompt_tokens, assistant.completion_tokens) == (turn["reply"].usage.prompt_tokens,
                                                                      turn["reply"].usage.completion_tokens)
    for row in (user, assistant):
        found = ChatMessage.objects.get(pk=row.pk)
        assert (found.content, found.conversation.conversation_id, found.created_at) == (
            row.content, turn["conversation_id"], row.created_at)
        assert found.request_id == turn["request_id"]


def test_writes_of_one_tick_are_written_in_one_burst(prepared, key, batches):
    releases = Releases()
    turns = [_turn(prepared, key, f"message {i}", prompt=10 + i, completion=1 + i) for i in range(3)]
    openai_reply = _reply("a completion", prompt=100, completion=50)
    results = _gather(*(_store(releases(f"t{i}"), **turn) for i, turn in enumerate(turns)),
                      _count(releases("count"), route="openai", prepared=prepared, api_key_id=key.id,
                             reply=openai_reply))
    assert batches == [4]  # one burst for the four writes
    assert results[3] is None
    for result, turn in zip(results[:3], turns):
        _assert_rows(result, turn)
    ids = {row.id for result in results[:3] for row in result}
    assert len(ids) == 6
    assert ChatMessage.objects.count() == 6
    assert ChatConversation.objects.filter(conversation_id__in=[t["conversation_id"] for t in turns]).count() == 3
    # The counters of the whole batch: three chat turns and one /v1 call.
    assert _counter("chat.requests", dimension="chat") == 3
    assert _counter("chat.requests", dimension="openai") == 1
    assert _counter("chat.tokens_in") == 10 + 11 + 12 + 100
    assert _counter("chat.tokens_out") == 1 + 2 + 3 + 50
    assert UsageCounter.objects.filter(metric="chat.requests", span="h", api_key_id=key.id,
                                       agent_id=prepared.agent.id, tenant_id=prepared.agent.tenant_id).exists()
    # Each release once, after its batch was written, in the burst's thread (not on the event loop).
    assert releases.calls == {"t0": 1, "t1": 1, "t2": 1, "count": 1}
    assert set(releases.stored_then.values()) == {6}
    assert releases.threads and all(name.startswith("chat-db") for name in releases.threads)


def test_a_batch_is_at_most_batch_max_writes(prepared, key, batches, monkeypatch):
    monkeypatch.setattr(writes, "BATCH_MAX", 2)
    releases = Releases()
    turns = [_turn(prepared, key, f"m{i}") for i in range(5)]
    results = _gather(*(_store(releases(f"t{i}"), **turn) for i, turn in enumerate(turns)))
    assert batches == [2, 2, 1]
    for result, turn in zip(results, turns):
        _assert_rows(result, turn)
    assert ChatMessage.objects.count() == 10
    assert releases.calls == {f"t{i}": 1 for i in range(5)}
    assert _counter("chat.requests") == 5


def test_turns_of_one_conversation_in_one_batch(prepared, key, batches):
    """Two turns of the same (given, not yet stored) conversation in one transaction: one conversation row,
    both turns, and the history of the next turn in order."""
    start = timezone.now()
    first = _turn(prepared, key, "first", conversation_id="conv_same", fresh=False, at=start)
    second = _turn(prepared, key, "second", conversation_id="conv_same", fresh=False,
                   at=start + timedelta(milliseconds=5))
    results = _gather(_store(None, **first), _store(None, **second))
    assert batches == [2]
    _assert_rows(results[0], first)
    _assert_rows(results[1], second)
    conversations = ChatConversation.objects.filter(conversation_id="conv_same")
    assert conversations.count() == 1
    assert conversations.get().last_message_at == max(results[0][1].created_at, results[1][1].created_at)
    messages = services.prompt_messages(prepared, conversation_id="conv_same", message="third")
    assert [(m["role"], m["content"]) for m in messages[1:]] == [
        ("user", "first"), ("assistant", "re: first"), ("user", "second"), ("assistant", "re: second"),
        ("user", "third")]


def test_a_failing_write_fails_alone(prepared, key, batches, caplog):
    """A turn whose new conversation already exists (a `fresh` id stored twice) fails the batch's
    transaction: the batch is written again one write at a time, the others are stored, the failing caller
    gets its own exception, every release runs once."""
    taken = _turn(prepared, key, "taken", conversation_id="conv_taken")
    _gather(_store(None, **taken))
    assert batches == [1]
    releases = Releases()
    before = _turn(prepared, key, "before")
    duplicate = _turn(prepared, key, "duplicate", conversation_id="conv_taken", fresh=True)
    after = _turn(prepared, key, "after")
    results = _gather(_store(releases("before"), **before), _store(releases("duplicate"), **duplicate),
                      _count(releases("count"), route="openai", prepared=prepared, api_key_id=key.id,
                             reply=_reply("x", prompt=100, completion=50)),
                      _store(releases("after"), **after))
    assert batches == [1, 4]
    assert isinstance(results[1], IntegrityError)
    _assert_rows(results[0], before)
    assert results[2] is None
    _assert_rows(results[3], after)
    assert not ChatMessage.objects.filter(content__in=["duplicate", "re: duplicate"]).exists()
    assert ChatMessage.objects.filter(conversation__conversation_id="conv_taken").count() == 2  # its own turn only
    assert ChatMessage.objects.count() == 6  # taken, before, after
    assert releases.calls == {"before": 1, "duplicate": 1, "count": 1, "after": 1}
    assert set(releases.stored_then.values()) == {6}
    # Counted once each: taken, before, after and the /v1 call; nothing for the failed turn.
    assert _counter("chat.requests", dimension="chat") == 3
    assert _counter("chat.requests", dimension="openai") == 1
    assert _counter("chat.tokens_in") == 3 * 11 + 100
    assert "writing them one at a time" in caplog.text


def test_a_batch_failing_once_is_written_one_at_a_time(prepared, key, batches, monkeypatch):
    real = writes.store_turns
    failures = []

    def store_turns_failing_once(turns):
        if not failures:
            failures.append(len(turns))
            raise RuntimeError("the batch's transaction failed")
        return real(turns)

    monkeypatch.setattr(writes, "store_turns", store_turns_failing_once)
    releases = Releases()
    turns = [_turn(prepared, key, f"m{i}") for i in range(3)]
    results = _gather(*(_store(releases(f"t{i}"), **turn) for i, turn in enumerate(turns)))
    assert failures == [3] and batches == [3]
    for result, turn in zip(results, turns):
        _assert_rows(result, turn)
    assert ChatMessage.objects.count() == 6
    assert releases.calls == {"t0": 1, "t1": 1, "t2": 1}
    assert _counter("chat.requests") == 3  # not counted twice
    assert _counter("chat.tokens_out") == 3 * 7


def test_a_failing_burst_fails_every_write_of_its_batch_and_the_writer_goes_on(prepared, key, monkeypatch):
    real = writes.write_batch
    calls = []

    def broken(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("the executor failed")
        return real(batch)

    monkeypatch.setattr(writes, "write_batch", broken)
    turns = [_turn(prepared, key, f"m{i}") for i in range(3)]

    async def run():
        first = await asyncio.gather(*(writes.store_turn(**turn) for turn in turns[:2]), return_exceptions=True)
        second = await writes.store_turn(**turns[2])  # the same loop's writer, after the failed burst
        return first, second

    first, second = asyncio.run(run())
    assert calls == [2, 1]
    assert all(isinstance(result, RuntimeError) for result in first)
    _assert_rows(second, turns[2])
    assert ChatMessage.objects.count() == 2


def test_a_cancelled_callers_turn_is_written_all_the_same(prepared, key):
    releases = Releases()
    gone, stays = _turn(prepared, key, "gone"), _turn(prepared, key, "stays")

    async def run():
        leaving = asyncio.ensure_future(writes.store_turn(release=releases("gone"), **gone))
        staying = asyncio.ensure_future(writes.store_turn(release=releases("stays"), **stays))
        await asyncio.sleep(0)  # both submitted to the writer
        leaving.cancel()
        result = await staying
        with pytest.raises(asyncio.CancelledError):
            await leaving
        return result

    _assert_rows(asyncio.run(run()), stays)
    assert ChatMessage.objects.filter(content="gone").count() == 1
    assert releases.calls == {"gone": 1, "stays": 1}
    assert _counter("chat.requests") == 2
