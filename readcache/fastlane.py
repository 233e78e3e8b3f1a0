"""The read cache's fast lane: operator reads answered on the event loop from ONE Redis round trip.

Offered every GET under `routes.FAST_PREFIXES` (`core.lanes.register_fast_prefix`), only when Redis is the
cache. The Lua script `store.HIT` returns the entry named by the request's hash (`store.entry_hash`) if
every generation it was stamped with is current and Redis' clock is before its valid-until; the handler
then sends Django's status, headers and body, with this request's `X-Request-ID`, `Content-Length` and
envelope members (`timestamp`, `request_id`, `execution_time`, as `core.envelope.build_envelope` writes
them), and records the django_prometheus series Django would (`core.fastlane.ViewMetrics`, under the
view name Django resolved). Anything else DECLINES (returns False, nothing sent) and Django answers (and
stores the answer for the next request, `readcache.middleware`): a miss, a stale entry, no
`Authorization` header, a cookie, `Origin`, `Sec-Fetch-Site`, a body, a disallowed `Host`, an HTTP request
under `SECURE_SSL_REDIRECT`, and everything while the Redis breaker is open or a generation bump is owed.
"""

from __future__ import annotations

import logging
import time

from apikeys import fastlane as lane
from apikeys import redisstate, usage
from apikeys.metrics import KEY_VERIFICATIONS
from core.fastlane import Declined, ViewMetrics, request_checks, request_id_of
from readcache import routes, store

logger = logging.getLogger("maimconfig.fastlane")

_DECLINE_HEADERS = (b"cookie", b"origin", b"sec-fetch-site", b"transfer-encoding", b"content-length",
                    b"content-type")
_scripts: dict[int, tuple[object, object]] = {}
_metrics: dict[str, object] = {}
_stamp = [0, b""]
_VALID = KEY_VERIFICATIONS.labels(outcome="valid", route="request")


def _script(client):
    found = _scripts.get(id(client.redis))
    if found is None or found[0] is not client.redis:
        found = _scripts[id(client.redis)] = (client.redis, client.redis.register_script(store.HIT))
    return found[1]


def _metrics_for(view_name: str):
    found = _metrics.get(view_name)
    if found is None:
        found = _metrics[view_name] = ViewMetrics(view_name)
    return found


def _timestamp() -> bytes:
    """`build_envelope`'s timestamp (UTC, to the second), formatted once per second."""
    now = int(time.time())
    if _stamp[0] != now:
        _stamp[1] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)).encode()
        _stamp[0] = now
    return _stamp[1]


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def handler(scope, body: bytes, send) -> bool:
    """`core.lanes` fast handler (module docstring)."""
    if body or not lane.lane_available():
        return False
    headers = lane.request_headers(scope)
    authorization = headers.get(b"authorization")
    if authorization is None:
        return False
    try:
        secure = request_checks(scope, headers, _DECLINE_HEADERS)
    except Declined:
        return False
    client = lane.loop_client()
    if client is None:
        return False
    started = time.perf_counter()
    path = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    parsed = permission = None
    credential = authorization.split()
    if len(credential) == 2 and credential[1].startswith(b"mmc_"):
        # An agent key: only its routes, verified and counted on every hit.
        permission = routes.AGENT_KEY_PATHS.get(path)
        try:
            raw_key = credential[1].decode("utf-8")
        except UnicodeError:
            return False
        parsed = routes.agent_key_of(authorization.decode("latin-1"))
        if permission is None or parsed is None:
            return False
    name = store.entry_hash(method="GET", path=path.encode("utf-8").decode("latin-1"),
                            query=scope.get("query_string", b"").decode("latin-1"),
                            host=headers[b"host"].decode("latin-1"), secure=secure,
                            authorization=authorization.decode("latin-1"), accept=_text(headers.get(b"accept")),
                            accept_language=_text(headers.get(b"accept-language")))
    try:
        payload = await _script(client)(args=[redisstate.prefix(), name])
    except redisstate._redis_errors() as exc:
        redisstate.breaker.failure(exc, "read_cache")
        return False
    redisstate.breaker.success()
    if payload is None:
        return False
    try:
        entry = store.Entry(payload)
    except (ValueError, KeyError, TypeError):
        return False
    rate = None
    if parsed is not None:
        rate = await _use_key(raw_key, parsed, permission, entry)
        if rate is None:
            return False
    request_id = request_id_of(headers)
    answer = entry.body(timestamp=_timestamp(), request_id=request_id,
                        execution_time=round(time.perf_counter() - started, 4))
    await send({"type": "http.response.start", "status": entry.status,
                "headers": entry.header_list(length=len(answer), request_id=request_id, rate=rate)})
    await send({"type": "http.response.body", "body": answer})
    _metrics_for(entry.view_name).record(
        method="GET", secure=secure, ajax=headers.get(b"x-requested-with") == b"XMLHttpRequest",
        request_length=0, response_length=len(answer), started=started)
    return True


async def _use_key(raw_key: str, parsed, permission: str, entry: store.Entry) -> dict[str, str] | None:
    """Verify the agent key and count its use as the Django path does (`apikeys.authentication`, then
    `apikeys.access.authorize_key_scope`), in one round trip (`apikeys.fastlane.run_key_script`: checks 1-8
    of spec §6.2 with the route's permission). Returns the key's `X-RateLimit-*` headers (lower-case; empty
    for an unlimited key), or None to decline: nothing was consumed, or, in the one case where the use
    is already counted (the entry's rate headers are not the key's: cannot happen while the entry depends
    on the key-state generation of the tenant), Django is told so (`apikeys.usage.precounted_use`; the
    sync lane runs Django in a copy of this context) and does not count it again."""
    from django.utils import timezone

    now = timezone.now()
    usage.ensure_flusher()
    try:
        use = await lane.run_key_script(raw_key=raw_key, parsed=parsed, now=now, permission=permission,
                                        count=True, throttle_ident=None)
        lane.checked_verification(use, parsed, now, permission)
    except lane.Declined:
        return None
    rate = {} if use.rate is None else {name.lower(): value for name, value in use.rate.headers().items()}
    if set(rate) != entry.rate_names():
        counted = use.counted()
        usage.precounted_use.set((use.record.id, counted))
        return None
    _VALID.inc()
    return rate


def register() -> bool:
    """Register the handler for the cacheable routes when Redis is the cache (`ReadcacheConfig.ready()`)."""
    if not redisstate.enabled():
        return False
    from core.lanes import register_fast_prefix

    for prefix in routes.FAST_PREFIXES:
        register_fast_prefix("GET", prefix, handler)
    return True
