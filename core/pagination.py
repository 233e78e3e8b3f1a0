"""The one pagination of the API (spec §1.7): `page`, `page_size` (alias `size`), in the database."""

import math

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination

from core.fields import QueryIntegerField

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_PAGE = 10**9

# The original's pagination fields, kept beside `pagination` in every list's `data` (spec §16).
LEGACY_PAGE_FIELDS = {
    "total": ("Same as pagination.total (the original's field).", 41),
    "page": ("Same as pagination.page (the original's field).", 2),
    "size": ("Same as pagination.page_size (the original's field).", 20),
    "pages": ("Same as pagination.total_pages (the original's field).", 3),
}


def _parse(params, name: str, *, min_value: int, max_value: int | None, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    field = QueryIntegerField(min_value=min_value, max_value=max_value)
    field.field_name = name
    try:
        return field.run_validation(raw)
    except ValidationError as exc:
        raise ValidationError({name: exc.detail}) from None


class EnvelopePagination(BasePagination):
    """Offset pagination: one page query, and a COUNT when the page cannot tell the total; the queryset
    must be ordered."""

    def parse(self, params) -> tuple[int, int]:
        errors = {}
        page = size = None
        try:
            page = _parse(params, "page", min_value=1, max_value=MAX_PAGE, default=1)
        except ValidationError as exc:
            errors.update(exc.detail)
        size_name = "page_size" if "page_size" in params else "size"
        try:
            size = _parse(params, size_name, min_value=1, max_value=MAX_PAGE_SIZE, default=DEFAULT_PAGE_SIZE)
        except ValidationError as exc:
            errors.update(exc.detail)
        if errors:
            raise ValidationError(errors)
        return page, size

    def paginate_queryset(self, queryset, request, view=None):
        """The page's rows. The page is read first and the COUNT is made only when the page cannot tell
        the total (a full page, or an empty page past the first): a list that fits one page costs one
        statement, not two."""
        self.page, self.page_size = self.parse(request.query_params)
        offset = (self.page - 1) * self.page_size
        rows = list(queryset[offset : offset + self.page_size])
        if (rows and len(rows) < self.page_size) or (not rows and offset == 0):
            self.total = offset + len(rows)
        else:
            self.total = queryset.count()
        return rows

    def page_payload(self, items) -> dict:
        total_pages = math.ceil(self.total / self.page_size) if self.total else 0
        return {
            "items": items,
            "pagination": {
                "page": self.page,
                "page_size": self.page_size,
                "total": self.total,
                "total_pages": total_pages,
                "has_next": self.page < total_pages,
                "has_prev": self.page > 1,
            },
            # The original's list fields (spec §16), always sent beside `pagination` for its clients.
            "total": self.total,
            "page": self.page,
            "size": self.page_size,
            "pages": total_pages,
        }

    def get_paginated_response(self, data):
        from core.api import ok

        return ok(self.page_payload(data))

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["items", "pagination", *LEGACY_PAGE_FIELDS],
            "properties": {
                "items": schema,
                **{name: {"type": "integer", "description": text, "example": example}
                   for name, (text, example) in LEGACY_PAGE_FIELDS.items()},
                "pagination": {
                    "type": "object",
                    "properties": {
                        "page": {"type": "integer", "example": 1},
                        "page_size": {"type": "integer", "example": 20},
                        "total": {"type": "integer", "example": 41},
                        "total_pages": {"type": "integer", "example": 3},
                        "has_next": {"type": "boolean"},
                        "has_prev": {"type": "boolean"},
                    },
                },
            },
        }

    def get_schema_operation_parameters(self, view):
        def param(name, description, maximum=None):
            schema = {"type": "integer", "minimum": 1}
            if maximum:
                schema["maximum"] = maximum
            return {"name": name, "required": False, "in": "query", "description": description, "schema": schema}

        return [
            param("page", "Page number, from 1.", MAX_PAGE),
            param("page_size", "Items per page, 1–100 (default 20).", MAX_PAGE_SIZE),
            param("size", "Alias of page_size (the original service's name).", MAX_PAGE_SIZE),
        ]
