"""Writes on tenants. Every write of the API and the admin goes through here."""

import json
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditAction, AuditTarget
from audit.services import audit_record, snapshot
from core.errors import ErrorCode
from core.exceptions import ApplicationError
from core.ids import unique_id
from core.models import casefold_name
from tenants.models import Tenant

TENANT_NAME_TAKEN = "A tenant named '{name}' already exists."

_UPDATABLE = ("tenant_name", "tenant_type", "description", "contact_email", "tenant_config", "status", "owner_id")


def _audit(action: AuditAction, tenant: Tenant, before: dict | None, after: dict | None) -> None:
    audit_record(action=action, target_type=AuditTarget.TENANT, target_id=tenant.pk, tenant_id=tenant.pk,
                 before=before, after=after)


def _differs(old: Any, new: Any) -> bool:
    """Stored value changed? JSON-strict: `1`, `1.0` and `true` differ (Python's `==` equates them)."""
    return old != new or json.dumps(old, sort_keys=True) != json.dumps(new, sort_keys=True)


def _name_taken(name: str, *, exclude_id: str | None = None) -> bool:
    query = Tenant.objects.filter(name_key=casefold_name(name))
    if exclude_id:
        query = query.exclude(pk=exclude_id)
    return query.exists()


def _save_unique(tenant: Tenant, name: str, **save_kwargs) -> None:
    """Save, turning a lost race on the name constraint into TENANT_002 (never a 500)."""
    try:
        with transaction.atomic():
            tenant.save(**save_kwargs)
    except IntegrityError:
        if _name_taken(name, exclude_id=tenant.pk if save_kwargs.get("force_update") else None):
            raise ApplicationError(ErrorCode.TENANT_002, TENANT_NAME_TAKEN.format(name=name)) from None
        raise


@transaction.atomic
def tenant_create(
    *,
    tenant_name: str,
    tenant_type: str,
    description: str | None = None,
    contact_email: str | None = None,
    tenant_config: dict | None = None,
    owner_id: str | None = None,
) -> Tenant:
    if _name_taken(tenant_name):
        raise ApplicationError(ErrorCode.TENANT_002, TENANT_NAME_TAKEN.format(name=tenant_name))
    tenant = Tenant(
        id=unique_id(Tenant, "tenant_"),
        tenant_name=tenant_name,
        name_key=casefold_name(tenant_name),
        tenant_type=tenant_type,
        description=description,
        contact_email=contact_email,
        tenant_config=tenant_config,
        owner_id=owner_id,
        status=Tenant.Status.ACTIVE,
    )
    tenant.full_clean(exclude=["id", "name_key"], validate_unique=False, validate_constraints=False)
    _save_unique(tenant, tenant_name, force_insert=True)
    _audit(AuditAction.TENANT_CREATE, tenant, None, snapshot(tenant, _UPDATABLE))
    return tenant


@transaction.atomic
def tenant_update(*, tenant: Tenant, data: dict[str, Any]) -> Tenant:
    """Partial update (spec §1.11): only the keys present in `data` change; `updated_at` only on change."""
    changed = [f for f in _UPDATABLE if f in data and _differs(getattr(tenant, f), data[f])]
    if not changed:
        return tenant
    before = snapshot(tenant, changed)
    if "tenant_name" in changed:
        if _name_taken(data["tenant_name"], exclude_id=tenant.pk):
            raise ApplicationError(ErrorCode.TENANT_002, TENANT_NAME_TAKEN.format(name=data["tenant_name"]),
                                   tenant_id=tenant.pk)
        tenant.name_key = casefold_name(data["tenant_name"])
        changed.append("name_key")
    was_active = tenant.is_active
    for field in changed:
        if field != "name_key":
            setattr(tenant, field, data[field])
    tenant.full_clean(exclude=["id", "name_key"], validate_unique=False, validate_constraints=False)
    tenant.updated_at = timezone.now()
    _save_unique(tenant, tenant.tenant_name, force_update=True, update_fields=[*changed, "updated_at"])
    _audit(AuditAction.TENANT_UPDATE, tenant, before, snapshot(tenant, before))
    if was_active and not tenant.is_active:
        _on_tenant_deactivated(tenant)
    return tenant


def _on_tenant_deactivated(tenant: Tenant) -> None:
    """A tenant leaving `active` takes its agents offline (spec §3.5); keys answer AUTH_006."""
    from activity.services import activity_delete_for_tenant

    activity_delete_for_tenant(tenant=tenant)


@transaction.atomic
def tenant_delete(*, tenant: Tenant) -> dict[str, Any]:
    """Hard delete; the database cascades to everything the tenant owns (spec §3.6)."""
    tenant_id = tenant.pk
    before = snapshot(tenant, _UPDATABLE)
    tenant.delete()
    _audit(AuditAction.TENANT_DELETE, Tenant(pk=tenant_id), before, None)
    return {"id": tenant_id, "tenant_id": tenant_id, "deleted_at": timezone.now()}
