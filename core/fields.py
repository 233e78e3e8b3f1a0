"""Strict serializer fields shared by every app.

DRF's stock fields coerce types (`123` becomes `"123"`, `"5"` becomes `5`, `"yes"` becomes `True`); the
spec wants a wrong JSON type to be a 400, so bodies use these. Query strings arrive as text and use
the `Query*` fields, which accept exactly the spec's spellings (§1.2).
"""

import json
import re
import unicodedata

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core.validation import MAX_JSON_NESTING, too_deep

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class StrictCharField(serializers.CharField):
    """A string, and only a string (trimmed by default)."""

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ObjectIdFilterField(StrictCharField):
    """A query filter naming an object by id (`tenant_id`, `agent_id`, …). No length limit: an id that
    names no object, however long, gives an empty list rather than an error (spec §1.7)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)


class NameField(StrictCharField):
    """A name (spec §1.12): trimmed, 1–100 characters, no control characters."""

    default_error_messages = {"control": "Must not contain control characters."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 100)
        kwargs.setdefault("min_length", 1)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if _CONTROL.search(value) or any(unicodedata.category(c) == "Cc" for c in value):
            self.fail("control")
        return value


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer (not a string, float or boolean)."""

    default_error_messages = {"invalid": "A valid integer is required."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean (`true`/`false` only)."""

    default_error_messages = {"invalid": "Must be a boolean."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictFloatField(serializers.FloatField):
    """A JSON number (integer or decimal, not a string or boolean)."""

    default_error_messages = {"invalid": "A valid number is required."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}:\d{2})?$")


class StrictDateTimeField(serializers.DateTimeField):
    """ISO 8601 date-time string (spec §1.9); naive values are UTC. A date without a time, week dates
    and the basic format (which Python's `fromisoformat` would accept) are refused."""

    def to_internal_value(self, value):
        if not isinstance(value, str) or not _ISO_DATETIME.match(value.strip()):
            self.fail("invalid", format="ISO 8601")
        parsed = super().to_internal_value(value.strip())
        if parsed.year < 1000:
            # Output is `YYYY-…` with four digits (spec §1.9), which strftime cannot give before 1000.
            raise serializers.ValidationError("Years before 1000 are not accepted.")
        return parsed


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    """A JSON object (dict) whose compact serialization is at most `max_bytes` bytes. Kept as sent."""

    default_error_messages = {
        "not_object": "Must be a JSON object.",
        "too_large": "Must be at most {max_bytes} bytes when serialized.",
        "not_finite": "Must not contain numbers outside the range of JSON (such as 1e999).",
        "too_deep": _("Must not be nested deeper than {limit} levels of objects and arrays."),
        "not_unicode": _("Must not contain strings that are not valid Unicode (such as a lone surrogate \\ud800)."),
    }

    def __init__(self, *, max_bytes: int | None = None, **kwargs):
        self.max_bytes = max_bytes
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_object")
        # The one depth rule of stored JSON (core.validation.MAX_JSON_DEPTH): MariaDB refuses deeper values
        # with an IntegrityError, so it is checked here, before the database sees the value.
        if too_deep(data):
            self.fail("too_deep", limit=MAX_JSON_NESTING)
        try:
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except ValueError:  # 1e999 parses as infinity, which JSON (and the database) cannot hold
            self.fail("not_finite")
        try:
            encoded = text.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("not_unicode")
        if self.max_bytes is not None and len(encoded) > self.max_bytes:
            self.fail("too_large", max_bytes=self.max_bytes)
        return data


class StrictListField(serializers.ListField):
    default_error_messages = {"not_a_list": "Must be a list."}


@extend_schema_field(OpenApiTypes.BOOL)
class QueryBooleanField(serializers.Field):
    """`true`/`false`/`1`/`0`, case-insensitive (spec §1.2)."""

    default_error_messages = {"invalid": "Must be one of true, false, 1, 0."}

    def to_internal_value(self, data):
        value = str(data).strip().lower()
        if value in ("true", "1"):
            return True
        if value in ("false", "0"):
            return False
        self.fail("invalid")

    def to_representation(self, value):
        return bool(value)


class QueryIntegerField(serializers.IntegerField):
    """Decimal digits only; out of range is an error, never clamped (spec §1.2)."""

    default_error_messages = {"invalid": "Must be a whole number written in decimal digits."}

    def to_internal_value(self, data):
        text = str(data).strip()
        if not text.isascii() or not text.isdigit() or len(text) > 18:
            if text.isascii() and text.isdigit():
                self.fail("max_value", max_value=self.max_value)
            self.fail("invalid")
        return super().to_internal_value(int(text))
