"""Helpers views use to answer: a success with its message, and paginated lists."""

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
              context: dict | None = None) -> Response:
    """Paginate `queryset` in the database and answer `{items, pagination}` (spec §1.7)."""
    paginator = view.paginator
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    items = serializer_class(page, many=True, context=context or {"request": view.request}).data
    return ok(paginator.page_payload(items), message=message, tenant_id=tenant_id)
