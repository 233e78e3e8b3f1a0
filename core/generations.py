"""Names of the read cache's generations (issue 11, `readcache`) and the hook that bumps them.

A generation is a Redis counter per resource or collection that a cached answer was stamped with
(`readcache`): bumping it after a write commits makes every answer read before the commit unusable. The
names live here, on the ground floor, because the writers are in every app and `readcache` may not be
imported by any of them (it stands on `apikeys`); the bump itself is installed by `readcache` when it
loads (`install`). Without it (no `readcache`, or no Redis) every call here is a no-op.

Ids are lower-cased: the ids are generated lower-case (`core.ids`), and a database with a case-insensitive
collation finds a row by another case of its id, so a read and a write must name the same generation
whatever the case the client used. The Lua scripts that bump in Redis directly (the fast lanes' use count)
build the same names: `rc:key:<key id>`, `rc:keys:<tenant id>`.
"""

import contextlib
import contextvars
from collections.abc import Callable, Iterable, Iterator

from django.db import transaction

OPERATORS = "rc:ops"  # any operator token, user or permission change

# The Lua that bumps generations in Redis (`readcache.store`, and the heartbeat fast lane on its own
# connection): INCR each named one that exists — a missing one already fails every answer stamped with it,
# and a reader creates it afresh with a random value. ARGV: key prefix, names…
BUMP_LUA = """
local p = ARGV[1]
for i = 2, #ARGV do
  local k = p .. ARGV[i]
  if redis.call('EXISTS', k) == 1 then redis.call('INCR', k) end
end
return 1
"""


def tenant(tenant_id: str) -> str:
    return "rc:tenant:" + tenant_id.lower()


def keys(tenant_id: str) -> str:
    return "rc:keys:" + tenant_id.lower()


def key(api_key_id: str) -> str:
    return "rc:key:" + api_key_id.lower()


def activity(tenant_id: str) -> str:
    return "rc:activity:" + tenant_id.lower()


def plugins(tenant_id: str) -> str:
    return "rc:plugins:" + tenant_id.lower()


def agent(agent_id: str) -> str:
    """An agent's row (its name and configuration): `chat.express` stamps its per-process agents with it."""
    return "rc:agent:" + agent_id.lower()


def of_tenant(tenant_id: str) -> tuple[str, ...]:
    """Every generation scoped to one tenant (a tenant's save or deletion bumps them all)."""
    return tenant(tenant_id), keys(tenant_id), activity(tenant_id), plugins(tenant_id)


_bumper: Callable[[tuple[str, ...]], None] | None = None
_deferred: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("generations_deferred", default=None)


def install(bumper: Callable[[tuple[str, ...]], None] | None) -> None:
    """Called by `readcache` when it loads: `bumper(names)` increments the named generations now."""
    global _bumper
    _bumper = bumper


def bump(names: Iterable[str]) -> None:
    """Bump `names` after the current transaction commits (at once in autocommit). The bump after the
    commit is what makes a cached read race-free: a reader stamps its answer with the generations it read
    BEFORE its database read, so an answer that may predate the commit carries an old stamp."""
    bumper = _bumper
    if bumper is None:
        return
    names = tuple(names)
    if not names:
        return
    deferred = _deferred.get()
    if deferred is not None and not transaction.get_connection().in_atomic_block:
        deferred.extend(names)  # committed already (autocommit): the caller bumps them (`deferred`)
        return
    transaction.on_commit(lambda: bumper(names), robust=True)


@contextlib.contextmanager
def deferred() -> Iterator[list[str]]:
    """Within the block, writes made in autocommit hand the names they would bump to the yielded list instead
    of bumping them; the caller bumps them itself once the block is done, before it answers (the heartbeat
    fast lane does so on its event loop, in its own Redis round trip, not with a blocking call in its
    database thread). Writes inside a transaction still bump after their commit."""
    names: list[str] = []
    token = _deferred.set(names)
    try:
        yield names
    finally:
        _deferred.reset(token)
