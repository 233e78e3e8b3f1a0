"""The bot fast lane (issue 11, README "Serving model"): `POST /api/v2/auth/validate-api-key` answered on
the event loop, from ONE Redis round trip, with the bytes Django would send.

Registered with `core.lanes.register_fast_handler` by `ApikeysConfig.ready()` only when Redis is the cache
(`apikeys.redisstate.enabled()`); without Redis nothing registers and Django serves every request.

**What it answers.** The common case only: a warm key (its key-state entry is in Redis and carries the
current generations, `apikeys.keycache`), a valid verdict, a body of exactly `{"api_key": str,
"required_permission"?: str|null, "check_rate_limit"?: bool|null}`, JSON content type, no cookie, no
browser cross-site markers (`Origin`, `Sec-Fetch-Site`), an allowed `Host`. Everything else DECLINES:
the handler returns False having sent nothing and consumed nothing, and Django answers the same request
(a cold key is then read from the database and cached by Django, so the next request is fast again).

**One round trip.** `_SCRIPT` does, atomically, what the Django path does in three scripts: the per-IP
`/auth` throttle (`apikeys.throttling`, same key), the key-state lookup with its generation checks
(`apikeys.keycache._LOOKUP`, same keys, same creation of missing generations), checks 2-7 of spec §6.2 on
the cached record, and then the per-key minute window and the use count with its pending total
(`apikeys.usage._USE`, same keys, same use id, same dashboard counter). It consumes NOTHING unless the
verdict is valid and the window has room: the throttle is peeked first and taken only at the end, the
window unit is given back when it does not fit (as `_USE` does). So a declined request is counted,
throttled and limited exactly once, by Django.

The script's checks are the Python ones (`apikeys.selectors._match`, `KeyRecord.status_at`,
`apikeys.verification.verify_key`) written in Lua on the record's JSON (datetimes in microseconds since
the epoch, exact in a Lua double); the verdict answered is then built in Python from the same record by
`apikeys.verification` (`validate_data`, `fill_usage`), so its data is the Django path's.

**Redis trouble.** While the process's breaker (`apikeys.redisstate.breaker`) is open, or an outage left
a generation bump to do, the lane declines (Django falls back to the database and does the bump). A Redis
error opens the breaker and declines; a script that may have run although its reply was lost is handed
to `apikeys.usage`'s lost-reply reconciliation exactly as a failed `count_use` of the Django path is.

**Headers and metrics.** The response headers are the ones the sync lane's middleware stack adds to this
view's answer, derived once per process from the settings (`core.fastlane.ResponseShape`): DRF's `Allow`, clickjacking,
`Content-Length`, `Vary`/`Content-Language` (LocaleMiddleware, CORS), the security headers, `X-Request-ID`.
The django_prometheus request/response series and `maimconfig_key_verifications_total` get what Django's
middleware would record for the same request, labelled with the same view name.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import re
import weakref
from functools import cache

from django.conf import settings
from django.utils import timezone

from apikeys import keycache, ratelimit, redisstate, usage, verification
from apikeys.keys import KEY_PREFIX, hash_key, parse_key
from apikeys.selectors import KeyRecord

# The shared request and response plumbing, used by every keyed fast handler as `lane.<name>`.
from core.fastlane import (  # noqa: F401 - re-exported for the keyed handlers
    MAX_BODY,
    Declined,
    ResponseShape,
    begin,
    client_ident,
    common_checks,
    end,
    json_object,
    render,
    request_headers,
    send_json,
    shape_for,
)

logger = logging.getLogger("maimconfig.fastlane")

VALIDATE_PATH = "/api/v2/auth/validate-api-key"
_ACTIVE = "active"


# --- the script --------------------------------------------------------------------------------------------

def _slot(name: str) -> int:
    """1-based index of a KeyRecord attribute in a key-state entry's value list (`keycache._encode`)."""
    return KeyRecord.__slots__.index(name) + 1


