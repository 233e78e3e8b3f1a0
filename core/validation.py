"""Turning DRF/Django validation errors into `data.errors` keyed by field path (spec §1.6)."""

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
