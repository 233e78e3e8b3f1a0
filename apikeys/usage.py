"""Usage counting of agent keys (spec §1.15): write-behind through Redis, or the database directly.

**With Redis** (`CACHE_URL=redis://…`) a use is ONE Lua script run before the request answers
(`count_use`): take a unit of the key's per-minute window (refused when full), add 1 to the key's running
total `use:tot:<epoch>[key]`, raise `use:last:<epoch>[key]`, mark the key dirty, and add the hourly
dashboard counter. The database learns about it within `MAIMCONFIG_USAGE_FLUSH_SECONDS` (`flush_pending`,
run by the write-behind thread of every server worker, `core.background`, and once more when a worker
stops gracefully).

Why it never loses or double-counts: the Redis total of a key only grows, and the key's row remembers
which total it already includes (`usage_flushed`, in the Redis `usage_epoch`). A flush is one UPDATE per
key, `usage_count += total - usage_flushed, usage_flushed = total`, guarded by `usage_flushed < total`: if
the flusher dies before its commit nothing happened and the key is still dirty; if it dies after, the same
total applied again adds nothing. A key leaves the dirty set only when its total did not move during the
flush. Two flushers at once are harmless for the same reason (a lock only avoids duplicate work).

What the API and the admin show is `usage_count + (total - usage_flushed)`: the stored value plus the
pending one. That sum does not change when a flush moves counts, so it is exact whichever of Redis and
the database is read first (`attach_pending`, `display`). If Redis loses its data (no persistence), a new
epoch starts: uses counted in Redis and not yet flushed are lost, nothing is counted twice.

**Without Redis**, or while it is unreachable, a use is one atomic `UPDATE … usage_count = usage_count + k`
in the database before the request answers, combined per process: requests of one process counting the
same key while an UPDATE of that key is in flight are combined into the next one (`k` of them, "flat
combining"). Each request still waits for its own increment to be committed.

The hourly counters of the operators' dashboard (`metering`, `validation.accepted`/`.refused`) ride along:
in the same Lua script with Redis, in a process-local buffer without (flushed by the same thread; a worker
killed with `kill -9` loses at most one flush interval of dashboard counts, never a key's `usage_count`).
"""

import contextvars
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from django.db import connection, transaction
from django.utils import timezone

from apikeys import ratelimit, redisstate
from apikeys.keycache import Pending
from core import background

logger = logging.getLogger("maimconfig.usage")

_EPOCH0 = datetime(1970, 1, 1, tzinfo=UTC)
FLUSH_BATCH = 500
# The flush lock only avoids duplicate work (flushes are idempotent); a worker killed while holding it
# delays the next flush by at most this long. A normal flush holds it for milliseconds.
LOCK_SECONDS = 10

METER_ACCEPTED = "validation.accepted"
METER_REFUSED = "validation.refused"


