"""Chat concurrency limits (api.md §10.7, `CHAT_004`): in-flight chat requests per key and per tenant.

With Redis (`CACHE_URL=redis://…`) the slots are shared by every worker process and instance: each scope is
a sorted set of slot tokens scored by their expiry time (the request's deadline plus a margin). One Lua
script drops expired tokens, checks both limits and adds the tokens, atomically; releasing removes them.
A worker killed mid-request cannot release its slots: they expire at their deadline.

Without Redis, or while Redis is unreachable (never an error, §1.5), slots are counted per worker process.

`Retry-After` is 1 second: a slot frees as soon as any in-flight request of the scope ends.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext as _

from core.errors import ErrorCode
from core.exceptions import ApplicationError

logger = logging.getLogger("maimconfig.chat")

RETRY_AFTER_SECONDS = 1
# Added to a request's deadline for its slot's expiry: the database work before and after the upstream call.
EXPIRY_MARGIN_SECONDS = 30.0

_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local n = tonumber(ARGV[4])
local held = redis.call('ZCARD', KEYS[1])
if held + n > tonumber(ARGV[5]) then return 1 end
held = redis.call('ZCARD', KEYS[2])
if held + n > tonumber(ARGV[6]) then return 2 end
for i = 1, n do
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3] .. ':' .. i)
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3] .. ':' .. i)
end
local ttl = math.ceil(tonumber(ARGV[2]) - now) + 1000
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 0
"""

# The script's SHA1: sent with EVALSHA (the script text only when Redis does not know it yet).
_ACQUIRE_SHA = hashlib.sha1(_ACQUIRE.encode()).hexdigest()

# ARGV: key scope, tenant scope, the members to remove (`Slots.release_on_loop`).
_RELEASE = b"""
for i = 3, #ARGV do
  redis.call('ZREM', ARGV[1], ARGV[i])
  redis.call('ZREM', ARGV[2], ARGV[i])
end
return 0
"""
_RELEASE_SHA = hashlib.sha1(_RELEASE).hexdigest().encode()  # noqa: S324 - Redis names scripts by SHA-1

_local_lock = threading.Lock()
_local_held: dict[str, int] = defaultdict(int)
_redis_down_logged = False


@dataclass
class Slots:
    """Slots held by one request; `release()` is idempotent."""

    key_scope: str
    tenant_scope: str
    units: int
    token: str = ""
    shared: bool = False
    released: bool = field(default=False)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.shared:
            try:
                client = _redis()
                members = [f"{self.token}:{i}" for i in range(1, self.units + 1)]
                pipe = client.pipeline(transaction=False)
                pipe.zrem(self.key_scope, *members)
                pipe.zrem(self.tenant_scope, *members)
                pipe.execute()
            except Exception:  # noqa: BLE001 - the slots expire at their deadline anyway
                logger.warning("Releasing chat slots in Redis failed; they expire at their deadline.")
            return
        with _local_lock:
            for scope in (self.key_scope, self.tenant_scope):
                _local_held[scope] -= self.units
                if _local_held[scope] <= 0:
                    del _local_held[scope]

    async def release_on_loop(self) -> bool:
        """Release shared slots with one command on the event loop's pipelined Redis connection (the fast
        lane's, `apikeys.fastredis`) instead of a redis-py round trip in a database thread. False when it
        cannot (per-process slots, no loop connection, the breaker open, a Redis error): the caller then
        calls `release()` in a thread, which tries again (removing absent members is harmless)."""
        if self.released:
            return True
        if not self.shared:
            return False
        from apikeys import fastlane, redisstate

        if not fastlane.lane_available():
            return False
        client = fastlane.loop_client()
        if client is None:
            return False
        members = [f"{self.token}:{i}" for i in range(1, self.units + 1)]
        try:
            await client.fast.evalsha(_RELEASE_SHA, _RELEASE, [self.key_scope, self.tenant_scope, *members])
        except redisstate._redis_errors():
            return False
        self.released = True
        return True


def _redis():
    from apikeys import redisstate

    return redisstate.client()