# ARGV:  1 prefix, 2 digest, 3 parsed tenant id, 4 parsed agent id, 5 fresh random generation,
#        6 throttle key ('' = no throttle), 7 throttle limit, 8 throttle ttl, 9 now (µs),
#        10 '1' = check the permission ARGV[11], 11 permission, 12 '1' = take a window unit and count a use
#        ('0' = read-only), 13 window number, 14 window ttl, 15 fresh usage epoch, 16 the dashboard counter's
#        field up to the key id (`usage._meter_field`; '' = none), 17 use id (its value is the key id, so a
#        use whose reply was lost can be reconciled without knowing the key beforehand), 18 a usage-log
#        entry to queue for the database ('' or absent = none; only with 12 = '1': `activity.writebehind`),
#        19 the chat slots' scope prefix (`chat.limits`; '' or absent = take no slot; only with 12 = '1'),
#        20 now (ms), 21 the slot's expiry (ms), 22 slot token, 23 per-key limit, 24 per-tenant limit,
#        25 a generation (`core.generations` name) to read with the use ('' or absent = none; only with 12 =
#        '1'; created with the fresh value ARGV[5] when missing: `chat.express` stamps its agent cache with it).
# Returns {'throttled'} | {'miss'} | {'refused'} | {'busy'} | {'limited'} | {'noids'} (nothing consumed), or
#         {'ok', entry, previous 0/1, window count (-1: unlimited key), epoch, total, last, usage-log id,
#          the generation of ARGV 25, the global generation}.
# With an entry, the script takes the next id of the reserved usage-log id blocks (`ul:ids`, `ul:blocks`;
# 'noids' when none is left) and appends the entry to the stream `ul:stream` after the use is counted.
_SCRIPT = """
local p = ARGV[1]
local tkey = ARGV[6]
if tkey ~= '' then
  local seen = tonumber(redis.call('GET', tkey) or '0')
  if seen >= tonumber(ARGV[7]) then return {'throttled'} end
end
local entry = redis.call('GET', p .. 'ks:' .. ARGV[2])
""" + keycache.generations_lua("ARGV[3]", "ARGV[5]") + """if not entry then return {'miss'} end
local sep = string.find(entry, '|', 1, true)
if not sep then return {'miss'} end
local decoded, doc = pcall(cjson.decode, string.sub(entry, sep + 1))
if not decoded or type(doc) ~= 'table' or type(doc[1]) ~= 'table'
    or tostring(doc[3]) ~= tgen or tostring(doc[4]) ~= ggen then
  return {'miss'}
end
local v = doc[1]
local null = cjson.null
local now = tonumber(ARGV[9])
if v[@tenant_id@] ~= ARGV[3] or v[@agent_id@] ~= ARGV[4] then return {'refused'} end
local previous = 0
if v[@key_hash@] ~= ARGV[2] then
  local grace = v[@previous_key_expires_at@]
  if v[@previous_key_hash@] == ARGV[2] and grace ~= null and grace > now then
    previous = 1
  else
    return {'refused'}
  end
end
if v[@disabled_at@] ~= null then return {'refused'} end
local expires = v[@expires_at@]
if expires ~= null and expires <= now then return {'refused'} end
if v[@tenant_status@] ~= 'active' or v[@agent_status@] ~= 'active' then return {'refused'} end
if ARGV[10] == '1' then
  local granted = false
  local perms = v[@permissions@]
  if type(perms) == 'table' then
    for _, perm in ipairs(perms) do
      if perm == ARGV[11] then granted = true break end
    end
  end
  if not granted then return {'refused'} end
end
local skey, tskey = false, false
if (ARGV[19] or '') ~= '' then  -- one chat slot per key and tenant (chat.limits._ACQUIRE, units = 1)
  skey = ARGV[19] .. 'key:' .. string.sub(entry, 1, sep - 1)
  tskey = ARGV[19] .. 'tenant:' .. ARGV[3]
  redis.call('ZREMRANGEBYSCORE', skey, '-inf', ARGV[20])
  redis.call('ZREMRANGEBYSCORE', tskey, '-inf', ARGV[20])
  if redis.call('ZCARD', skey) + 1 > tonumber(ARGV[23])
      or redis.call('ZCARD', tskey) + 1 > tonumber(ARGV[24]) then return {'busy'} end
end
local log = ARGV[18] or ''
local ids = false
if log ~= '' then
  ids = redis.call('HMGET', p .. 'ul:ids', 'next', 'hi')
  if (not ids[1]) or tonumber(ids[1]) > tonumber(ids[2]) then
    if redis.call('LLEN', p .. 'ul:blocks') == 0 then return {'noids'} end
    ids = false
  end
end
local key_id = string.sub(entry, 1, sep - 1)
local limit = v[@rate_limit_per_minute@]
local wkey = p .. 'rl:' .. key_id .. ':' .. ARGV[13]
local count = -1
if ARGV[12] == '1' then
  if limit ~= null then
    count = redis.call('INCRBY', wkey, 1)
    if count == 1 then redis.call('EXPIRE', wkey, tonumber(ARGV[14])) end
    if count > limit then
      redis.call('DECRBY', wkey, 1)
      return {'limited'}
    end
  end
end
if skey then
  local member = ARGV[22] .. ':1'
  redis.call('ZADD', skey, ARGV[21], member)
  redis.call('ZADD', tskey, ARGV[21], member)
  local ttl = math.ceil(tonumber(ARGV[21]) - tonumber(ARGV[20])) + 1000
  if redis.call('PTTL', skey) < ttl then redis.call('PEXPIRE', skey, ttl) end
  if redis.call('PTTL', tskey) < ttl then redis.call('PEXPIRE', tskey, ttl) end
end
if tkey ~= '' then
  local hits = redis.call('INCR', tkey)
  if hits == 1 then redis.call('EXPIRE', tkey, tonumber(ARGV[8])) end
end
if ARGV[12] ~= '1' then
  if limit ~= null then count = tonumber(redis.call('GET', wkey) or '0') end
  local epoch = redis.call('GET', p .. 'use:epoch')
  local total, last = false, false
  if epoch then
    total = redis.call('HGET', p .. 'use:tot:' .. epoch, key_id)
    last = redis.call('HGET', p .. 'use:last:' .. epoch, key_id)
  end
  return {'ok', entry, previous, count, epoch, total, last}
end
redis.call('SET', p .. 'use:id:' .. ARGV[17], key_id, 'EX', 120)
local epoch = redis.call('GET', p .. 'use:epoch')
if not epoch then
  redis.call('SET', p .. 'use:epoch', ARGV[15], 'NX')
  epoch = redis.call('GET', p .. 'use:epoch')
end
local total = redis.call('HINCRBY', p .. 'use:tot:' .. epoch, key_id, 1)
local lkey = p .. 'use:last:' .. epoch
local last = redis.call('HGET', lkey, key_id)
if (not last) or tonumber(last) < tonumber(ARGV[9]) then
  redis.call('HSET', lkey, key_id, ARGV[9])
  last = ARGV[9]
end
redis.call('SADD', p .. 'use:dirty', key_id)
if ARGV[16] ~= '' then redis.call('HINCRBY', p .. 'meter:pending', ARGV[16] .. key_id .. '|', 1) end
for _, g in ipairs({p .. 'rc:key:' .. string.lower(key_id), p .. 'rc:keys:' .. string.lower(ARGV[3])}) do
  if redis.call('EXISTS', g) == 1 then redis.call('INCR', g) end  -- the read cache (core.generations)
end
local log_id = false
if log ~= '' then
  local nxt, hi
  if ids then
    nxt, hi = tonumber(ids[1]), tonumber(ids[2])
  else
    local block = redis.call('LPOP', p .. 'ul:blocks')
    local dash = string.find(block, '-', 1, true)
    nxt, hi = tonumber(string.sub(block, 1, dash - 1)), tonumber(string.sub(block, dash + 1))
  end
  redis.call('HSET', p .. 'ul:ids', 'next', string.format('%d', nxt + 1), 'hi', string.format('%d', hi))
  redis.call('XADD', p .. 'ul:stream', '*', 'i', string.format('%d', nxt), 'k', key_id, 'e', log)
  log_id = nxt
end
local gen = false
if (ARGV[25] or '') ~= '' then
  local gk = p .. ARGV[25]
  gen = redis.call('GET', gk)
  if not gen then
    redis.call('SET', gk, ARGV[5])
    gen = ARGV[5]
  end
end
return {'ok', entry, previous, count, epoch, total, last, log_id, gen, ggen}
"""
SCRIPT = re.sub(r"@(\w+)@", lambda m: str(_slot(m.group(1))), _SCRIPT)
_SCRIPT_BYTES = SCRIPT.encode()
_SCRIPT_SHA = hashlib.sha1(_SCRIPT_BYTES).hexdigest().encode()  # noqa: S324 - Redis names scripts by SHA-1