def _us(value: datetime) -> int:
    delta = value - _EPOCH0
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _dt(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH0 + timedelta(microseconds=us)


def _hour(us: int) -> int:
    return us // 3_600_000_000 * 3600


def _text(value) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


# ARGV: prefix, key id, limit (-1: none), window key suffix, window ttl, now (µs), units, fresh epoch,
#       meter field (empty: none), use id, tenant id (the read cache's generations, `core.generations`).
# Returns {allowed 0/1, window count (-1: no limit), epoch, total, last (µs)}. The use id is remembered for
# USE_ID_SECONDS so that a use whose reply was lost can be recognised later (`reconcile_lost_replies`).
_USE = """
local p = ARGV[1]
local limit = tonumber(ARGV[3])
local units = tonumber(ARGV[7])
local count = -1
if limit >= 0 then
  local wkey = p .. 'rl:' .. ARGV[2] .. ':' .. ARGV[4]
  count = redis.call('INCRBY', wkey, units)
  if count == units then redis.call('EXPIRE', wkey, tonumber(ARGV[5])) end
  if count > limit then
    redis.call('DECRBY', wkey, units)
    return {0, count - units, false, false, false}
  end
end
redis.call('SET', p .. 'use:id:' .. ARGV[10], '1', 'EX', 120)  -- USE_ID_SECONDS
local epoch = redis.call('GET', p .. 'use:epoch')
if not epoch then
  redis.call('SET', p .. 'use:epoch', ARGV[8], 'NX')
  epoch = redis.call('GET', p .. 'use:epoch')
end
local total = redis.call('HINCRBY', p .. 'use:tot:' .. epoch, ARGV[2], units)
local lkey = p .. 'use:last:' .. epoch
local last = redis.call('HGET', lkey, ARGV[2])
if (not last) or tonumber(last) < tonumber(ARGV[6]) then
  redis.call('HSET', lkey, ARGV[2], ARGV[6])
  last = ARGV[6]
end
redis.call('SADD', p .. 'use:dirty', ARGV[2])
if ARGV[9] ~= '' then redis.call('HINCRBY', p .. 'meter:pending', ARGV[9], units) end
for _, g in ipairs({p .. 'rc:key:' .. string.lower(ARGV[2]), p .. 'rc:keys:' .. string.lower(ARGV[11])}) do
  if redis.call('EXISTS', g) == 1 then redis.call('INCR', g) end  -- the read cache (core.generations)
end
return {1, count, epoch, total, last}
"""

# ARGV: prefix, key ids… Returns {epoch, total1, last1, total2, last2, …}.
_READ = """
local p = ARGV[1]
local epoch = redis.call('GET', p .. 'use:epoch')
local out = {epoch}
for i = 2, #ARGV do
  if epoch then
    out[#out + 1] = redis.call('HGET', p .. 'use:tot:' .. epoch, ARGV[i])
    out[#out + 1] = redis.call('HGET', p .. 'use:last:' .. epoch, ARGV[i])
  else
    out[#out + 1] = false
    out[#out + 1] = false
  end
end
return out
"""

# ARGV: prefix, batch size. Returns {epoch, id1, total1, last1, …} of up to `batch size` dirty keys.
_SNAPSHOT = """
local p = ARGV[1]
local epoch = redis.call('GET', p .. 'use:epoch')
if not epoch then return {false} end
local ids = redis.call('SRANDMEMBER', p .. 'use:dirty', tonumber(ARGV[2]))
local out = {epoch}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', p .. 'use:tot:' .. epoch, id) or '0'
  out[#out + 1] = redis.call('HGET', p .. 'use:last:' .. epoch, id) or false
end
return out
"""

# After the commit. ARGV: prefix, epoch, then (id, total flushed, forget 0/1) triples. A key leaves the
# dirty set only if its total did not move meanwhile; `forget` (a deleted key) also drops its counters.
_SETTLE = """
local p = ARGV[1]
local epoch = ARGV[2]
local settled = 0
for i = 3, #ARGV, 3 do
  local id = ARGV[i]
  local current = redis.call('HGET', p .. 'use:tot:' .. epoch, id) or '0'
  if current == ARGV[i + 1] then
    redis.call('SREM', p .. 'use:dirty', id)
    if ARGV[i + 2] == '1' then
      redis.call('HDEL', p .. 'use:tot:' .. epoch, id)
      redis.call('HDEL', p .. 'use:last:' .. epoch, id)
    end
    settled = settled + 1
  end
end
return settled
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# Move the pending dashboard counters aside under a batch name (ARGV: prefix, batch id); returns 1 if moved.
_METER_TAKE = """
local p = ARGV[1]
if redis.call('EXISTS', p .. 'meter:pending') == 0 then return 0 end
redis.call('RENAME', p .. 'meter:pending', p .. 'meter:batch:' .. ARGV[2])
redis.call('SADD', p .. 'meter:batches', ARGV[2])
return 1
"""


@dataclass
class UseResult:
    """One counted (or refused) use. `rate` is None for an unlimited key (or a skipped limit)."""

    allowed: bool
    rate: "ratelimit.RateState | None"
    via_redis: bool
    pending: Pending | None = None
    last_used_at: datetime | None = None


def _meter_field(metric: str, hour: int, tenant_id: str, agent_id: str, key_id: str, dimension: str) -> str:
    return "|".join((str(hour), metric, tenant_id or "", agent_id or "", key_id or "", dimension or ""))


# Set by the fast lane (`activity.fastlane`) when it hands a request to Django after its script already
# took the request's window unit and counted its use (its database write failed): Django's count of that
# request returns this result instead of counting a second time. `(key id, UseResult)`; unset otherwise.
precounted_use: contextvars.ContextVar = contextvars.ContextVar("maimconfig_precounted_use", default=None)


def count_use(*, api_key_id: str, tenant_id: str, agent_id: str, limit: int | None, units: int = 1,
              now: datetime | None = None) -> UseResult:
    """Check 8 of spec §6.2 for `units` uses: the per-minute limit (all or nothing), then count them.

    Returns `allowed=False` (nothing counted) when the window is full. With Redis: one round trip, the
    database is written later (write-behind). Without Redis or while it is unreachable: the limit in the
    Django cache (or per `MAIMCONFIG_RATELIMIT_ON_CACHE_FAILURE`) and an atomic UPDATE now.
    """
    handed = precounted_use.get()
    if handed is not None and handed[0] == api_key_id and units == 1:
        precounted_use.set(None)  # once: this request's context only
        return handed[1]
    now = now or timezone.now()
    now_us = _us(now)
    ensure_flusher()

    def run(client):
        window, reset = ratelimit.window(now_us / 1_000_000)
        meter = _meter_field(METER_ACCEPTED, _hour(now_us), tenant_id, agent_id, api_key_id, "")
        raw = redisstate.script(client, _USE)(args=[
            redisstate.prefix(), api_key_id, -1 if limit is None else limit, window, reset + 5, now_us, units,
            secrets.token_hex(8), meter, use_id, tenant_id])
        allowed, count, epoch, total, last = raw
        rate = None
        if limit is not None:
            rate = ratelimit.RateState(limit=limit, count=min(limit, int(count)), reset_seconds=reset,
                                       allowed=bool(allowed))
        if not allowed:
            return UseResult(False, rate, True)
        pending = Pending(epoch=_text(epoch), total=int(total), last_used_us=int(last))
        return UseResult(True, rate, True, pending=pending, last_used_at=_dt(int(last)))

    use_id = secrets.token_hex(8)
    attempted = []

    def attempt(client):
        attempted.append(True)
        return run(client)

    def fallback():
        result = _count_in_database(api_key_id=api_key_id, tenant_id=tenant_id, agent_id=agent_id,
                                    limit=limit, units=units, now=now)
        if attempted and result.allowed:
            # The script was sent and failed: Redis may have run it and lost only its reply. The use is
            # counted in the database now; once Redis answers, a use it did run is taken back from the
            # database (never counted twice).
            with _lost_lock:
                _lost_replies.append((use_id, api_key_id, units))
        return result

    return redisstate.guarded("usage", attempt, fallback)


# Uses whose Redis script failed after it was sent (this process): (use id, key id or None, units).
USE_ID_SECONDS = 120
_lost_lock = threading.Lock()
_lost_replies: list[tuple[str, str, int]] = []


def reconcile_lost_replies(client) -> int:
    """Called by `apikeys.redisstate` when Redis answers again: for each use counted in the database
    after its script failed, ask Redis whether the script ran (its use id is still known for
    USE_ID_SECONDS); if it did, the use is in Redis's total too, so the database count is decreased by it.
    Returns the number of uses taken back. (A use id that has expired is assumed not to have run.)"""
    with _lost_lock:
        lost = list(_lost_replies)
        _lost_replies.clear()
    if not lost:
        return 0
    p = redisstate.prefix()
    pipe = client.pipeline(transaction=False)
    for use_id, _, _ in lost:
        pipe.get(p + "use:id:" + use_id)
    flags = pipe.execute()
    taken = 0
    for (_, key_id, units), flag in zip(lost, flags, strict=True):
        if flag is not None:
            # A use of the fast lane (apikeys.fastlane) does not know its key before its script answers:
            # it is recorded with key id None, and its script stores the key id as the use id's value.
            _take_back(key_id or _text(flag), units)
            taken += units
    if taken:
        logger.warning("%d use(s) counted in the database while Redis was unreachable had also reached "
                       "Redis (their replies were lost); taken back from the database.", taken)
    return taken


def _count_in_database(*, api_key_id, tenant_id, agent_id, limit, units, now) -> UseResult:
    rate = None
    if limit is not None:
        rate = ratelimit.consume(api_key_id, limit, units=units, now=now.timestamp())
        if rate is not None and not rate.allowed:
            return UseResult(False, rate, False)
    from apikeys.services import apikey_record_use

    apikey_record_use(api_key_id=api_key_id, uses=units, now=now)
    meter_add(METER_ACCEPTED, units, tenant_id=tenant_id, agent_id=agent_id, api_key_id=api_key_id, at=now)
    return UseResult(True, rate, False, last_used_at=now)


def _take_back(api_key_id: str, units: int) -> None:
    from apikeys.models import ApiKey

    q = connection.ops.quote_name
    count = q(ApiKey._meta.get_field("usage_count").column)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {q(ApiKey._meta.db_table)} SET {count} = {count} - %s "
                       f"WHERE {q(ApiKey._meta.pk.column)} = %s AND {count} >= %s", [units, api_key_id, units])


# --- what the API and the admin show: stored + pending ---------------------------------------------------

def _read_pending(key_ids: list[str]) -> dict[str, Pending]:
    if not key_ids or not redisstate.enabled():
        return {}

    def run(client):
        raw = redisstate.script(client, _READ)(args=[redisstate.prefix(), *key_ids])
        epoch = _text(raw[0])
        found = {}
        for i, key_id in enumerate(key_ids):
            total, last = raw[1 + 2 * i], raw[2 + 2 * i]
            if total is not None:
                found[key_id] = Pending(epoch=epoch, total=int(total),
                                        last_used_us=int(last) if last is not None else None)
        return found

    return redisstate.guarded("usage_read", run, dict)


def display(*, usage_count: int, usage_flushed: int, usage_epoch: str, last_used_at: datetime | None,
            pending: Pending | None) -> tuple[int, datetime | None]:
    """`(usage_count, last_used_at)` as shown: the stored values plus what is pending in Redis."""
    count = usage_count or 0
    if pending is None or pending.epoch is None:
        return count, last_used_at
    base = count - (usage_flushed or 0) if pending.epoch == usage_epoch else count
    shown_count = max(count, base + pending.total)
    pending_last = _dt(pending.last_used_us)
    if pending_last is not None and (last_used_at is None or pending_last > last_used_at):
        last_used_at = pending_last
    return shown_count, last_used_at


def attach_pending(keys) -> None:
    """Set `usage_count_shown`/`last_used_at_shown` on each key (model instances or records), with ONE
    Redis round trip for all of them (none without Redis)."""
    keys = [k for k in keys if not hasattr(k, "usage_count_shown")]
    if not keys:
        return
    pending = _read_pending([k.pk for k in keys])
    for key in keys:
        key.usage_count_shown, key.last_used_at_shown = display(
            usage_count=key.usage_count, usage_flushed=key.usage_flushed, usage_epoch=key.usage_epoch,
            last_used_at=key.last_used_at, pending=pending.get(key.pk))


def shown(api_key_id: str) -> tuple[int, datetime | None] | None:
    """The shown `(usage_count, last_used_at)` of one key from the database plus Redis (tests, bench)."""
    from apikeys.models import ApiKey

    key = ApiKey.objects.filter(pk=api_key_id).only(
        "usage_count", "usage_flushed", "usage_epoch", "last_used_at").first()
    if key is None:
        return None
    attach_pending([key])
    return key.usage_count_shown, key.last_used_at_shown


# --- write-behind: Redis -> database ---------------------------------------------------------------------

@cache
def _flush_sql(vendor: str) -> str:
    """One key's flush; `usage_count` is assigned first (MySQL evaluates SET left to right)."""
    from apikeys.models import ApiKey

    q = connection.ops.quote_name
    table = q(ApiKey._meta.db_table)
    count, flushed, epoch, last = (q(ApiKey._meta.get_field(n).column)
                                   for n in ("usage_count", "usage_flushed", "usage_epoch", "last_used_at"))
    return (
        f"UPDATE {table} SET "
        f"{count} = {count} + %s - (CASE WHEN {epoch} = %s THEN {flushed} ELSE 0 END), "
        f"{last} = (CASE WHEN {last} IS NULL OR {last} < %s THEN %s ELSE {last} END), "
        f"{flushed} = %s, {epoch} = %s "
        f"WHERE {q(ApiKey._meta.pk.column)} = %s AND NOT ({epoch} = %s AND {flushed} >= %s)"
    )


def flush_pending(*, batch: int = FLUSH_BATCH) -> int:
    """Move pending uses from Redis to the database (see the module docstring). Returns the number of
    keys settled. Safe to run anywhere at any time, concurrently too; a no-op without Redis."""
    if not redisstate.enabled():
        return 0
    token = secrets.token_hex(8)
    lock_name = redisstate.prefix() + "use:flushlock"

    def take(client):
        if not client.set(lock_name, token, nx=True, ex=LOCK_SECONDS):
            return None
        return redisstate.script(client, _SNAPSHOT)(args=[redisstate.prefix(), batch])

    snapshot = redisstate.guarded("usage_flush", take, lambda: None)
    if snapshot is None:
        return 0
    settled = 0
    try:
        epoch = _text(snapshot[0])
        items = []
        for i in range(1, len(snapshot), 3):
            key_id, total, last = _text(snapshot[i]), int(snapshot[i + 1]), snapshot[i + 2]
            items.append((key_id, total, _dt(int(last)) if last is not None else None))
        if epoch is None or not items:
            return 0
        missing = _apply(epoch, items)
        args = [redisstate.prefix(), epoch]
        for key_id, total, _ in items:
            args.extend((key_id, str(total), "1" if key_id in missing else "0"))
        settled = redisstate.guarded(
            "usage_flush", lambda client: int(redisstate.script(client, _SETTLE)(args=args)), lambda: 0)
    finally:
        redisstate.guarded("usage_flush",
                           lambda client: redisstate.script(client, _RELEASE)(keys=[lock_name], args=[token]),
                           lambda: None)
    return settled


def _apply(epoch: str, items: list[tuple[str, int, datetime | None]]) -> set[str]:
    """One transaction for the whole batch; returns the ids of keys that no longer exist."""
    from apikeys.models import ApiKey

    adapt = connection.ops.adapt_datetimefield_value
    sql = _flush_sql(connection.vendor)
    untouched = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            for key_id, total, last in sorted(items):  # one lock order for concurrent flushers
                last_db = adapt(last) if last is not None else None
                cursor.execute(sql, [total, epoch, last_db, last_db, total, epoch, key_id, epoch, total])
                if cursor.rowcount == 0:
                    untouched.append(key_id)
    if not untouched:
        return set()
    existing = set(ApiKey.objects.filter(pk__in=untouched).values_list("pk", flat=True))
    return set(untouched) - existing


# --- dashboard counters (metering) -----------------------------------------------------------------------

_meter_lock = threading.Lock()
_meter_buffer: dict[tuple, int] = {}


def meter_add(metric: str, units: int = 1, *, tenant_id: str | None = None, agent_id: str | None = None,
              api_key_id: str | None = None, dimension: str = "", at: datetime | None = None) -> None:
    """Add to the hourly dashboard counter; written by the flusher, never on the request's path."""
    at = at or timezone.now()
    hour = _hour(_us(at))
    if redisstate.enabled():
        field = _meter_field(metric, hour, tenant_id or "", agent_id or "", api_key_id or "", dimension)

        def run(client):
            client.hincrby(redisstate.prefix() + "meter:pending", field, units)
            return True

        if redisstate.guarded("meter", run, lambda: False):
            return
    with _meter_lock:
        key = (hour, metric, tenant_id or "", agent_id or "", api_key_id or "", dimension or "")
        _meter_buffer[key] = _meter_buffer.get(key, 0) + units


def meter_refusal(code: str, key=None) -> None:
    """A refused verification for the dashboard (`key`: the KeyRecord when the key was found)."""
    meter_add(METER_REFUSED, tenant_id=getattr(key, "tenant_id", None), agent_id=getattr(key, "agent_id", None),
              api_key_id=getattr(key, "pk", None), dimension=code)


def flush_meter() -> int:
    """Write the dashboard counters (process buffer, then Redis batches). Returns counters written."""
    from metering.services import Increment, counters_add

    with _meter_lock:
        buffered = dict(_meter_buffer)
        _meter_buffer.clear()
    increments = [Increment(metric=metric, value=value, at=_EPOCH0 + timedelta(seconds=hour), tenant_id=tenant,
                            agent_id=agent, api_key_id=key_id, dimension=dimension)
                  for (hour, metric, tenant, agent, key_id, dimension), value in buffered.items()]
    written = 0
    try:
        if increments:
            written += counters_add(increments=increments)
    except Exception:
        with _meter_lock:  # keep them for the next flush
            for key, value in buffered.items():
                _meter_buffer[key] = _meter_buffer.get(key, 0) + value
        raise
    if redisstate.enabled():
        written += _flush_meter_redis()
    return written


def _flush_meter_redis() -> int:
    """Dashboard counters pending in Redis: renamed to a batch, written, then deleted. A batch left by a
    flusher that died is written by the next one (at least once: a crash between the commit and the delete
    may count that batch twice on the dashboard; key usage counts are unaffected)."""
    from metering.services import Increment, counters_add

    p = redisstate.prefix()
    batch_id = secrets.token_hex(8)
    batches = redisstate.guarded(
        "meter_flush",
        lambda client: (redisstate.script(client, _METER_TAKE)(args=[p, batch_id]),
                        [_text(b) for b in client.smembers(p + "meter:batches")])[1],
        lambda: [])
    written = 0
    for batch in batches:
        fields = redisstate.guarded("meter_flush", lambda client, b=batch: client.hgetall(p + "meter:batch:" + b),
                                    lambda: None)
        if fields is None:
            break
        increments = []
        for field, value in fields.items():
            hour, metric, tenant, agent, key_id, dimension = _text(field).split("|", 5)
            increments.append(Increment(metric=metric, value=int(value),
                                        at=_EPOCH0 + timedelta(seconds=int(hour)), tenant_id=tenant,
                                        agent_id=agent, api_key_id=key_id, dimension=dimension))
        if increments:
            written += counters_add(increments=increments)

        def done(client, b=batch):
            pipe = client.pipeline()
            pipe.delete(p + "meter:batch:" + b)
            pipe.srem(p + "meter:batches", b)
            pipe.execute()

        redisstate.guarded("meter_flush", done, lambda: None)
    return written


# --- the write-behind round of a server worker (core.background) ----------------------------------------

def flush_all() -> None:
    """One flush of everything pending (uses, then dashboard counters); errors are logged, not raised.
    The worker's write-behind thread runs it every `MAIMCONFIG_USAGE_FLUSH_SECONDS` and when the worker
    stops (registered by `ApikeysConfig.ready()` with `core.background`)."""
    try:
        while flush_pending() >= FLUSH_BATCH:
            pass
    except Exception:
        logger.exception("Writing pending key uses to the database failed; they stay pending in Redis.")
    try:
        flush_meter()
    except Exception:
        logger.exception("Writing the dashboard usage counters failed; they are kept for the next flush.")


def ensure_flusher() -> None:
    """Cheap check on the counting path: a serving process whose write-behind thread did not survive a fork
    starts it (`core.background.ensure_running`)."""
    background.ensure_running()


# --- database path: per-process flat combining of the UPDATE ---------------------------------------------

_cond = threading.Condition()
_states: dict[str, "_KeyState"] = {}


class _Batch:
    __slots__ = ("count", "last_used_at", "done", "error")

    def __init__(self):
        self.count = 0
        self.last_used_at: datetime | None = None
        self.done = False
        self.error: BaseException | None = None


class _KeyState:
    __slots__ = ("batch", "flushing")

    def __init__(self):
        self.batch: _Batch | None = None
        self.flushing = False


class UsageWriteFailed(Exception):
    """The combined UPDATE that carried this request's use failed (each waiting request gets its own)."""


def record_use_combined(api_key_id: str, now: datetime, write) -> None:
    """Count one use of `api_key_id`; `write(api_key_id, k, last_used_at)` runs the UPDATE (+k)."""
    with _cond:
        state = _states.get(api_key_id)
        if state is None:
            state = _states[api_key_id] = _KeyState()
        if state.batch is None:
            state.batch = _Batch()
        batch = state.batch
        batch.count += 1
        if batch.last_used_at is None or now > batch.last_used_at:
            batch.last_used_at = now
        while not batch.done:
            if not state.flushing and state.batch is batch:
                state.flushing = True
                state.batch = None
                break
            _cond.wait()
        else:
            if batch.error is not None:
                # A fresh exception per waiting request (issue 15 item 5): re-raising the one shared object
                # from several threads would mix their tracebacks.
                raise _copy_error(batch.error) from batch.error
            return
    # This thread flushes the batch (its own use and those combined into it).
    error = None
    try:
        write(api_key_id, batch.count, batch.last_used_at)
    except BaseException as exc:  # noqa: BLE001 - handed to every request of the batch
        error = exc
    with _cond:
        batch.error = error
        batch.done = True
        state.flushing = False
        if state.batch is None:
            _states.pop(api_key_id, None)
        _cond.notify_all()
    if error is not None:
        raise error


def _copy_error(error: BaseException) -> BaseException:
    """A new exception of the same type and arguments (so the exception handler classifies it the same
    way, e.g. an unreachable database stays a 503), with no traceback of the thread that raised it."""
    try:
        return type(error)(*error.args)
    except Exception:  # noqa: BLE001 - a type that cannot be rebuilt from its args
        return UsageWriteFailed(str(error))
