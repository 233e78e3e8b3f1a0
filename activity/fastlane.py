"""The bot fast lane of the agent-key heartbeat, `PUT /api/v2/agent-activity` (README "Serving model").

Registered by `ActivityConfig.ready()` only when Redis is the cache. A heartbeat sent with an agent key
(`Authorization: Bearer|Token mmc_…`, or `api_key` in the body) and a body of the common shape
(`tenant_id`/`agent_id` naming the key's own tenant and agent, or absent; `ttl_seconds` 1-604800 or
absent) is served like this:

1. key state, per-minute limit and use count in ONE Redis round trip, on the event loop: the script of
   `apikeys.fastlane` (checks 1-6 of spec §6.2 on the warm key-state entry, then the window unit and the
   use count, as `apikeys.access.consume_key_use` does). Nothing is consumed unless the key is valid and
   the window has room; otherwise the lane declines and Django answers (401/403/429, cold key...);
2. the upsert (`activity.services.activity_heartbeat`, one statement) on this lane's own small thread
   pool (`settings.MAIMCONFIG_FAST_HEARTBEAT_THREADS` threads, default 2), which holds at most that many
   database connections per worker and closes them when the worker stops (`core.lanes.on_shutdown`);
3. the envelope and headers Django sends (the rate-limit headers of a limited key included).

If the upsert raises (a refusal because the agent or tenant changed in between, a database error), the use
is already counted, as it is on the Django path, where the use stays counted when the request then fails.
The request is then handed to Django on the same pool with that use marked as counted
(`apikeys.usage.precounted_use`), so Django produces its exact answer (the ACTIVITY_002 refusal, the 503...)
without counting the use twice.

Operator tokens, requests without a key and every other shape are declined before anything is consumed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time

from django.conf import settings
from django.utils import timezone

from core import generations
from core.context import request_id_var, request_started_var

from apikeys import fastlane as lane
from apikeys import redisstate, usage
from apikeys.keys import parse_key
from apikeys.metrics import KEY_VERIFICATIONS

logger = logging.getLogger("maimconfig.fastlane")

ACTIVITY_PATH = "/api/v2/agent-activity"
_BODY_KEYS = frozenset({"tenant_id", "agent_id", "ttl_seconds", "api_key"})

_VALID = KEY_VERIFICATIONS.labels(outcome="valid", route="request")


# --- the lane's thread pool (and Django, for the hand-over) ---------------------------------------------------

_sync_lane = None
_sync_lane_lock = threading.Lock()


def threads() -> int:
    return max(1, settings.MAIMCONFIG_FAST_HEARTBEAT_THREADS)


def sync_lane():
    """This lane's `core.lanes.SyncLane`: its executor runs the upserts, and it serves the hand-over to
    Django (the same WSGI handler as the sync lane). Built on first use (or at worker start-up)."""
    global _sync_lane
    if _sync_lane is None:
        with _sync_lane_lock:
            if _sync_lane is None:
                from core.handlers import ServiceWSGIHandler, prepare_thread
                from core.lanes import SyncLane

                _sync_lane = SyncLane(ServiceWSGIHandler(), threads(), prepare_thread)
    return _sync_lane


def _upsert(tenant_id: str, agent_id: str, ttl_seconds: int):
    """One heartbeat statement in a pool thread, outside any transaction (autocommit)."""
    from django.db import DatabaseError, connection

    from activity.services import activity_heartbeat

    if connection.close_at is not None and time.monotonic() >= connection.close_at:
        connection.close()  # CONN_MAX_AGE, as Django's request_started handler would
    try:
        # The read cache's generations this write bumps come back to the handler, which bumps them on the
        # loop (`_bump`) instead of a blocking Redis call in this thread (a sixth of a heartbeat's CPU).
        with generations.deferred() as names:
            activity = activity_heartbeat(tenant_id=tenant_id, agent_id=agent_id, ttl_seconds=ttl_seconds)
        return activity, names
    except DatabaseError:
        connection.close()  # a fresh connection next time; the hand-over answers this request
        raise


_BUMP_BYTES = generations.BUMP_LUA.encode()
_BUMP_SHA = hashlib.sha1(_BUMP_BYTES).hexdigest().encode()  # noqa: S324 - Redis names scripts by SHA-1


async def _bump(names: list[str]) -> None:
    """Bump the read cache's generations `names` after the committed upsert, before the answer (as
    `core.generations.bump` does on the Django path); a failure makes the process bump the global
    generation before it next uses Redis (`readcache.store.bump_now`'s fallback)."""
    client = lane.loop_client()
    try:
        if client is None:
            raise ConnectionError("no Redis client on this loop")
        await client.fast.evalsha(_BUMP_SHA, _BUMP_BYTES, [redisstate.prefix(), *names])
    except (*redisstate._redis_errors(), ConnectionError) as exc:
        redisstate.breaker.failure(exc, "read_cache_invalidate")
        redisstate.breaker.needs_generation_bump = True
    else:
        redisstate.breaker.success()


async def shutdown() -> None:
    """Close every pool thread's database connection, then stop the pool (worker shutdown)."""
    global _sync_lane
    found, _sync_lane = _sync_lane, None
    if found is None:
        return
    from django.db import connections

    count = found.threads
    barrier = threading.Barrier(count, timeout=5)

    def close_mine():
        try:
            barrier.wait()  # one task per thread: every thread of the pool closes its own connections
        except threading.BrokenBarrierError:
            pass
        connections.close_all()

    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(found.executor, close_mine) for _ in range(count)))
    await loop.run_in_executor(None, found.executor.shutdown, True)