# --- one redis.asyncio client per event loop ----------------------------------------------------------------

_loop_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _async_client_kwargs() -> dict | None:
    """Connection settings of the Django cache's redis-py client (same server, db, password, timeouts)."""
    sync_client = redisstate.client()
    if sync_client is None:
        return None
    pool = sync_client.connection_pool
    kwargs = dict(pool.connection_kwargs)
    name = pool.connection_class.__name__
    if name == "UnixDomainSocketConnection":
        from redis.asyncio.connection import UnixDomainSocketConnection as connection_class
    elif name == "Connection":
        from redis.asyncio.connection import Connection as connection_class
    else:  # TLS or another transport: not mirrored, the fast lane declines
        return None
    allowed = {"host", "port", "path", "db", "username", "password", "socket_timeout", "socket_connect_timeout",
               "socket_keepalive", "socket_keepalive_options", "client_name", "health_check_interval"}
    kwargs = {k: v for k, v in kwargs.items() if k in allowed}
    kwargs["connection_class"] = connection_class
    return kwargs


class _LoopClient:
    """`redis`: the loop's redis.asyncio client; `script`: the key script on it; `fast`: the loop's pipelined
    connection (`apikeys.fastredis`) that `run_key_script` uses (a sixth of a request's CPU less)."""

    __slots__ = ("redis", "script", "fast")

    def __init__(self, redis, script, fast=None):
        self.redis = redis
        self.script = script
        self.fast = fast


