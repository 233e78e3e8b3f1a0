"""Scope, per-minute limit and usage counting of agent-key requests (spec §1.13, §1.14).

`authorize_key_scope(request, *, tenant_id=None, agent_id=None) -> (tenant_id, agent_id)`

Call it in every view that agent keys may use, after the permission class and BEFORE touching objects
(path objects 404, body validation 400 and state 409 come after it in the spec's check order):

* operator request (or open mode without credential): returns `(tenant_id, agent_id)` unchanged, no-op;
* agent-key request:
  1. a given `tenant_id`/`agent_id` (from the query, the body or the path) that differs from the key's
     -> 403 PERMISSION_DENIED, whether or not that object exists; absent ones (None) default to the key's;
  2. the key's per-minute limit: when reached -> 429 AUTH_008 with `data.retry_after`, `Retry-After` and
     the `X-RateLimit-*` headers (nothing counted);
  3. counts one use (`apikeys.usage.count_use`: Redis write-behind, or an atomic `usage_count + 1`
     UPDATE; `last_used_at = now`), exactly once per request: later
     calls on the same request re-check the scope only. The use stays counted even if the request then
     fails (400/404/409/5xx) and its transaction rolls back (re-applied by
     `apikeys.middleware.AgentKeyUsageMiddleware`, which also adds `X-RateLimit-*` to the response).
  Returns the key's `(tenant_id, agent_id)`.

Chat batches that count per item use `consume_key_use(request, units=n)` instead (same limit and count,
no scope check, not limited to once per request).
"""

from django.db import connection, transaction
from django.utils.translation import gettext

from apikeys import ratelimit, usage
from apikeys.metrics import record_verification
from apikeys.principal import AgentKeyPrincipal
from core.errors import ErrorCode
from core.exceptions import ApplicationError
from core.permissions import is_agent_key_request

STATE_ATTR = "maimconfig_key_use"


class KeyUseState:
    """Per-request bookkeeping on the Django HttpRequest (read by AgentKeyUsageMiddleware)."""

    def __init__(self, api_key_id: str):
        self.api_key_id = api_key_id
        self.counted = False
        self.uses_pending: list["_CommitMarker"] = []
        self.rate: ratelimit.RateState | None = None


class _CommitMarker:
    """on_commit callback: marks one counted use as durable."""

    def __init__(self):
        self.committed = False

    def __call__(self):
        self.committed = True


def key_principal(request) -> AgentKeyPrincipal | None:
    """The request's agent-key principal, or None for operator / anonymous requests."""
    return request.auth if is_agent_key_request(request) else None


def _django_request(request):
    return getattr(request, "_request", request)


def _state(request, principal: AgentKeyPrincipal) -> KeyUseState:
    http_request = _django_request(request)
    state = getattr(http_request, STATE_ATTR, None)
    if state is None:
        state = KeyUseState(principal.api_key_id)
        setattr(http_request, STATE_ATTR, state)
    return state


def consume_key_use(request, *, units: int = 1) -> None:
    """Take `units` of the key's per-minute limit, all or nothing (429 AUTH_008, nothing counted), and
    count `units` uses (`apikeys.usage.count_use`: Redis write-behind, or one UPDATE). Agent keys only.
    A chat batch passes its number of valid items."""
    principal = request.auth
    state = _state(request, principal)
    used = usage.count_use(api_key_id=principal.api_key_id, tenant_id=principal.tenant_id,
                           agent_id=principal.agent_id, limit=principal.rate_limit_per_minute, units=units)
    state.rate = used.rate
    if not used.allowed:
        rate = used.rate
        record_verification(ErrorCode.AUTH_008.value, "request")
        usage.meter_refusal(ErrorCode.AUTH_008.value, principal.api_key)
        raise ApplicationError(
            ErrorCode.AUTH_008,
            gettext("The API key's rate limit of %(limit)s requests per minute has been reached.") % {"limit": rate.limit},
            data={"retry_after": rate.reset_seconds},
            headers={"Retry-After": str(rate.reset_seconds), **rate.headers()},
        )
    state.counted = True
    # A use counted in Redis is outside any transaction: it stays counted whatever happens next. One
    # counted by an UPDATE inside the request transaction is re-applied if that transaction rolls back.
    if not used.via_redis and connection.in_atomic_block:
        for _ in range(units):
            marker = _CommitMarker()
            transaction.on_commit(marker)
            state.uses_pending.append(marker)
    record_verification("valid", "request")


def authorize_key_scope(request, *, tenant_id: str | None = None, agent_id: str | None = None
                        ) -> tuple[str | None, str | None]:
    """See the module docstring. Raises ApplicationError (403 PERMISSION_DENIED, 429 AUTH_008)."""
    principal = key_principal(request)
    if principal is None:
        return tenant_id, agent_id
    if tenant_id is not None and tenant_id != principal.tenant_id:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "The API key may not access another tenant.")
    if agent_id is not None and agent_id != principal.agent_id:
        raise ApplicationError(ErrorCode.PERMISSION_DENIED, "The API key may not access another agent.")
    state = _state(request, principal)
    if not state.counted:
        consume_key_use(request)
    return principal.tenant_id, principal.agent_id
