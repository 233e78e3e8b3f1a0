"""The read cache's Redis layout (issue 11; README "Serving model"): entries, generations, bumps.

Raw Redis keys under `apikeys.redisstate.prefix()`:

* `rc:e:<sha256>`: one cached answer. The hash covers everything the answer depends on besides the data:
  method, path, query string, `Host`, scheme, the `Authorization` header (so a credential is never stored,
  and another credential, or none, never finds the entry), `Accept`, `Accept-Language`, the auth mode and
  the layout version. Its value is `<meta>\\n<info>\\n<body head>`: `meta` the JSON list `[valid until (µs
  since the epoch), generation name, stamp, name, stamp, …]` (what the fast lane's Lua checks), `info` the
  JSON object of the status, headers (the per-request ones as null placeholders), view name and the
  envelope's tail; the body head is Django's bytes up to the envelope's per-request members (`timestamp`,
  `request_id`, `execution_time`), which the fast lane writes afresh (`Entry.body`). Expires after
  `ENTRY_TTL_SECONDS` whatever its valid-until (a safety net: a bump or an expiry is what makes it stale).
* generations (`core.generations` names, plus `gen:g`, the key-state cache's global generation that a
  Redis outage bumps): counters created with a large random value when a reader finds them missing
  (never a small counter that could come back to an old value after an eviction). A bump is an INCR of
  an existing counter only: a missing one already fails every entry stamped with it.

**Why it is race-free** (the argument of `apikeys.keycache`): Django reads the generations a route depends
on BEFORE it reads the database (`readcache.middleware`, in `process_view`: before the view authenticates
and reads), and stores its answer stamped with them; every write bumps after its transaction commits
(`core.generations.bump`, `readcache.signals`, the use-count scripts). A write that commits after the
read bumps after the stamps were read, so an answer that may have missed it never matches again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets

from django.conf import settings

from apikeys import redisstate
from core import generations

logger = logging.getLogger("maimconfig.readcache")

ENTRY_TTL_SECONDS = 60
GLOBAL_GENERATION = "gen:g"  # apikeys.keycache: bumped by apikeys.redisstate after a Redis outage
_VERSION = "1"

# Read generations, creating a missing one with a fresh random value. ARGV: prefix, fresh value, names…
_READ = """
local p = ARGV[1]
local out = {}
for i = 3, #ARGV do
  local k = p .. ARGV[i]
  local v = redis.call('GET', k)
  if not v then
    redis.call('SET', k, ARGV[2], 'NX')
    v = redis.call('GET', k)
  end
  out[#out + 1] = v
end
return out
"""

# The fast lane's lookup: the entry if its stamps are the current generations and Redis' clock is before
# its valid-until, else false. ARGV: prefix, entry hash.
HIT = """
local p = ARGV[1]
local entry = redis.call('GET', p .. 'rc:e:' .. ARGV[2])
if not entry then return false end
local nl = string.find(entry, '\\n', 1, true)
if not nl then return false end
local ok, meta = pcall(cjson.decode, string.sub(entry, 1, nl - 1))
if not ok or type(meta) ~= 'table' or type(meta[1]) ~= 'number' then return false end
local t = redis.call('TIME')
if tonumber(t[1]) * 1000000 + tonumber(t[2]) >= meta[1] then return false end
for i = 2, #meta, 2 do
  if redis.call('GET', p .. meta[i]) ~= meta[i + 1] then return false end
end
return string.sub(entry, nl + 1)
"""


def _random_generation() -> str:
    return str(secrets.randbits(52))


def entry_hash(*, method: str, path: str, query: str, host: str, secure: bool, authorization: str | None,
               accept: str | None, accept_language: str | None) -> str:
    """The entry's name: a hash of everything a cached answer depends on besides the data (module
    docstring). Both sides (the middleware from `request.META`, the fast lane from the ASGI scope) call it
    with the same text: the WSGI environ the sync lane builds holds the scope's values as they are."""
    parts = (_VERSION, settings.MAIMCONFIG_AUTH_MODE, method, path, query, host, "https" if secure else "http",
             authorization if authorization is not None else "\x00", accept or "", accept_language or "")
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def read_generations(names: list[str]) -> list[str] | None:
    """The current values of `names` (missing ones created), or None without Redis / while it is down."""

    def run(client):
        values = redisstate.script(client, _READ)(args=[redisstate.prefix(), _random_generation(), *names])
        return [v.decode() if isinstance(v, bytes) else str(v) for v in values]

    return redisstate.guarded("read_cache", run, lambda: None)


