"""The key-state cache in Redis (spec §1.15): verification without a database query on a warm key.

Only with `CACHE_URL=redis://…`. With the embedded local-memory cache key state is always read from the
database: a process-local cache of key state is not allowed, because revocation must reach every worker
and every instance on the very next request.

Layout (raw Redis keys under `apikeys.redisstate.prefix()`):

* `ks:<sha256 of the presented key>` = `<key id>|<json>`: the `KeyRecord` (key row + tenant and agent
  status, hashes only, never a secret), whether the digest is the previous secret, and the two
  generations read BEFORE the database read that produced it. Expires after `ENTRY_TTL_SECONDS`.
* `gen:t:<tenant id>`: the tenant's generation. Every event that can revoke a key of the tenant bumps it
  AFTER its transaction commits (`bump_tenant`, wired in `apikeys.signals`): key create/update/disable/
  enable/rotate/delete, `expires_at`, permission or limit changes, tenant or agent status change and
  deletion (cascades included).
* `gen:g`: the global generation, bumped when a process had Redis trouble (`apikeys.redisstate`).

An entry is used only if both generations it carries are the current ones. Because a verification reads
the generations before it reads the database, and a revocation bumps after its commit, the race "read the
old row, the revocation commits and bumps, write the stale entry" leaves an entry whose generation is
already old: it is never used. A missing generation is created with a random value (never a small counter
that could come back to an old value after an eviction).

One Redis round trip per warm verification (`_LOOKUP`, a Lua script): the entry, both generations and the
key's pending usage (`apikeys.usage`), so that a verdict's `usage_count` is stored + pending.
"""

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction

from apikeys import redisstate
from apikeys.selectors import _DATETIME_COLUMNS, KeyRecord

logger = logging.getLogger("maimconfig.keycache")

ENTRY_TTL_SECONDS = 60
_EPOCH0 = datetime(1970, 1, 1, tzinfo=UTC)
_DT_INDEXES = frozenset(i for i, name in enumerate(KeyRecord.__slots__) if name in _DATETIME_COLUMNS)
_N = len(KeyRecord.__slots__)

# KEYS: none (names are built from ARGV so one script serves every key). ARGV: prefix, digest, tenant id,
# fresh random generation value. Returns {entry, tenant gen, global gen, usage epoch, total, last}.
def generations_lua(tenant_arg: str, fresh_arg: str) -> str:
    """Lua that sets `tgen` and `ggen` to the tenant's and the global generation (`p` is the prefix), each
    created with the fresh random value `fresh_arg` when missing. Shared by `_LOOKUP` and the fast lane's
    script (apikeys.fastlane), which must read the generations exactly as this module does."""
    return f"""
local gtk = p .. 'gen:t:' .. {tenant_arg}
local tgen = redis.call('GET', gtk)
if not tgen then
  redis.call('SET', gtk, {fresh_arg}, 'NX')
  tgen = redis.call('GET', gtk)
end
local ggen = redis.call('GET', p .. 'gen:g')
if not ggen then
  redis.call('SET', p .. 'gen:g', {fresh_arg}, 'NX')
  ggen = redis.call('GET', p .. 'gen:g')
end
"""


_LOOKUP = """
local p = ARGV[1]
local entry = redis.call('GET', p .. 'ks:' .. ARGV[2])
""" + generations_lua("ARGV[3]", "ARGV[4]") + """
local epoch = redis.call('GET', p .. 'use:epoch')
local total = false
local last = false
if entry and epoch then
  local sep = string.find(entry, '|', 1, true)
  if sep then
    local key_id = string.sub(entry, 1, sep - 1)
    total = redis.call('HGET', p .. 'use:tot:' .. epoch, key_id)
    last = redis.call('HGET', p .. 'use:last:' .. epoch, key_id)
  end
end
return {entry, tgen, ggen, epoch, total, last}
"""

# Bump a generation: +1 if it exists, else a fresh random start. ARGV: full key name, random value.
_BUMP = """
if redis.call('EXISTS', ARGV[1]) == 1 then
  return redis.call('INCR', ARGV[1])
end
redis.call('SET', ARGV[1], ARGV[2])
return ARGV[2]
"""


def _random_generation() -> str:
    # Large and random, so that a generation recreated after an eviction never equals an old one.
    return str(secrets.randbits(52))


