"""The cacheable routes: what each answer depends on, and until when it holds by itself.

Declared here, by view name, rather than on the views: no app may import `readcache` (it stands on
`apikeys`, which the other apps import), so the read cache describes the routes it serves. A route not
listed is never cached. For each route:

* `deps(request, kwargs)`: the generations (`core.generations` names) whose bumps cover every write that
  can change the answer, or None when this request's answer cannot be tied to them (then it is not
  cached). Identifiers must be plain ASCII ids (`_ID`), so the names a reader and a writer build are the
  same (lower-cased) whatever the database's collation does with case, accents or trailing spaces.
* `valid_until(data, now)`: the earliest time the answer would change with no write at all (a key
  expiring, an activity row going offline), or None; raises NotCacheable when it cannot be known.
* `confirm(kwargs, data)`: the object answered is the one the generations name.

The credential's own limits (token expiry, the once-a-minute `last_used_at` touch) are the middleware's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

from django.utils.dateparse import parse_datetime

from core import generations

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
SYSTEM_DOCUMENT_SECONDS = 1  # how long a system document may be answered from the cache after a file change


class NotCacheable(Exception):
    pass


class Route:
    __slots__ = ("deps", "valid_until", "confirm")

    def __init__(self, deps: Callable, valid_until: Callable | None = None, confirm: Callable | None = None):
        self.deps = deps
        self.valid_until = valid_until
        self.confirm = confirm


def _id(value) -> str | None:
    return value if isinstance(value, str) and _ID.match(value) else None


def _query_id(request, name: str) -> str | None:
    values = request.GET.getlist(name)
    return _id(values[0]) if len(values) == 1 else None


def _instant(value) -> datetime | None:
    if value is None:
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None or parsed.tzinfo is None:
        raise NotCacheable
    return parsed


def _earliest_future(now: datetime, values) -> datetime | None:
    found = None
    for value in values:
        instant = _instant(value)
        if instant is not None and instant > now and (found is None or instant < found):
            found = instant
    return found


def _key_times(item: dict):
    # A key's status (`ApiKey.status_at`) turns by itself when it expires; the previous secret's grace too.
    return item.get("expires_at"), item.get("previous_key_expires_at")


def _items(data) -> list:
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise NotCacheable
    return items


# --- GET /api/v2/tenants/{id} ----------------------------------------------------------------------------------

def _tenant_deps(request, kwargs):
    tenant_id = _id(kwargs.get("tenant_id"))
    return None if tenant_id is None else [generations.tenant(tenant_id)]


def _same_object(kwarg: str):
    def confirm(kwargs, data) -> bool:
        return isinstance(data, dict) and str(data.get("id", "")).lower() == kwargs[kwarg].lower()
    return confirm


# --- GET /api/v2/api-keys?tenant_id=… and /api/v2/api-keys/{id} ---------------------------------------------

def _key_list_deps(request, kwargs):
    if "status" in request.GET:  # keys enter a status filter by time (active -> expired): not cacheable
        return None
    tenant_id = _query_id(request, "tenant_id")
    return None if tenant_id is None else [generations.keys(tenant_id)]


def _key_list_until(data, now):
    return _earliest_future(now, (t for item in _items(data) for t in _key_times(item)))


def _key_deps(request, kwargs):
    key_id = _id(kwargs.get("api_key_id"))
    return None if key_id is None else [generations.key(key_id)]


def _key_until(data, now):
    return _earliest_future(now, _key_times(data))


# --- GET /api/v2/agent-activity?tenant_id=… ------------------------------------------------------------------

def _activity_deps(request, kwargs):
    tenant_id = _query_id(request, "tenant_id")
    return None if tenant_id is None else [generations.activity(tenant_id)]


def _activity_until(data, now):
    """Rows go offline by time: only a list shown whole (one page) is cached, until its first expiry."""
    items = _items(data)
    pagination = data.get("pagination")
    if not isinstance(pagination, dict) or pagination.get("total") != len(items):
        raise NotCacheable
    return _earliest_future(now, (item.get("expires_at") for item in items))


# --- GET /api/v2/system/models and /bot-defaults ---------------------------------------------------------------

def _no_deps(request, kwargs):
    return []


def _system_until(data, now):
    """The documents are files, re-read by Django when they change (catalogue: keyed by file identity);
    a cached answer is kept SYSTEM_DOCUMENT_SECONDS at most."""
    return now + timedelta(seconds=SYSTEM_DOCUMENT_SECONDS)


# --- GET /api/v1/plugins/settings (operator token, or an agent key: the bot's route) -------------------------

def agent_key_of(authorization: str | None):
    """The parsed agent key of an `Authorization` header (`Bearer`/`Token` + `mmc_…`), or None. The
    header's keyword and value as `apikeys.authentication.header_key` reads them."""
    from apikeys.keys import KEY_PREFIX, parse_key

    if not authorization:
        return None
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() not in ("bearer", "token") or not parts[1].startswith(KEY_PREFIX):
        return None
    return parse_key(parts[1])


def _plugins_deps(request, kwargs):
    """The tenant's plugin settings; for an agent key also the key-state generation of its tenant
    (`apikeys.keycache`: every change of a key of the tenant, of the tenant's or the agent's status), so
    that the key's limit (the `X-RateLimit-*` headers) and permissions are those the entry was made with.
    The key itself is verified and its use counted on every hit (`readcache.fastlane`)."""
    queried = request.GET.getlist("tenant_id")
    if len(queried) > 1:
        return None
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    if authorization.split(" ", 1)[-1].strip().startswith("mmc_"):
        parsed = agent_key_of(authorization)
        if parsed is None or _id(parsed.tenant_id) is None or (queried and queried[0] != parsed.tenant_id):
            return None
        return [generations.plugins(parsed.tenant_id), "gen:t:" + parsed.tenant_id]
    tenant_id = _query_id(request, "tenant_id")
    return None if tenant_id is None else [generations.plugins(tenant_id)]


ROUTES: dict[str, Route] = {
    "tenants:tenant-detail": Route(_tenant_deps, confirm=_same_object("tenant_id")),
    "apikeys:apikey-list": Route(_key_list_deps, valid_until=_key_list_until),
    "apikeys:apikey-detail": Route(_key_deps, valid_until=_key_until, confirm=_same_object("api_key_id")),
    "activity:agent-activity": Route(_activity_deps, valid_until=_activity_until),
    "catalogue:system-models": Route(_no_deps, valid_until=_system_until),
    "catalogue:system-bot-defaults": Route(_no_deps, valid_until=_system_until),
    "plugins_v1:plugin-settings": Route(_plugins_deps),
}

# Routes an agent key may read from the cache, by path, with the permission the view requires
# (`plugins.views.ReadPermission`); on every hit the fast lane verifies the key and counts its use.
AGENT_KEY_PATHS = {"/api/v1/plugins/settings": "plugins", "/api/v1/plugins/settings/": "plugins"}

# The paths the fast lane is offered (`core.lanes.register_fast_prefix`): the routes above, no others.
FAST_PREFIXES = ("/api/v2/tenants/", "/api/v2/api-keys", "/api/v2/agent-activity", "/api/v2/system/",
                 "/api/v1/plugins/settings")