def scope_base() -> str:
    """The Redis key prefix of every slot scope (the key's and the tenant's follow it)."""
    from apikeys import redisstate

    return redisstate.prefix() + "chat:inflight:"


def _scopes(api_key_id: str, tenant_id: str) -> tuple[str, str]:
    base = scope_base()
    return base + "key:" + api_key_id, base + "tenant:" + tenant_id


def shared_slots(*, api_key_id: str, tenant_id: str, token: str) -> Slots:
    """The one Redis slot (per key and tenant) another script took with `token` (`chat.fastprelude`: the
    key script's slot step, the same members and scores as `_ACQUIRE` with one unit)."""
    key_scope, tenant_scope = _scopes(api_key_id, tenant_id)
    return Slots(key_scope, tenant_scope, 1, token=token, shared=True)


def expiry_ms(now_ms: int, hold_seconds: float) -> int:
    """A slot's expiry (its score): the request's deadline plus the margin."""
    return now_ms + int((hold_seconds + EXPIRY_MARGIN_SECONDS) * 1000)


def _refusal(scope: str, limit: int) -> ApplicationError:
    if scope == "key":
        error = _("Too many chat requests of this API key are in flight (limit %(limit)s); retry later.")
    else:
        error = _("Too many chat requests of this tenant are in flight (limit %(limit)s); retry later.")
    return ApplicationError(ErrorCode.CHAT_004, error % {"limit": limit},
                            data={"scope": scope, "limit": limit, "retry_after": RETRY_AFTER_SECONDS},
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def acquire(*, api_key_id: str, tenant_id: str, units: int = 1, hold_seconds: float) -> Slots:
    """Take `units` slots for the key and its tenant, all or nothing. Raises ApplicationError CHAT_004."""
    global _redis_down_logged
    key_limit = settings.MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_KEY
    tenant_limit = settings.MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_TENANT
    key_scope, tenant_scope = _scopes(api_key_id, tenant_id)
    client = None
    try:
        client = _redis()
    except Exception:  # noqa: BLE001 - a misconfigured or absent Redis: per-process slots
        client = None
    if client is not None:
        token = secrets.token_hex(8)
        now_ms = int(time.time() * 1000)
        expires = expiry_ms(now_ms, hold_seconds)
        try:
            outcome = _evaluate(client, key_scope, tenant_scope, now_ms, expires, token, units, key_limit,
                                tenant_limit)
        except Exception:  # noqa: BLE001 - Redis unreachable: never an error (api.md §1.5)
            if not _redis_down_logged:
                _redis_down_logged = True
                logger.error("Redis is unavailable; chat concurrency limits are counted per process.")
        else:
            _redis_down_logged = False
            if int(outcome) == 1:
                raise _refusal("key", key_limit)
            if int(outcome) == 2:
                raise _refusal("tenant", tenant_limit)
            return Slots(key_scope, tenant_scope, units, token=token, shared=True)
    with _local_lock:
        if _local_held[key_scope] + units > key_limit:
            raise _refusal("key", key_limit)
        if _local_held[tenant_scope] + units > tenant_limit:
            raise _refusal("tenant", tenant_limit)
        _local_held[key_scope] += units
        _local_held[tenant_scope] += units
    return Slots(key_scope, tenant_scope, units)


def _evaluate(client, *args):
    """The acquire script by its SHA1 (EVALSHA), loading it on NOSCRIPT (a restarted or flushed Redis)."""
    from redis.exceptions import NoScriptError

    try:
        return client.evalsha(_ACQUIRE_SHA, 2, *args)
    except NoScriptError:
        return client.eval(_ACQUIRE, 2, *args)


def held(*, api_key_id: str, tenant_id: str) -> tuple[int, int]:
    """Slots currently held (key, tenant): for tests and diagnostics."""
    key_scope, tenant_scope = _scopes(api_key_id, tenant_id)
    client = _redis()
    if client is not None:
        now_ms = int(time.time() * 1000)
        return (client.zcount(key_scope, now_ms, "+inf"), client.zcount(tenant_scope, now_ms, "+inf"))
    with _local_lock:
        return _local_held.get(key_scope, 0), _local_held.get(tenant_scope, 0)
