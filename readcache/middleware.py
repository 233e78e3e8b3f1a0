"""The Django side of the read cache: Django answers a miss, and its answer is stored for the fast lane.

`ReadCacheMiddleware` is the outermost middleware, so the answer it stores is the one sent, with every
header the stack added. For a GET of a cacheable route (`readcache.routes`) it reads the route's
generations in `process_view`, after URL resolution and BEFORE the view authenticates the caller and
reads the database (the race-freedom argument of `readcache.store`), then stores a 200 JSON answer to an
operator token stamped with them and with its valid-until: the earliest of the entry TTL, the route's own
(`valid_until`), the token's expiry and the next once-a-minute `last_used_at` touch
(`core.authentication.LAST_USED_RESOLUTION`: when it is due, Django answers and touches).

Never stored: any other status or content type, an answer that sets a cookie, a request with a cookie,
`Origin` or `Sec-Fetch-Site` (the fast lane declines those too), any principal but an operator token, and
everything while Redis is unreachable. Without Redis the middleware does nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.utils import timezone

from apikeys import redisstate
from core import generations
from readcache import routes, store

logger = logging.getLogger("maimconfig.readcache")

_DECLINED_META = ("HTTP_COOKIE", "HTTP_ORIGIN", "HTTP_SEC_FETCH_SITE")
# Headers that are the request's own: written afresh by the fast lane (placeholders in the entry).
_PER_REQUEST = frozenset({"x-request-id", "content-length"})
# Headers that must not be replayed: an answer carrying one is not cached.
_UNCACHEABLE = ("set-cookie", "date", "age", "retry-after", "x-ratelimit-", "www-authenticate")
_RATE = "x-ratelimit-"
_EPOCH0 = datetime(1970, 1, 1, tzinfo=timezone.get_fixed_timezone(0))


def _us(value: datetime) -> int:
    delta = value - _EPOCH0
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


class _Plan:
    __slots__ = ("route", "kwargs", "names", "stamps")

    def __init__(self, route, kwargs, names, stamps):
        self.route, self.kwargs, self.names, self.stamps = route, kwargs, names, stamps


class ReadCacheMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        plan = request.__dict__.pop("_readcache_plan", None)
        if plan is not None:
            try:
                self._store(request, response, plan)
            except Exception:  # noqa: BLE001 - the cache must never fail a request
                logger.exception("Read cache: storing an answer failed")
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.method != "GET":
            return None
        match = request.resolver_match
        route = routes.ROUTES.get(match.view_name) if match is not None else None
        if route is None or not redisstate.enabled():
            return None
        meta = request.META
        if any(name in meta for name in _DECLINED_META) or "HTTP_AUTHORIZATION" not in meta:
            return None
        deps = route.deps(request, view_kwargs)
        if deps is None:
            return None
        names = [*deps, generations.OPERATORS, store.GLOBAL_GENERATION]
        stamps = store.read_generations(names)  # BEFORE the view reads anything (readcache.store)
        if stamps is not None:
            request._readcache_plan = _Plan(route, view_kwargs, names, stamps)
        return None

    def _store(self, request, response, plan: _Plan) -> None:
        if response.status_code != 200 or getattr(response, "streaming", False) or response.cookies:
            return
        content_type = response.get("Content-Type", "")
        if not content_type.startswith("application/json"):
            return
        context = getattr(response, "renderer_context", None) or {}
        drf_request = context.get("request")
        token = getattr(drf_request, "auth", None) if drf_request is not None else None
        from core.models import OperatorToken

        now = timezone.now()
        until = [now + timedelta(seconds=store.ENTRY_TTL_SECONDS)]
        agent_key = getattr(token, "is_agent_key", False)
        if agent_key:
            # The key is verified and its use counted on every hit (readcache.fastlane): only its routes.
            if request.path not in routes.AGENT_KEY_PATHS:
                return
        elif isinstance(token, OperatorToken) and token.last_used_at is not None:
            until.append(token.last_used_at + _touch_resolution())
            if token.expires_at is not None:
                until.append(token.expires_at)
        else:
            return
        data = getattr(response, "data", None)
        route = plan.route
        try:
            if route.confirm is not None and not route.confirm(plan.kwargs, data):
                return
            if route.valid_until is not None:
                own = route.valid_until(data, now)
                if own is not None:
                    until.append(own)
        except routes.NotCacheable:
            return
        valid_until = min(until)
        if valid_until <= now:
            return
        headers: list[tuple[str, str | None]] = []
        for name, value in response.items():
            name = name.lower()
            if agent_key and name.startswith(_RATE):
                headers.append((name, None))  # the key's window now: written by the fast lane
                continue
            if name.startswith(_UNCACHEABLE):
                return
            headers.append((name, None if name in _PER_REQUEST else value))
        if "content-length" not in (name for name, _ in headers):
            return
        request_id = getattr(request, "request_id", None)
        enveloped = not _bare(response)
        if enveloped and request_id is None:
            return
        value = store.encode(valid_until_us=_us(valid_until), names=plan.names, stamps=plan.stamps,
                             status=200, headers=headers, view_name=request.resolver_match.view_name,
                             body=response.content, request_id=request_id if enveloped else None)
        if value is None:
            return
        store.put(_entry_hash(request), value)


def _bare(response) -> bool:
    """A compatibility route's bare JSON (no envelope: nothing per request in the body)."""
    from core.renderers import EnvelopeJSONRenderer

    return not isinstance(getattr(response, "accepted_renderer", None), EnvelopeJSONRenderer)


def _touch_resolution() -> timedelta:
    from core.authentication import LAST_USED_RESOLUTION

    return LAST_USED_RESOLUTION


def _entry_hash(request) -> str:
    meta = request.META
    return store.entry_hash(method=request.method, path=meta.get("PATH_INFO", ""), query=meta.get("QUERY_STRING", ""),
                            host=meta.get("HTTP_HOST", ""), secure=request.is_secure(),
                            authorization=meta.get("HTTP_AUTHORIZATION"), accept=meta.get("HTTP_ACCEPT"),
                            accept_language=meta.get("HTTP_ACCEPT_LANGUAGE"))


