"""Reads on tenants."""

from django.db.models import QuerySet
from django.utils.translation import gettext

from core.errors import ErrorCode
from core.exceptions import ApplicationError
from core.models import casefold_name
from core.selectors import object_by_pk
from tenants.models import Tenant


def tenant_get(*, tenant_id: str) -> Tenant:
    """The tenant, or TENANT_003 (a malformed id is simply not found)."""
    tenant = object_by_pk(Tenant, tenant_id) if isinstance(tenant_id, str) else None
    if tenant is None:
        raise ApplicationError(ErrorCode.TENANT_003, (gettext("Tenant '%(tenant_id)s' does not exist.")
                                                      % {"tenant_id": tenant_id})[:200])
    return tenant


def tenant_id_if_exists(*, tenant_id: str | None) -> str | None:
    """`tenant_id` when that tenant exists, else None: the envelope's `tenant_id` for a list filtered by
    a tenant that may not exist (spec §1.3, §1.7). Every app's list views use this one."""
    if not tenant_id or not isinstance(tenant_id, str):
        return None
    return tenant_id if Tenant.objects.filter(pk=tenant_id).exists() else None


def tenant_list(*, status: str | None = None, tenant_type: str | None = None,
                search: str | None = None) -> QuerySet[Tenant]:
    query = Tenant.objects.all()
    if status:
        query = query.filter(status=status)
    if tenant_type:
        query = query.filter(tenant_type=tenant_type)
    if search:
        # name_key is the case-folded name, so a case-folded substring search is case-insensitive on
        # every database (the MariaDB column is binary-collated, see CaseFoldKeyField).
        query = query.filter(name_key__contains=casefold_name(search))
    return query.order_by("-created_at", "-id")
