"""OpenAPI helpers: describe the envelope around a payload, and parse query strings with a serializer."""

from functools import cache

from drf_spectacular.drainage import set_override
from drf_spectacular.utils import inline_serializer
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers


class PaginationOutputSerializer(serializers.Serializer):
    page = serializers.IntegerField()
    page_size = serializers.IntegerField()
    total = serializers.IntegerField()
    total_pages = serializers.IntegerField()
    has_next = serializers.BooleanField()
    has_prev = serializers.BooleanField()


def _envelope_fields(data_field) -> dict:
    return {
        "success": serializers.BooleanField(),
        "message": serializers.CharField(),
        "data": data_field,
        "timestamp": serializers.CharField(help_text="UTC, YYYY-MM-DDTHH:MM:SSZ"),
        "request_id": serializers.CharField(),
        "tenant_id": serializers.CharField(allow_null=True),
        "execution_time": serializers.FloatField(),
        "error": serializers.CharField(allow_null=True),
        "error_code": serializers.CharField(allow_null=True),
    }


def _name(serializer) -> str:
    cls = serializer if isinstance(serializer, type) else type(serializer)
    return cls.__name__.removesuffix("Serializer").removesuffix("Output")


@cache
def envelope(serializer, many: bool = False):
    """The envelope whose `data` is `serializer` (component `<Name>Envelope`)."""
    data = serializer(many=many) if isinstance(serializer, type) else serializer
    return inline_serializer(name=f"{_name(serializer)}{'List' if many else ''}Envelope",
                             fields=_envelope_fields(data))


@cache
def paginated_envelope(serializer):
    """The envelope of a paginated list of `serializer` (component `<Name>PageEnvelope`)."""
    page = inline_serializer(
        name=f"{_name(serializer)}Page",
        fields={
            "items": serializer(many=True),
            "pagination": PaginationOutputSerializer(),
            # The original's list fields (spec §16), always present beside `pagination`.
            "total": serializers.IntegerField(help_text=_("Same as pagination.total (the original's field).")),
            "page": serializers.IntegerField(help_text=_("Same as pagination.page (the original's field).")),
            "size": serializers.IntegerField(help_text=_("Same as pagination.page_size (the original's field).")),
            "pages": serializers.IntegerField(
                help_text=_("Same as pagination.total_pages (the original's field).")),
        },
    )
    result = inline_serializer(name=f"{_name(serializer)}PageEnvelope", fields=_envelope_fields(page))
    # The envelope is already the whole answer: drf-spectacular must not wrap a list view's response in
    # an array and the paginator's schema a second time.
    return set_override(result, "many", False)


def parse_query(request, serializer_class) -> dict:
    """Validate query parameters with `serializer_class`; unknown parameters are ignored (§1.2)."""
    known = {name: request.query_params.get(name) for name in serializer_class().fields
             if name in request.query_params}
    serializer = serializer_class(data=known)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