# --- the handler -----------------------------------------------------------------------------------------

async def heartbeat_handler(scope, body: bytes, send) -> bool:
    """`core.lanes` fast handler of `PUT /api/v2/agent-activity` (module docstring)."""
    from activity.serializers import activity_representation, heartbeat_fast_validate

    if not lane.lane_available():
        return False
    headers = lane.request_headers(scope)
    try:
        language, secure = lane.common_checks(scope, body, headers)
        data = lane.json_object(body)
        if not data.keys() <= _BODY_KEYS:
            raise lane.Declined
        raw_key = lane.agent_key(headers, data)
        parsed = parse_key(raw_key)
        fields = heartbeat_fast_validate(data)
        if parsed is None or fields is None:
            raise lane.Declined
        if fields.get("tenant_id", parsed.tenant_id) != parsed.tenant_id \
                or fields.get("agent_id", parsed.agent_id) != parsed.agent_id:
            raise lane.Declined  # another tenant or agent: Django's 403
        usage.ensure_flusher()
        now = timezone.now()
        request_id, *tokens, started = lane.begin(headers)
        try:
            use = await lane.run_key_script(raw_key=raw_key, parsed=parsed, now=now, permission=None, count=True,
                                            throttle_ident=None)
            lane.checked_verification(use, parsed, now, None)
        finally:
            lane.end(tokens)
    except lane.Declined:
        return False
    record = use.record
    pool = sync_lane()
    loop = asyncio.get_running_loop()
    try:
        activity, names = await loop.run_in_executor(pool.executor, _upsert, record.tenant_id, record.agent_id,
                                                     fields["ttl_seconds"])
    except Exception:  # noqa: BLE001 - Django answers whatever the failure was, with the use counted
        counted = use.counted()
        token = usage.precounted_use.set((record.id, counted))
        try:
            await pool(scope, body, send)
        finally:
            usage.precounted_use.reset(token)
        return True
    if names:
        await _bump(names)
    tokens = (request_id_var.set(request_id), request_started_var.set(started))
    try:
        payload = lane.render(message="Heartbeat recorded", data=activity_representation(activity, default_zone=True),
                              tenant_id=record.tenant_id, language=language)
    finally:
        lane.end(tokens)
    await answer_keyed(send, method="PUT", path=ACTIVITY_PATH, headers=headers, body=body, payload=payload,
                       use=use, language=language, secure=secure, request_id=request_id, started=started)
    return True


async def answer_keyed(send, *, method: str, path: str, headers: dict[bytes, bytes], body: bytes, payload: bytes,
                       use, language: str, secure: bool, request_id: str, started: float) -> None:
    """Send the answer of an agent-key write the fast lane accepted (the heartbeat, the usage log): the
    accepted verification counted, the key's `X-RateLimit-*` headers (a limited key), and the request
    metrics Django's middleware would record."""
    _VALID.inc()
    extra = ()
    if use.rate is not None:
        extra = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in use.rate.headers().items()]
    shape = lane.shape_for(path)
    await lane.send_json(send, shape, payload, language=language, secure=secure, request_id=request_id, extra=extra)
    shape.metrics.record(method=method, secure=secure, ajax=headers.get(b"x-requested-with") == b"XMLHttpRequest",
                         request_length=len(body), response_length=len(payload), started=started)


def register() -> bool:
    """Register the fast handler when Redis is the cache (called by `ActivityConfig.ready()`)."""
    from apikeys import redisstate

    if not redisstate.enabled():
        return False
    from core.lanes import on_shutdown, on_startup, register_fast_handler

    register_fast_handler("PUT", ACTIVITY_PATH, heartbeat_handler)
    on_startup(sync_lane)  # build the pool and Django's handler before the first heartbeat
    on_shutdown(shutdown)
    return True
