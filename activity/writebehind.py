"""Usage-log entries written behind through Redis (spec §1.15, §9.2; issue 11): ids, queue, flusher.

The fast lane (`activity.usagelog_fastlane`) answers `POST /api/v1/usage/log` and `POST /api/v2/usage-logs`
from ONE Redis round trip: the key script of `apikeys.fastlane` verifies the key, counts the use AND
queues the entry (`run_key_script(log_entry=…)`). This module owns the rest:

**Ids.** The answer shows the entry's `id`, so it is chosen when the entry is accepted, by the script, from
blocks of ids reserved in the table's own auto-increment sequence (`reserve_ids`): two throw-away rows, the
first taking the next auto-increment value `v`, the second inserted with the explicit id
`v + ID_SLACK + ID_BLOCK + 1`, which moves the table's counter past the block `[v + ID_SLACK + 1,
v + ID_SLACK + ID_BLOCK]`; both are deleted in the same transaction. The counter never moves back (InnoDB
keeps it across restarts since MariaDB 10.2.4 / MySQL 8; SQLite's AUTOINCREMENT table keeps it in
`sqlite_sequence`), so the Django path's own INSERTs (operators, declined requests, a Redis outage) can never
take a reserved id; `ID_SLACK` leaves room for INSERTs that took a value in the instant between the two rows.
Reservations are serialised by a Redis lock, so two workers never reserve the same block. Blocks wait in
Redis (`ul:blocks`, the current one in `ul:ids`); the flusher keeps at least `ID_LOW_WATER` ids in reserve.
With none left the script answers 'noids' and the fast lane declines (Django inserts the entry itself).

**Queue and flush.** Accepted entries are appended to the Redis stream `ul:stream` (fields `i` id, `k` key
id, `e` the entry as JSON). `flush` reads the stream's head, inserts the batch in one transaction with
`INSERT … IGNORE` semantics on the primary key (`bulk_create(ignore_conflicts=True)`), and only after the
commit deletes those stream entries. So an entry leaves Redis only once it is stored; a flusher that dies
before its commit leaves the batch in the stream for the next one; a batch flushed twice (the flusher died
between the commit and the delete, or two flushers raced) is stored once, the second insert of an id
being ignored. Every worker flushes from its write-behind thread (`core.background`: `flush_once` every
`MAIMCONFIG_USAGE_FLUSH_SECONDS`, `flush_at_stop` when it stops), under a Redis lock that only avoids
duplicate work.

**Deleted owners.** An entry whose tenant was deleted while it was pending is dropped, and one whose agent
was deleted is stored with `agent_id = null`: exactly what the cascade (`CASCADE`, `SET_NULL`) would have
done had the entry been stored before the deletion. Deletions therefore need no flush.

**Reads.** `GET /api/v2/usage-logs`, its summary and the admin list call `flush_before_read()` first: every
entry accepted before the read began is stored when the read runs (entries another flusher is storing at
that moment are inserted again, harmlessly). While Redis is unreachable the pending entries wait there and
reads show what is stored.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache

from django.db import IntegrityError, OperationalError, transaction

from apikeys import redisstate

logger = logging.getLogger("maimconfig.usagelog")

ID_BLOCK = 100_000
ID_SLACK = 1_000
ID_LOW_WATER = 50_000
FLUSH_BATCH = 500
LOCK_MS = 30_000
RESERVATION_ACTION = "~id-reservation"  # the throw-away rows' action (never seen: deleted in their transaction)

_EPOCH0 = datetime(1970, 1, 1, tzinfo=UTC)


def _k(name: str) -> str:
    return redisstate.prefix() + name


def _us(value: datetime) -> int:
    delta = value - _EPOCH0
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _dt(us: int) -> datetime:
    return _EPOCH0 + timedelta(microseconds=us)


# --- the queued form of an entry -------------------------------------------------------------------------

def encode(*, tenant_id, agent_id, user_id, action, details, timestamp: datetime, request_id: str,
           created_at: datetime) -> str:
    """The entry as the script queues it (the id and the key id are added by the script)."""
    # json.dumps' defaults: its shared encoder (any other option builds a new encoder per call).
    return json.dumps([tenant_id, agent_id, user_id, action, details, _us(timestamp), request_id, _us(created_at)])


def _decode(fields: dict) -> dict:
    tenant_id, agent_id, user_id, action, details, ts, request_id, created = json.loads(fields[b"e"])
    return {"id": int(fields[b"i"]), "api_key_id": fields[b"k"].decode(), "tenant_id": tenant_id,
            "agent_id": agent_id, "user_id": user_id, "action": action, "details": details,
            "timestamp": _dt(ts), "request_id": request_id, "created_at": _dt(created)}


# --- id blocks -------------------------------------------------------------------------------------------

def ids_left(client) -> int:
    """Ids still reserved in Redis (current block + queued blocks)."""
    pipe = client.pipeline(transaction=False)
    pipe.hmget(_k("ul:ids"), "next", "hi")
    pipe.lrange(_k("ul:blocks"), 0, -1)
    (nxt, hi), blocks = pipe.execute()
    left = 0
    if nxt is not None and hi is not None:
        left = max(0, int(hi) - int(nxt) + 1)
    for block in blocks:
        lo, _, top = block.decode().partition("-")
        left += int(top) - int(lo) + 1
    return left


def _reserve_in_database() -> tuple[int, int]:
    """One block of ids no INSERT of the database will ever take (module docstring)."""
    from activity.models import UsageLog

    now = datetime.now(UTC)
    with transaction.atomic():
        first = UsageLog(action=RESERVATION_ACTION, timestamp=now, created_at=now)
        first.save(force_insert=True)
        top = first.pk + ID_SLACK + ID_BLOCK + 1
        UsageLog(pk=top, action=RESERVATION_ACTION, timestamp=now, created_at=now).save(force_insert=True)
        UsageLog.objects.filter(pk__in=(first.pk, top)).delete()
    return first.pk + ID_SLACK + 1, top - 1


def reserve_ids(*, low_water: int = ID_LOW_WATER) -> int:
    """Top up the ids in Redis to at least `low_water` (one block at a time). Returns blocks reserved."""
    client = redisstate.client()
    if client is None:
        return 0
    token = secrets.token_hex(8)
    lock = _k("ul:idlock")
    reserved = 0
    if ids_left(client) >= low_water or not client.set(lock, token, nx=True, px=LOCK_MS):
        return 0
    try:
        while ids_left(client) < low_water:
            lo, hi = _reserve_in_database()
            client.rpush(_k("ul:blocks"), f"{lo}-{hi}")
            reserved += 1
    finally:
        if client.get(lock) == token.encode():
            client.delete(lock)
    return reserved


# --- flush -----------------------------------------------------------------------------------------------

def pending_count() -> int:
    """Entries queued in Redis and not stored yet (0 without Redis or while it is unreachable)."""
    return redisstate.guarded("usage_log", lambda client: int(client.xlen(_k("ul:stream"))), lambda: 0)


_FIELDS = ("id", "tenant", "agent", "api_key_id", "user_id", "action", "details", "timestamp", "request_id",
           "created_at")


@cache
def _insert_sql(vendor: str) -> str:
    """One row's INSERT that skips a row whose id is stored already (`INSERT IGNORE` / `INSERT OR IGNORE`;
    the driver sends a batch as one multi-row statement)."""
    from django.db import connection
    from django.db.models.constants import OnConflict

    from activity.models import UsageLog

    q = connection.ops.quote_name
    meta = UsageLog._meta
    columns = ", ".join(q(meta.get_field(name).column) for name in _FIELDS)
    head = connection.ops.insert_statement(on_conflict=OnConflict.IGNORE)
    tail = connection.ops.on_conflict_suffix_sql([meta.pk], OnConflict.IGNORE, None, None)
    return f"{head} {q(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(_FIELDS))}) {tail}".rstrip()


def _store(entries: list[dict]) -> int:
    """Insert the entries in one transaction, each id once; owners deleted meanwhile as the cascade would.
    Plain parameters and one `executemany` (model instances and the ORM's compiler cost more CPU than the
    insert itself at a few thousand entries a second)."""
    from django.db import connection

    from agents.models import Agent
    from tenants.models import Tenant

    sql = _insert_sql(connection.vendor)
    adapt = connection.ops.adapt_datetimefield_value
    for attempt in range(3):
        try:
            with transaction.atomic():
                tenants = set(Tenant.objects.filter(pk__in={e["tenant_id"] for e in entries})
                              .values_list("pk", flat=True))
                agents = set(Agent.objects.filter(pk__in={e["agent_id"] for e in entries if e["agent_id"]})
                             .values_list("pk", flat=True))
                rows = []
                for entry in sorted(entries, key=lambda e: e["id"]):  # one lock order for concurrent flushers
                    if entry["tenant_id"] not in tenants:
                        continue  # its tenant is gone: the cascade would have deleted it
                    details = entry["details"]
                    rows.append((
                        entry["id"], entry["tenant_id"],
                        entry["agent_id"] if entry["agent_id"] in agents else None,  # its agent is gone: SET_NULL
                        entry["api_key_id"], entry["user_id"], entry["action"],
                        None if details is None else json.dumps(details),  # as JSONField stores it
                        adapt(entry["timestamp"]), entry["request_id"], adapt(entry["created_at"])))
                if rows:
                    with connection.cursor() as cursor:
                        cursor.executemany(sql, rows)
            return len(rows)
        except (IntegrityError, OperationalError):
            # An owner deleted between the check and the insert, or a deadlock with another flusher: again.
            if attempt == 2:
                raise
    return 0  # pragma: no cover


def _after_commit(client, stream: str, stream_ids: list[bytes]) -> None:
    """Drop stored entries from the queue once their insert is committed (at once outside a transaction;
    inside one, e.g. a request's, when it commits: a rollback leaves them queued)."""
    from django.db import connection

    if connection.in_atomic_block:
        transaction.on_commit(lambda: redisstate.guarded("usage_log", lambda c: c.xdel(stream, *stream_ids),
                                                         lambda: None))
    else:
        client.xdel(stream, *stream_ids)


def flush(*, locked: bool = True, until: bytes | None = None) -> int:
    """Store queued entries (module docstring). `locked`: skip when another flusher holds the lock.
    `until`: stop after this stream id. Returns the number of entries handled. Raises on database errors
    (the entries stay queued); a Redis error opens the breaker and returns what was done."""
    client = redisstate.client()
    if client is None or not redisstate.breaker.available():
        return 0
    stream = _k("ul:stream")
    token = secrets.token_hex(8)
    lock = _k("ul:flushlock")
    handled = 0
    try:
        if locked and not client.set(lock, token, nx=True, px=LOCK_MS):
            return 0
        try:
            start = "-"
            while True:
                batch = client.xrange(stream, min=start, max=until or "+", count=FLUSH_BATCH)
                if not batch:
                    break
                _store([_decode(fields) for _, fields in batch])
                _after_commit(client, stream, [stream_id for stream_id, _ in batch])
                handled += len(batch)
                if len(batch) < FLUSH_BATCH:
                    break
                start = "(" + batch[-1][0].decode()
        finally:
            if locked and client.get(lock) == token.encode():
                client.delete(lock)
    except redisstate._redis_errors() as exc:
        redisstate.breaker.failure(exc, "usage_log")
    return handled


def flush_before_read() -> None:
    """Store every entry accepted so far before a read of the usage log (module docstring)."""
    client = redisstate.client()
    if client is None or not redisstate.breaker.available():
        return
    try:
        last = client.xrevrange(_k("ul:stream"), count=1)
    except redisstate._redis_errors() as exc:
        redisstate.breaker.failure(exc, "usage_log")
        return
    if last:
        flush(locked=False, until=last[0][0])


# --- the write-behind round of a server worker (core.background) ----------------------------------------

def flush_once() -> None:
    """One round: store what is queued, then keep the id reserve topped up. Run by the worker's write-behind
    thread every `MAIMCONFIG_USAGE_FLUSH_SECONDS`, and once at worker start-up, before it serves, so the
    worker has ids (`activity.usagelog_fastlane.register`)."""
    try:
        flush()
    except Exception:
        logger.exception("Writing queued usage-log entries failed; they stay queued in Redis.")
    try:
        if redisstate.breaker.available():
            reserve_ids()
    except Exception:
        logger.exception("Reserving usage-log ids failed; the fast lane declines when none are left.")


def flush_at_stop() -> None:
    """The last round of a stopping worker: store what is queued (no new ids: nothing will use them)."""
    try:
        flush()
    except Exception:
        logger.exception("Writing queued usage-log entries at shutdown failed; they stay queued in Redis.")
