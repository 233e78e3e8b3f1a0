"""Writes on API keys. Every write of the API, the admin and `issue_api_key` goes through here.

`apikey_create` and `apikey_rotate` return `(key, raw_key)`: the plaintext secret exists only in that
return value; only its SHA-256 is stored. Never log or put the raw key into an exception.
"""

from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from apikeys.keys import generate_key, hash_key, key_hint
from apikeys.models import ApiKey
from apikeys.usage import record_use_combined
from audit.models import AuditAction, AuditTarget
from audit.services import audit_record, snapshot
from core.errors import ErrorCode
from core.exceptions import ApplicationError
from core.ids import unique_id
from core.models import casefold_name
from core.validation import json_differs

KEY_NAME_TAKEN = "An API key named '{name}' already exists in this tenant."

_UPDATABLE = ("name", "description", "permissions", "expires_at", "rate_limit_per_minute", "metadata")
# What the audit trail records of a key (`key_hash` appears only as "********").
_AUDITED = ("agent_id", *_UPDATABLE, "disabled_at", "key_hash")


def _audit(action: AuditAction, key: ApiKey, before: dict | None, after: dict | None) -> None:
    audit_record(action=action, target_type=AuditTarget.API_KEY, target_id=key.pk, tenant_id=key.tenant_id,
                 before=before, after=after)


def _name_taken(tenant_id: str, name: str, *, exclude_id: str | None = None) -> bool:
    query = ApiKey.objects.filter(tenant_id=tenant_id, name_key=casefold_name(name))
    if exclude_id:
        query = query.exclude(pk=exclude_id)
    return query.exists()


def _save_unique(key: ApiKey, **save_kwargs) -> None:
    """Save, turning a lost race on the name constraint into KEY_002 (never a 500)."""
    try:
        with transaction.atomic():
            key.save(**save_kwargs)
    except IntegrityError:
        if _name_taken(key.tenant_id, key.name, exclude_id=key.pk if save_kwargs.get("force_update") else None):
            raise ApplicationError(ErrorCode.KEY_002, KEY_NAME_TAKEN.format(name=key.name),
                                   tenant_id=key.tenant_id) from None
        raise


def _new_secret(key: ApiKey) -> str:
    raw_key, random_part = generate_key(key.tenant_id, key.agent_id)
    key.key_hash = hash_key(raw_key)
    key.key_hint = key_hint(random_part)
    return raw_key


@transaction.atomic
def apikey_create(
    *,
    agent_id: str,
    name: str,
    tenant_id: str | None = None,
    description: str | None = None,
    permissions: list[str] | None = None,
    expires_at: datetime | None = None,
    rate_limit_per_minute: int | None = None,
    metadata: dict | None = None,
) -> tuple[ApiKey, str]:
    """Create a key (spec §5.3 check order) and return `(key, raw_key)`; the raw key is shown once."""
    from agents.models import Agent
    from tenants.models import Tenant

    tenant = None
    if tenant_id is not None:
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None:
            raise ApplicationError(ErrorCode.TENANT_003,
                                   (gettext("Tenant '%(tenant_id)s' does not exist.") % {"tenant_id": tenant_id})[:200])
    agent = Agent.objects.select_related("tenant").filter(pk=agent_id).first()
    if agent is None or (tenant is not None and agent.tenant_id != tenant.pk):
        raise ApplicationError(
            ErrorCode.AGENT_004,
            ((gettext("Agent '%(agent_id)s' does not exist in this tenant.") if tenant is not None
              else gettext("Agent '%(agent_id)s' does not exist.")) % {"agent_id": agent_id})[:200],
            tenant_id=tenant.pk if tenant is not None else None,
        )
    tenant = agent.tenant
    if not tenant.is_active:
        raise ApplicationError(ErrorCode.TENANT_008, "The tenant is not active; no key can be created.",
                               tenant_id=tenant.pk)
    if not agent.is_active:
        raise ApplicationError(ErrorCode.AGENT_013, "The agent is not active; no key can be created.",
                               tenant_id=tenant.pk)
    if _name_taken(tenant.pk, name):
        raise ApplicationError(ErrorCode.KEY_002, KEY_NAME_TAKEN.format(name=name), tenant_id=tenant.pk)
    key = ApiKey(
        id=unique_id(ApiKey, "key_"),
        tenant=tenant,
        agent=agent,
        name=name,
        name_key=casefold_name(name),
        description=description,
        permissions=list(permissions or []),
        expires_at=expires_at,
        rate_limit_per_minute=rate_limit_per_minute,
        metadata=metadata if metadata is not None else {},
    )
    raw_key = _new_secret(key)
    _save_unique(key, force_insert=True)
    _audit(AuditAction.API_KEY_CREATE, key, None, snapshot(key, _AUDITED))
    return key, raw_key