_last_loop: list = [None, None]  # (loop, its client): a worker serves one loop, so this is nearly always it


def loop_client() -> _LoopClient | None:
    """The redis.asyncio client of the running event loop (created on first use), or None when Redis is
    not the cache or its transport is not mirrored."""
    loop = asyncio.get_running_loop()
    if _last_loop[0] is loop:
        return _last_loop[1]
    found = _loop_clients.get(loop)
    if found is None:
        kwargs = _async_client_kwargs()
        if kwargs is None:
            return None
        from redis.asyncio import BlockingConnectionPool, Redis

        # Bounded: at most this many Redis connections per worker; a burst waits for a free one.
        from apikeys.fastredis import FastRedis

        pool = BlockingConnectionPool(max_connections=64, timeout=1.0, **kwargs)
        client = Redis(connection_pool=pool)
        found = _loop_clients[loop] = _LoopClient(client, client.register_script(SCRIPT), FastRedis(**kwargs))
    _last_loop[:] = [loop, found]
    return found


def agent_key(headers: dict[bytes, bytes], data: dict) -> str:
    """The key `apikeys.authentication.AgentKeyAuthentication` would authenticate, for the plain cases."""
    from_header = None
    auth = headers.get(b"authorization")
    if auth is not None:
        parts = auth.split()
        if len(parts) != 2 or parts[0].lower() not in (b"bearer", b"token"):
            raise Declined
        try:
            from_header = parts[1].decode("utf-8")
        except UnicodeError:
            raise Declined from None
        if not from_header.startswith(KEY_PREFIX):
            raise Declined  # an operator token: Django
    from_body = data.get("api_key")
    if from_body is not None and (type(from_body) is not str or from_body != from_body.strip()):
        raise Declined
    if from_header is not None and from_body is not None and from_header != from_body:
        raise Declined  # Django answers the 400
    raw_key = from_header if from_header is not None else from_body
    if raw_key is None:
        raise Declined
    return raw_key


# --- the key script, shared with the heartbeat (activity/fastlane.py) -----------------------------------------

def lane_available() -> bool:
    """Redis is the cache and this process may use it now (breaker closed, no pending generation bump)."""
    breaker = redisstate.breaker
    return redisstate.enabled() and breaker.available() and not breaker.needs_generation_bump


@cache
def _parsed_rate(rate: str) -> tuple[int, int]:
    from apikeys.throttling import parse_rate

    return parse_rate(rate)


def _token() -> str:
    """16 hex digits from the process's Mersenne Twister (the module's generator, which CPython reseeds from
    the OS in every forked worker), not `os.urandom` (as `core.context.new_request_id`):
    use ids, a fresh usage epoch and a fresh generation only need to be unique and large, not unpredictable,
    and `os.urandom` is a system call that releases the GIL, which the heartbeat's pool threads then hold."""
    return f"{random.getrandbits(64):016x}"


