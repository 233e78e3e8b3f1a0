"""Reads on tenants, and the prepared one-row read the detail routes share (`object_by_pk`)."""

from functools import cache

from django.db import connection
from django.db.models import Model, QuerySet
from django.utils.translation import gettext

from core.errors import ErrorCode
from core.exceptions import ApplicationError
from core.models import casefold_name
from tenants.models import Tenant


@cache
def _by_pk(model: type[Model], vendor: str) -> tuple[str, list, list]:
    """`SELECT <every concrete column> FROM <table> WHERE <pk> = %s`, the attribute names, and per column
    the converters the ORM would apply (backend's, then field's), built once per model and vendor."""
    qn = connection.ops.quote_name
    fields = model._meta.concrete_fields
    sql = (f"SELECT {', '.join(qn(f.column) for f in fields)} FROM {qn(model._meta.db_table)} "
           f"WHERE {qn(model._meta.pk.column)} = %s")
    converters = []
    for index, field in enumerate(fields):
        expression = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if found:
            converters.append((index, expression, found))
    return sql, [f.attname for f in fields], converters


def object_by_pk(model: type[Model], pk: str):
    """The `model` row whose primary key is `pk` as a model instance (all fields), or None: what
    `model.objects.filter(pk=pk).first()` gives, from a statement written once per model (compiling the
    ORM query cost more client CPU than running it on the detail routes)."""
    sql, names, converters = _by_pk(model, connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, expression, functions in converters:
        value = values[index]
        for function in functions:
            value = function(value, expression, connection)
        values[index] = value
    return model.from_db(connection.alias, names, values)


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


def tenant_page(view, queryset, serializer_class, *, message: str, tenant_id: str | None):
    """`core.api.paginated` for a list filtered by `tenant_id` (or not filtered), with fewer statements.

    The page is read first; the COUNT is made only when the page cannot tell the total (a full page, or
    an empty page past the first), and the envelope's `tenant_id` needs no existence check when the page
    shows a row of that tenant (rows reference their tenant). Same answer as `paginated` with
    `tenant_id_if_exists`; a one-page list costs one statement instead of three.
    """
    from core.api import ok

    paginator = view.paginator
    paginator.page, paginator.page_size = paginator.parse(view.request.query_params)
    offset = (paginator.page - 1) * paginator.page_size
    rows = list(queryset[offset : offset + paginator.page_size])
    if rows and len(rows) < paginator.page_size or not rows and offset == 0:
        paginator.total = offset + len(rows)
    else:
        paginator.total = queryset.count()
    items = serializer_class(rows, many=True, context={"request": view.request}).data
    shown = tenant_id if rows and isinstance(tenant_id, str) and tenant_id else tenant_id_if_exists(tenant_id=tenant_id)
    return ok(paginator.page_payload(items), message=message, tenant_id=shown)
