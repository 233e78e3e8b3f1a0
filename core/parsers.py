"""The one JSON parser of the API (issue 12, items 7 and 8).

DRF's `JSONParser` lets two inputs through as a 500: a body nested about a thousand levels deep makes the
decoder raise `RecursionError` (not a `ValueError`), and a lone surrogate escape (`"\\ud800"`) decodes into
a Python string that no database, log line or upstream call can encode. Both become a 400
`VALIDATION_ERROR` here, before any view, serializer or credential check runs, so nothing downstream
(`deepcopy`, the JSON Schema validator, masking, `json.dumps`) ever sees such a value.
"""

import json
import re

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from core.validation import MAX_JSON_DEPTH, NON_FIELD, has_lone_surrogate, json_nesting

# A whole body may nest twice the depth of one stored JSON value: the value sits inside the body (and inside
# a batch item), and its own rule (`MAX_JSON_DEPTH`, with the field's path) is checked by its serializer.
MAX_BODY_NESTING = 2 * MAX_JSON_DEPTH

TOO_DEEP = _("The JSON body must not be nested deeper than {limit} levels of objects and arrays.")
LONE_SURROGATE = _("The JSON body contains a string that is not valid Unicode (a lone surrogate such as \\ud800).")
NOT_UTF8 = _("The JSON body must be UTF-8 encoded.")

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _refused(message) -> ValidationError:
    """A 400 `VALIDATION_ERROR` under `non_field_errors` that says what is wrong (a `ParseError` is answered
    with the generic "Malformed JSON" sentence)."""
    return ValidationError({NON_FIELD: [str(message).format(limit=MAX_BODY_NESTING)]})


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def loads_strict(raw: bytes):
    """`raw` read as the API reads a JSON body (module docstring): the value, or ValidationError (not UTF-8,
    too deep, a lone surrogate) or ParseError (malformed, NaN/Infinity). The bot fast lanes read their
    bodies with it too (`apikeys.fastlane.json_object`), so both paths accept exactly the same bodies."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _refused(NOT_UTF8) from None
    # Cheap guard first: a body with few brackets cannot be deep, whatever it holds.
    deep_possible = text.count("[") + text.count("{") > MAX_BODY_NESTING
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise _refused(TOO_DEEP) from None
    except ValueError as exc:
        raise ParseError(f"JSON parse error - {exc}") from None
    if deep_possible and json_nesting(data, stop_after=MAX_BODY_NESTING) > MAX_BODY_NESTING:
        raise _refused(TOO_DEEP)
    if "\\u" in text and _SURROGATE_ESCAPE.search(text) and has_lone_surrogate(data):
        raise _refused(LONE_SURROGATE)
    return data


class StrictJSONParser(JSONParser):
    """`application/json`, parsed strictly: no NaN/Infinity, bounded nesting, valid Unicode only."""

    def parse(self, stream, media_type=None, parser_context=None):
        return loads_strict(stream.read() if stream is not None else b"")