@dataclass
class Pending:
    """A key's uses counted in Redis and not yet known to be in the database (see `apikeys.usage`)."""

    epoch: str | None
    total: int
    last_used_us: int | None


@dataclass
class Probe:
    """The answer of one lookup: the cached record (or None) and what a store needs."""

    record: KeyRecord | None
    previous: bool
    generations: tuple[str, str]
    pending: Pending | None


def _encode(record: KeyRecord, previous: bool, generations: tuple[str, str]) -> str:
    values = record.values()
    for i in _DT_INDEXES:
        if values[i] is not None:
            delta = values[i] - _EPOCH0
            values[i] = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{record.id}|" + json.dumps([values, previous, generations[0], generations[1]],
                                          separators=(",", ":"))


def _decode(entry: bytes) -> tuple[KeyRecord, bool, tuple[str, str]]:
    text = entry.decode() if isinstance(entry, bytes) else entry
    values, previous, tgen, ggen = json.loads(text[text.index("|") + 1:])
    if len(values) != _N:
        raise ValueError("key-state entry of another layout")
    for i in _DT_INDEXES:
        if values[i] is not None:
            values[i] = _EPOCH0 + timedelta(microseconds=values[i])
    return KeyRecord.from_values(values), bool(previous), (str(tgen), str(ggen))


def _text(value) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def lookup(digest: str, tenant_id: str) -> Probe | None:
    """The cached state for a key digest. None when Redis is not configured or unavailable (then the
    caller reads the database and does not store anything)."""

    def run(client):
        raw = redisstate.script(client, _LOOKUP)(args=[redisstate.prefix(), digest, tenant_id,
                                                       _random_generation()])
        entry, tgen, ggen, epoch, total, last = raw
        generations = (_text(tgen), _text(ggen))
        record, previous = None, False
        if entry is not None:
            try:
                cached, cached_previous, cached_generations = _decode(entry)
            except (ValueError, TypeError, KeyError):
                cached = None
            if cached is not None and cached_generations == generations:
                record, previous = cached, cached_previous
        pending = None
        if record is not None:
            pending = Pending(epoch=_text(epoch), total=int(total or 0),
                              last_used_us=int(last) if last is not None else None)
        return Probe(record=record, previous=previous, generations=generations, pending=pending)

    return redisstate.guarded("key_state", run, lambda: None)


def store(digest: str, record: KeyRecord, previous: bool, generations: tuple[str, str]) -> None:
    """Cache what the database said, tagged with the generations read before that database read."""
    if None in generations:
        return
    entry = _encode(record, previous, generations)

    def run(client):
        client.set(redisstate.prefix() + "ks:" + digest, entry, ex=ENTRY_TTL_SECONDS)

    redisstate.guarded("key_state", run, lambda: None)


def _bump(client, name: str) -> None:
    redisstate.script(client, _BUMP)(args=[redisstate.prefix() + name, _random_generation()])


def bump_global(client) -> None:
    """Make every cached entry unusable (called by `apikeys.redisstate` after an outage)."""
    _bump(client, "gen:g")


def bump_tenant_now(tenant_id: str) -> None:
    """Invalidate every cached key of `tenant_id` now. When Redis cannot be reached, the process
    remembers it and bumps the global generation before it next uses Redis."""
    if not redisstate.enabled():
        return

    def run(client):
        _bump(client, "gen:t:" + tenant_id)

    def failed():
        redisstate.breaker.needs_generation_bump = True

    redisstate.guarded("key_state_invalidate", run, failed)


def bump_tenant(tenant_id: str | None) -> None:
    """Invalidate the tenant's cached keys now and again after the current transaction commits.

    The bump after the commit is the one that matters: it runs in the committing request, before it
    responds (Django runs `on_commit` callbacks when the outermost atomic block exits), and defeats an
    entry written from a read made before the commit. The bump now only makes the change visible at once
    to code running inside the same transaction (which reads the uncommitted row on a miss)."""
    if tenant_id is None or not redisstate.enabled():
        return
    if transaction.get_connection().in_atomic_block:
        bump_tenant_now(tenant_id)
    transaction.on_commit(lambda: bump_tenant_now(tenant_id), robust=True)