class KeyUse:
    """What the script answered for a valid key: the record and the verdict's rate and pending usage."""

    __slots__ = ("record", "previous", "rate", "pending", "use_id", "log_id", "stamp")

    def __init__(self, record, previous, rate, pending, use_id, log_id=None, stamp=None):
        self.record = record
        self.previous = previous
        self.rate = rate
        self.pending = pending
        self.use_id = use_id
        self.log_id = log_id  # the id of the usage-log entry the script queued (`run_key_script(log_entry=…)`)
        # (generation, global generation) read with the use (`run_key_script(generation=…)`), else None
        self.stamp = stamp

    def counted(self) -> usage.UseResult:
        """This use as `apikeys.usage.count_use` would have answered it: what a fast path hands to Django
        (`usage.precounted_use`) when Django must answer a request whose use the script already counted."""
        return usage.UseResult(True, self.rate, True, pending=self.pending,
                               last_used_at=usage._dt(self.pending.last_used_us))


async def run_key_script(*, raw_key: str, parsed, now, permission: str | None, count: bool,
                         throttle_ident: str | None, log_entry: str = "", slots: tuple = (),
                         generation: str = "") -> KeyUse:
    """Checks 1-8 of spec §6.2 for a warm key in one round trip (see `_SCRIPT`); raises Declined for
    anything but a valid verdict (nothing consumed then). `log_entry` (with `count`): a usage-log entry
    queued for the database in the same round trip; its id is `KeyUse.log_id`. `slots` (with `count`):
    ARGV 19-24, one chat concurrency slot taken in the same round trip (`chat.fastprelude`). `generation`
    (with `slots`): a `core.generations` name read in the same round trip, with the global generation, as
    `KeyUse.stamp`. A reply lost to a Redis error raises `Declined("lost")` (the script may have run)."""
    client = loop_client()
    if client is None:
        raise Declined
    now_us = usage._us(now)
    now_ts = now_us / 1_000_000
    prefix = redisstate.prefix()
    throttle_key, throttle_num, throttle_ttl = "", 0, 0
    if throttle_ident is not None:
        num, duration = _parsed_rate(settings.MAIMCONFIG_AUTH_THROTTLE_RATE)
        window = int(now_ts // duration)
        wait = max(1, math.ceil((window + 1) * duration - now_ts))
        throttle_key = f"{prefix}maimconfig:throttle:auth:{throttle_ident}:{duration}:{window}"
        throttle_num, throttle_ttl = num, int(wait) + 5
    window_number, reset = ratelimit.window(now_ts)
    digest = hash_key(raw_key)
    use_id = _token()
    # The key's tenant and agent are the parsed ones (the script checks it); the key id is the script's.
    meter = usage._meter_field(usage.METER_ACCEPTED, usage._hour(now_us), parsed.tenant_id, parsed.agent_id,
                               "", "")[:-1] if count else ""
    args = [prefix, digest, parsed.tenant_id, parsed.agent_id, str(random.getrandbits(52)), throttle_key,
            throttle_num, throttle_ttl, now_us, "1" if permission is not None else "0", permission or "",
            "1" if count else "0", window_number, reset + 5, _token(), meter, use_id, log_entry, *slots]
    if generation:
        if not (count and len(slots) == 6):
            raise ValueError("A generation is read only with a counted use and a chat slot (ARGV 25).")
        args.append(generation)
    try:
        reply = await client.fast.evalsha(_SCRIPT_SHA, _SCRIPT_BYTES, args)
    except redisstate._redis_errors() as exc:
        redisstate.breaker.failure(exc, "key_state")
        if count:
            # The script may have run and only its reply been lost: Django now counts the use (in the
            # database, the breaker being open); the usage module takes it back from there if Redis did
            # run it, as for a failed `count_use` of the Django path.
            with usage._lost_lock:
                usage._lost_replies.append((use_id, None, 1))
        raise Declined("lost") from None
    redisstate.breaker.success()
    if reply[0] != b"ok":
        raise Declined
    record = _record(reply[1])
    return _key_use(record, reply, parsed, now, permission, count, reset, use_id)


_records: dict[bytes, KeyRecord] = {}


def _record(entry: bytes) -> KeyRecord:
    """The key record of a key-state entry, decoded once per process and entry: the entry's bytes are the
    whole state (any change of the key, its tenant or agent, or a generation is a different entry), and a
    record is never modified. Bounded: emptied when it holds 4,096 entries."""
    record = _records.get(entry)
    if record is None:
        record = keycache._decode(entry)[0]
        if len(_records) >= 4096:
            _records.clear()
        _records[entry] = record
    return record


def _key_use(record, reply, parsed, now, permission, count, reset, use_id) -> KeyUse:
    previous, window_count, epoch, total, last = reply[2:7]
    limit = record.rate_limit_per_minute
    if count:
        rate = None if limit is None else ratelimit.RateState(limit=limit, count=min(limit, int(window_count)),
                                                              reset_seconds=reset, allowed=True)
        pending = usage.Pending(epoch=usage._text(epoch), total=int(total), last_used_us=int(last))
    else:
        count_now = int(window_count)
        rate = None if limit is None else ratelimit.RateState(limit=limit, count=min(count_now, limit),
                                                              reset_seconds=reset, allowed=count_now < limit)
        pending = usage.Pending(epoch=usage._text(epoch), total=int(total or 0),
                                last_used_us=int(last) if last is not None else None)
    stamp = (reply[8], reply[9]) if len(reply) > 9 and reply[8] is not None else None
    return KeyUse(record, bool(previous), rate, pending, use_id, reply[7] if len(reply) > 7 else None, stamp)


def checked_verification(use: KeyUse, parsed, now, permission: str | None):
    """The `Verification` of a valid verdict, re-checked in Python with the Django path's own code."""
    record = use.record
    status = record.status_at(now)
    has_permission = True if permission is None else permission in (record.permissions or [])
    result = verification.Verification(
        None, parsed=parsed, key=record, using_previous_secret=use.previous, status=status,
        required_permission=permission, has_permission=has_permission, rate=use.rate, pending=use.pending,
        pending_known=True)
    if (status != _ACTIVE or record.tenant_status != _ACTIVE or record.agent_status != _ACTIVE
            or not has_permission or record.tenant_id != parsed.tenant_id or record.agent_id != parsed.agent_id):
        # Cannot happen while the script's checks are the Python ones; never answer a verdict they disagree on.
        logger.error("Fast-lane key checks disagree with the Python checks for key %s; Django answers.", record.id)
        raise Declined
    return result


# --- POST /api/v2/auth/validate-api-key ----------------------------------------------------------------------

_VALIDATE_KEYS = frozenset({"api_key", "required_permission", "check_rate_limit"})
def _validate_params(data: dict) -> tuple[str, str | None, bool]:
    if not data.keys() <= _VALIDATE_KEYS:
        raise Declined
    api_key = data.get("api_key")
    permission = data.get("required_permission")
    check = data.get("check_rate_limit", True)
    if type(api_key) is not str or api_key != api_key.strip():
        raise Declined
    if permission is not None and (type(permission) is not str or permission != permission.strip()):
        raise Declined
    if check is not None and type(check) is not bool:
        raise Declined
    return api_key, permission, check is not False


async def validate_handler(scope, body: bytes, send) -> bool:
    """`core.lanes` fast handler of `POST /api/v2/auth/validate-api-key` (module docstring)."""
    if not lane_available():
        return False
    headers = request_headers(scope)
    try:
        language, secure = common_checks(scope, body, headers)
        raw_key, permission, count = _validate_params(json_object(body))
        parsed = parse_key(raw_key)
        if parsed is None:
            raise Declined
        usage.ensure_flusher()
        now = timezone.now()
        request_id, *tokens, started = begin(headers)
        try:
            use = await run_key_script(raw_key=raw_key, parsed=parsed, now=now, permission=permission,
                                       count=count, throttle_ident=client_ident(scope, headers))
            result = checked_verification(use, parsed, now, permission)
            verification.fill_usage(result)
            shape = shape_for(VALIDATE_PATH)
            payload = render(message="API key is valid", data=verification.validate_data(result),
                             tenant_id=result.tenant_id, language=language)
        finally:
            end(tokens)
    except Declined:
        return False
    _VALID.inc()
    await send_json(send, shape, payload, language=language, secure=secure, request_id=request_id)
    shape.metrics.record(method="POST", secure=secure, ajax=headers.get(b"x-requested-with") == b"XMLHttpRequest",
                         request_length=len(body), response_length=len(payload), started=started)
    return True


def _valid_counter():
    from apikeys.metrics import KEY_VERIFICATIONS

    return KEY_VERIFICATIONS.labels(outcome="valid", route="validate")


_VALID = _valid_counter()


def register() -> bool:
    """Register the fast handler when Redis is the cache (called by `ApikeysConfig.ready()`)."""
    if not redisstate.enabled():
        return False
    from core.lanes import register_fast_handler

    register_fast_handler("POST", VALIDATE_PATH, validate_handler)
    return True
