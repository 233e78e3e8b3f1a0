"""Key verification (spec §6.2 checks 1–9), shared by the `/auth` verdict endpoints and the
agent-key authentication of bot-facing routes.

Key state is read on every call, from the database (one SELECT joining tenant and agent) or, with Redis,
from the key-state cache that every revocation invalidates before it answers (`apikeys.keycache`), so
disabling, deleting, rotating or expiring a key, or deactivating its tenant or agent, takes effect on the
very next request in every worker process and instance. No process-local cache is involved.

Uses are counted by `apikeys.usage` (Redis write-behind, or the database); the `usage_count` and
`last_used_at` of a verdict are the stored values plus the pending ones.
"""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext

from apikeys import ratelimit, usage
from apikeys.keys import ParsedKey, parse_key
from apikeys.models import ApiKey
from apikeys.selectors import KeyRecord, apikey_find_by_secret
from core.errors import ErrorCode

_ACTIVE = "active"


@dataclass
class Verification:
    """The outcome of checks 1–8. `code` is None for a valid key."""

    code: ErrorCode | None
    parsed: ParsedKey | None = None
    key: KeyRecord | None = None
    using_previous_secret: bool | None = None
    status: str | None = None
    required_permission: str | None = None
    has_permission: bool | None = None
    rate: ratelimit.RateState | None = None
    usage_count: int | None = None
    last_used_at: datetime | None = None
    pending: usage.Pending | None = None
    pending_known: bool = False
    usage_final: bool = False

    @property
    def valid(self) -> bool:
        return self.code is None

    @property
    def tenant_id(self) -> str | None:
        return self.key.tenant_id if self.key is not None else None


def verify_key(raw_key, *, required_permission: str | None = None, stop_before_permission: bool = False,
               ) -> Verification:
    """Checks 1–7 of spec §6.2 (parse, find, disabled, expired, tenant, agent, permission).

    With `stop_before_permission` the permission check is skipped (the route's permission class does it).
    """
    parsed = parse_key(raw_key)
    if parsed is None:
        return Verification(ErrorCode.AUTH_001, required_permission=required_permission)
    found = apikey_find_by_secret(raw_key=raw_key, tenant_id=parsed.tenant_id, agent_id=parsed.agent_id)
    if found is None:
        return Verification(ErrorCode.AUTH_005, parsed=parsed, required_permission=required_permission)
    key, previous = found.record, found.using_previous_secret
    status = key.status_at(timezone.now())
    has_permission = True if required_permission is None else required_permission in (key.permissions or [])
    result = Verification(None, parsed=parsed, key=key, using_previous_secret=previous, status=status,
                          required_permission=required_permission, has_permission=has_permission,
                          pending=found.pending, pending_known=found.pending is not None)
    if status == ApiKey.Status.DISABLED:
        result.code = ErrorCode.AUTH_004
    elif status == ApiKey.Status.EXPIRED:
        result.code = ErrorCode.AUTH_002
    elif key.tenant_status != _ACTIVE:
        result.code = ErrorCode.AUTH_006
    elif key.agent_status != _ACTIVE:
        result.code = ErrorCode.AUTH_007
    elif not stop_before_permission and not has_permission:
        result.code = ErrorCode.AUTH_003
    return result


def consume_and_count(result: Verification) -> Verification:
    """Check 8: take one unit of the key's per-minute limit (AUTH_008 when reached), then count one use."""
    key = result.key
    used = usage.count_use(api_key_id=key.pk, tenant_id=key.tenant_id, agent_id=key.agent_id,
                           limit=key.rate_limit_per_minute)
    result.rate = used.rate
    if not used.allowed:
        result.code = ErrorCode.AUTH_008
        return result
    if used.via_redis:
        result.pending, result.pending_known = used.pending, True
    else:
        # MySQL has no UPDATE … RETURNING: the count this request produced is the one read plus one.
        result.usage_count = _shown(result)[0] + 1
        result.last_used_at = used.last_used_at
        result.usage_final = True
    return result


def _shown(result: Verification) -> tuple[int, datetime | None]:
    key = result.key
    if not result.pending_known:
        result.pending = usage._read_pending([key.pk]).get(key.pk)
        result.pending_known = True
    return usage.display(usage_count=key.usage_count, usage_flushed=key.usage_flushed,
                         usage_epoch=key.usage_epoch, last_used_at=key.last_used_at, pending=result.pending)


def fill_usage(result: Verification) -> None:
    """`usage_count`/`last_used_at` of the verdict: stored + pending (after this request's use, if any)."""
    if result.key is None or result.usage_final:
        return
    result.usage_count, result.last_used_at = _shown(result)


def peek_rate(result: Verification) -> None:
    """Fill `rate` without consuming (verdicts that do not count, and failed verdicts)."""
    key = result.key
    if key is not None and key.rate_limit_per_minute is not None and result.rate is None:
        result.rate = ratelimit.peek(key.pk, key.rate_limit_per_minute)


def record_refusal(result: Verification) -> None:
    """A refused verification for the operators' dashboard (hourly `validation.refused` by code)."""
    if result.code is not None:
        usage.meter_refusal(result.code.value, result.key)


# --- verdict payloads (spec §6.2, §6.3): every key present, null where a value does not apply ------------

def verdict_sentence(result: Verification) -> str | None:
    if result.code is None:
        return None
    if result.code == ErrorCode.AUTH_003:
        return gettext("The API key does not have the permission '%(permission)s'.") % {
            "permission": result.required_permission}
    return result.code.spec.error  # the catalogue's sentence (core/errors.py)


def _dt(value):
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def validate_data(result: Verification) -> dict:
    key = result.key
    base = {
        "valid": result.valid,
        "api_key_id": None, "tenant_id": None, "agent_id": None, "permissions": None,
        "required_permission": result.required_permission,
        "has_permission": None, "status": None, "expires_at": None, "usage_count": None,
        "last_used_at": None, "rate_limit": None, "retry_after": None, "metadata": None,
        "using_previous_secret": None,
    }
    if key is None:
        return base
    base.update({
        "api_key_id": key.pk,
        "tenant_id": key.tenant_id,
        "agent_id": key.agent_id,
        "permissions": list(key.permissions or []),
        "has_permission": result.has_permission,
        "status": result.status,
        "expires_at": _dt(key.expires_at),
        "usage_count": result.usage_count,
        "last_used_at": _dt(result.last_used_at),
        "rate_limit": result.rate.as_dict() if result.rate is not None else None,
        "retry_after": result.rate.reset_seconds if result.code == ErrorCode.AUTH_008 else None,
        "metadata": key.metadata if result.valid else None,
        "using_previous_secret": bool(result.using_previous_secret),
    })
    return base


def check_permission_data(result: Verification, permission: str) -> dict:
    key = result.key
    return {
        "has_permission": result.has_permission if key is not None else None,
        "permission": permission,
        "all_permissions": list(key.permissions or []) if key is not None else None,
        "tenant_id": key.tenant_id if key is not None else None,
        "agent_id": key.agent_id if key is not None else None,
        "api_key_id": key.pk if key is not None else None,
        "api_key_status": result.status if key is not None else None,
    }
