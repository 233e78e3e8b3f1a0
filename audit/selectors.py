"""Reads of the audit trail."""

from datetime import datetime

from django.db.models import QuerySet

from audit.models import AuditEvent


def audit_event_list(*, tenant_id: str | None = None, target_type: str | None = None, target_id: str | None = None,
                     actor: str | None = None, action: str | None = None, since: datetime | None = None,
                     until: datetime | None = None) -> QuerySet[AuditEvent]:
    """Events newest first; every filter is exact (`since` inclusive, `until` exclusive). An id that names
    nothing, or a deleted tenant's id, simply selects its events (the trail outlives its targets)."""
    query = AuditEvent.objects.all()
    if tenant_id is not None:
        query = query.filter(tenant_id=tenant_id)
    if target_type is not None:
        query = query.filter(target_type=target_type)
    if target_id is not None:
        query = query.filter(target_id=target_id)
    if actor is not None:
        query = query.filter(actor=actor)
    if action is not None:
        query = query.filter(action=action)
    if since is not None:
        query = query.filter(occurred_at__gte=since)
    if until is not None:
        query = query.filter(occurred_at__lt=until)
    return query.order_by("-occurred_at", "-id")


def existing_tenant_id(tenant_id: str | None) -> str | None:
    """`tenant_id` when that tenant exists (the envelope names only existing tenants, spec §1.3)."""
    if tenant_id is None:
        return None
    from tenants.models import Tenant

    return tenant_id if Tenant.objects.filter(pk=tenant_id).exists() else None
