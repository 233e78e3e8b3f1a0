"""Turning DRF/Django validation errors into `data.errors` keyed by field path (spec §1.6)."""

import json
import re
from typing import Any

from rest_framework.settings import api_settings

NON_FIELD = api_settings.NON_FIELD_ERRORS_KEY  # "non_field_errors"
_PLAIN_KEY = re.compile(r"^[^.\[\]]+$")


def join_path(prefix: str, key: Any) -> str:
    """`a` + `b` -> `a.b`; `a` + 2 -> `a[2]`; `a` + `x.y` -> `a["x.y"]`."""
    if isinstance(key, int) or (isinstance(key, str) and key.isdigit() and prefix):
        return f"{prefix}[{key}]"
    part = key if _PLAIN_KEY.match(str(key)) else f'["{key}"]'
    if not prefix:
        return part
    return f"{prefix}{part}" if part.startswith("[") else f"{prefix}.{part}"


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Flatten DRF's nested error structure into `{path: [message, ...]}`."""
    out: dict[str, list[str]] = {}

    def add(path: str, message: str) -> None:
        out.setdefault(path or NON_FIELD, []).append(str(message))

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                if key == NON_FIELD:
                    walk(sub, path)
                else:
                    walk(sub, join_path(path, key))
        elif isinstance(value, list):
            if all(not isinstance(v, (dict, list)) for v in value):
                for v in value:
                    add(path, v)
            else:
                for index, sub in enumerate(value):
                    if sub:
                        walk(sub, join_path(path, index) if path else f"[{index}]")
        else:
            add(path, value)

    walk(detail, prefix)
    return out


# --- JSON values (issue 12, items 6, 8, 12) ---------------------------------------------------------

# One depth rule for every stored JSON value: MariaDB's `JSON_VALID` check refuses 32 nested objects or
# arrays, so a value may nest at most 31 (its "depth" is 32 when the values inside the innermost container
# count as a level, as MySQL's JSON_DEPTH counts them). SQLite stores anything; the rule is the same there.
MAX_JSON_DEPTH = 32
MAX_JSON_NESTING = MAX_JSON_DEPTH - 1


def json_nesting(value: Any, *, stop_after: int | None = None) -> int:
    """How many objects/arrays are nested in `value` (a scalar: 0, `{}`: 1, `{"a": []}`: 2). Iterative, so a
    value nested thousands of levels deep cannot exhaust the Python stack; stops counting past `stop_after`."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        current, level = stack.pop()
        if isinstance(current, dict):
            children = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        if level > deepest:
            deepest = level
            if stop_after is not None and deepest > stop_after:
                return deepest
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def too_deep(value: Any) -> bool:
    """Does `value` break the one depth rule of stored JSON (`MAX_JSON_DEPTH`)?"""
    return json_nesting(value, stop_after=MAX_JSON_NESTING) > MAX_JSON_NESTING


def has_lone_surrogate(value: Any) -> bool:
    """Does a string anywhere in `value` (keys included) hold a lone UTF-16 surrogate (`"\\ud800"`)? Such a
    string is not Unicode text: it cannot be encoded as UTF-8, stored or sent upstream."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (TypeError, ValueError, RecursionError):
        return False
    return False


def json_differs(old: Any, new: Any) -> bool:
    """Has a JSON value changed? JSON-strict: `1`, `1.0` and `true` differ although Python's `==` equates
    them, so an update from `{"flag": 1}` to `{"flag": true}` is stored (issue 12, item 12)."""
    return old != new or json.dumps(old, sort_keys=True, default=str) != json.dumps(new, sort_keys=True, default=str)
