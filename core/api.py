"""Helpers views use to answer: a success with its message, and paginated lists."""

from collections.abc import Callable
from typing import Any

from django.db import transaction
from rest_framework.response import Response


class NonAtomicRequestsMixin:
    """Run the view outside ATOMIC_REQUESTS: hot paths of one self-contained statement (verdicts,
    heartbeats), routes that wait on an upstream model (chat), and /health, which must report a database
    that is down instead of failing to open the request's transaction."""

    @classmethod
    def as_view(cls, **initkwargs):
        return transaction.non_atomic_requests(super().as_view(**initkwargs))


def ok(data: Any = None, *, message: str = "OK", tenant_id: str | None = None, status: int = 200,
       headers: dict[str, str] | None = None) -> Response:
    """A successful answer; the renderer wraps `data` in the envelope with `message` and `tenant_id`."""
    response = Response(data, status=status, headers=headers)
    response.api_message = message
    response.api_tenant_id = tenant_id
    return response


def paginated(view, queryset, serializer_class, *, message: str, tenant_id: str | None = None,
              context: dict | None = None, filtered_by_tenant: str | None = None,
              tenant_if_exists: Callable[..., str | None] | None = None) -> Response:
    """Paginate `queryset` in the database and answer `{items, pagination}` (spec §1.7).

    A list filtered by a tenant that may not exist names that tenant in the envelope only if it exists
    (§1.3): pass `filtered_by_tenant` and `tenant_if_exists` (`tenant_id_if_exists(tenant_id=…)` of the
    tenants app's selectors). It is called only when the page
    shows no row (a row of that tenant proves it exists), saving the existence query on most lists.
    """
    paginator = view.paginator
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    items = serializer_class(page, many=True, context=context or {"request": view.request}).data
    if tenant_if_exists is not None:
        shown = isinstance(filtered_by_tenant, str) and filtered_by_tenant and page
        tenant_id = filtered_by_tenant if shown else tenant_if_exists(tenant_id=filtered_by_tenant)
    return ok(paginator.page_payload(items), message=message, tenant_id=tenant_id)