@transaction.atomic
def apikey_update(*, api_key: ApiKey, data: dict[str, Any]) -> ApiKey:
    """Partial update (spec §5.6): keys absent from `data` are unchanged; `updated_at` only on change.

    `metadata: None` resets it to `{}`; `status` `active`/`disabled` enables or disables the key.
    """
    data = dict(data)
    if "metadata" in data and data["metadata"] is None:
        data["metadata"] = {}
    changed = [f for f in _UPDATABLE if f in data and json_differs(getattr(api_key, f), data[f])]
    before = snapshot(api_key, _AUDITED)
    now = timezone.now()
    status = data.get("status")
    if status == ApiKey.Status.DISABLED and api_key.disabled_at is None:
        api_key.disabled_at = now
        changed.append("disabled_at")
    elif status == ApiKey.Status.ACTIVE and api_key.disabled_at is not None:
        api_key.disabled_at = None
        changed.append("disabled_at")
    if not changed:
        return api_key
    if "name" in changed:
        if _name_taken(api_key.tenant_id, data["name"], exclude_id=api_key.pk):
            raise ApplicationError(ErrorCode.KEY_002, KEY_NAME_TAKEN.format(name=data["name"]),
                                   tenant_id=api_key.tenant_id)
        api_key.name_key = casefold_name(data["name"])
        changed.append("name_key")
    for field in _UPDATABLE:
        if field in changed:
            setattr(api_key, field, data[field])
    api_key.updated_at = now
    _save_unique(api_key, force_update=True, update_fields=[*changed, "updated_at"])
    action = AuditAction.API_KEY_UPDATE
    if set(changed) == {"disabled_at"}:
        action = AuditAction.API_KEY_DISABLE if api_key.disabled_at else AuditAction.API_KEY_ENABLE
    _audit(action, api_key, before, snapshot(api_key, _AUDITED))
    return api_key


def apikey_disable(*, api_key: ApiKey) -> ApiKey:
    """Disable (idempotent: an already disabled key keeps its `disabled_at`)."""
    return apikey_update(api_key=api_key, data={"status": ApiKey.Status.DISABLED})


def apikey_enable(*, api_key: ApiKey) -> ApiKey:
    """Enable (idempotent). An expired key stays `expired` until `expires_at` changes."""
    return apikey_update(api_key=api_key, data={"status": ApiKey.Status.ACTIVE})


_ROTATED = ("key_hash", "previous_key_hash", "previous_key_expires_at", "rotated_at")


@transaction.atomic
def apikey_rotate(*, api_key: ApiKey, grace_seconds: int = 0) -> tuple[ApiKey, str]:
    """New secret for the same row (spec §5.8); the current one stays valid for `grace_seconds`."""
    now = timezone.now()
    # Lock the row so two concurrent rotations cannot both keep a previous secret.
    locked = ApiKey.objects.select_for_update().filter(pk=api_key.pk).first()
    if locked is None:
        raise ApplicationError(ErrorCode.KEY_001, "The API key does not exist.")
    status = locked.status_at(now)
    if status != ApiKey.Status.ACTIVE:
        raise ApplicationError(ErrorCode.KEY_003, gettext("Only an active key can be rotated; this key is %(status)s.") % {"status": status},
                               tenant_id=api_key.tenant_id)
    before = snapshot(api_key, _ROTATED)
    if grace_seconds > 0:
        api_key.previous_key_hash = locked.key_hash
        api_key.previous_key_expires_at = now + timedelta(seconds=grace_seconds)
    else:
        api_key.previous_key_hash = None
        api_key.previous_key_expires_at = None
    raw_key = _new_secret(api_key)
    api_key.rotated_at = now
    api_key.updated_at = now
    api_key.save(update_fields=["key_hash", "key_hint", "previous_key_hash", "previous_key_expires_at",
                                "rotated_at", "updated_at"])
    _audit(AuditAction.API_KEY_ROTATE, api_key, before, snapshot(api_key, _ROTATED))
    return api_key, raw_key


@transaction.atomic
def apikey_delete(*, api_key: ApiKey) -> dict[str, Any]:
    """Hard delete: the current and any previous secret answer AUTH_005 from the next request on."""
    key_id = api_key.pk
    before = snapshot(api_key, _AUDITED)
    api_key.delete()
    api_key.pk = key_id
    _audit(AuditAction.API_KEY_DELETE, api_key, before, None)
    return {"id": key_id, "api_key_id": key_id, "deleted_at": timezone.now()}


def apikey_record_use(*, api_key_id: str, uses: int = 1, now: datetime | None = None) -> datetime:
    """Count one accepted use with an atomic `UPDATE … usage_count = usage_count + 1` (spec §1.15).

    Does not touch `updated_at`. Returns the `last_used_at` written. Inside a transaction it is an UPDATE of
    that transaction; in autocommit (the verdict endpoint) concurrent uses of one key in this process are
    combined into one `+k` UPDATE (`apikeys.usage`), each request still returning after its commit.
    """
    now = now or timezone.now()
    if connection.in_atomic_block or uses != 1:
        _write_uses(api_key_id, uses, now)
    else:
        record_use_combined(api_key_id, now, _write_uses)
    return now


def _write_uses(api_key_id: str, count: int, last_used_at: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_record_use_sql(connection.vendor),
                       [count, connection.ops.adapt_datetimefield_value(last_used_at), api_key_id])


@cache
def _record_use_sql(vendor: str) -> str:
    """`UPDATE … SET usage_count = usage_count + %s, last_used_at = %s WHERE id = %s`, built once (the ORM
    would compile the same statement on every call of the hot path)."""
    qn = connection.ops.quote_name
    count = qn(ApiKey._meta.get_field("usage_count").column)
    return (f"UPDATE {qn(ApiKey._meta.db_table)} SET {count} = {count} + %s, "
            f"{qn(ApiKey._meta.get_field('last_used_at').column)} = %s WHERE {qn(ApiKey._meta.pk.column)} = %s")