def bump_now(names: tuple[str, ...]) -> None:
    """Bump the generations `names` now (the `core.generations` hook). When Redis cannot be reached the
    process remembers it and bumps the global generation before it next uses Redis (as `apikeys.keycache`)."""
    if not names or not redisstate.enabled():
        return

    def run(client):
        redisstate.script(client, generations.BUMP_LUA)(args=[redisstate.prefix(), *names])

    def failed():
        redisstate.breaker.needs_generation_bump = True

    redisstate.guarded("read_cache_invalidate", run, failed)


def put(name: str, value: bytes) -> None:
    def run(client):
        client.set(redisstate.prefix() + "rc:e:" + name, value, ex=ENTRY_TTL_SECONDS)

    redisstate.guarded("read_cache", run, lambda: None)


# --- the entry ---------------------------------------------------------------------------------------------

# The envelope's members after `data` (core.envelope.build_envelope, rendered compact by DRF's JSONRenderer).
# `rfind` of the timestamp member finds the envelope's own: every member after it is a scalar.
_TAIL = re.compile(
    rb',"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ","request_id":"([^"\\]*)",'
    rb'"tenant_id":(null|"[^"\\]*"),"execution_time":[0-9][0-9.e+-]*(,"error":null,"error_code":null\})\Z')
_TIMESTAMP = b',"timestamp":"'


def split_envelope(body: bytes, request_id: str) -> tuple[bytes, bytes, bytes] | None:
    """(head, tenant literal, tail) of an envelope body, or None when it is not one this module can
    rebuild byte for byte (then nothing is cached)."""
    at = body.rfind(_TIMESTAMP)
    if at < 0:
        return None
    match = _TAIL.match(body, at)
    if match is None or match.group(1) != request_id.encode("latin-1", "replace"):
        return None
    return body[:at], match.group(2), match.group(3)


def encode(*, valid_until_us: int, names: list[str], stamps: list[str], status: int,
           headers: list[tuple[str, str | None]], view_name: str, body: bytes, request_id: str | None) -> bytes | None:
    """The entry's bytes (module docstring); `request_id` None: a bare body, cached as it is."""
    meta = [valid_until_us]
    for name, stamp in zip(names, stamps, strict=True):
        meta += [name, stamp]
    info = {"s": status, "h": headers, "v": view_name}
    if request_id is None:
        head = body
    else:
        parts = split_envelope(body, request_id)
        if parts is None:
            return None
        head, tenant, tail = parts
        info["t"] = tenant.decode("utf-8")
        info["z"] = tail.decode("utf-8")
    return (json.dumps(meta, separators=(",", ":")).encode() + b"\n"
            + json.dumps(info, separators=(",", ":")).encode() + b"\n" + head)


class Entry:
    """A cached answer as the fast lane replays it."""

    __slots__ = ("status", "headers", "view_name", "head", "tenant", "tail")

    def __init__(self, payload: bytes):
        nl = payload.index(b"\n")
        info = json.loads(payload[:nl])
        self.status = info["s"]
        self.headers = info["h"]
        self.view_name = info["v"]
        self.head = payload[nl + 1:]
        tenant = info.get("t")
        self.tenant = None if tenant is None else tenant.encode("utf-8")
        self.tail = None if tenant is None else info["z"].encode("utf-8")

    def body(self, *, timestamp: bytes, request_id: str, execution_time: float) -> bytes:
        """Django's body with this request's envelope members (`core.envelope.build_envelope`)."""
        if self.tenant is None:
            return self.head
        return b"".join((self.head, b',"timestamp":"', timestamp, b'","request_id":"', request_id.encode("latin-1"),
                         b'","tenant_id":', self.tenant, b',"execution_time":', repr(execution_time).encode(),
                         self.tail))

    def header_list(self, *, length: int, request_id: str, rate: dict[str, str] | None = None) -> list[tuple[bytes, bytes]]:
        """Django's headers with this request's values in the placeholders: `Content-Length`,
        `X-Request-ID`, and the agent key's `X-RateLimit-*` (`rate`: lower-case name -> value)."""
        out = []
        for name, value in self.headers:
            if value is None:
                if name == "content-length":
                    value = str(length)
                elif name == "x-request-id":
                    value = request_id
                else:
                    value = rate[name]  # KeyError: the key's limit is not the entry's (the caller declines)
            out.append((name.encode("latin-1"), value.encode("latin-1")))
        return out

    def rate_names(self) -> set[str]:
        return {name for name, value in self.headers if value is None and name.startswith("x-ratelimit-")}
