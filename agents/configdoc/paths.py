"""Paths of values inside the document, as error and warning keys (api.md §1.6)."""

import re

_PLAIN_KEY = re.compile(r"^[^.\[\]]+$")


def join_path(prefix: str, key: str | int) -> str:
    """`a` + `b` -> `a.b`; `a` + 2 -> `a[2]`; a key with `.`, `[` or `]` -> `a["x.y"]` (api.md §1.6)."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if _PLAIN_KEY.match(key):
        return f"{prefix}.{key}" if prefix else key
    return f'{prefix}["{key}"]'


def path_of(parts, prefix: str = "") -> str:
    path = prefix
    for part in parts:
        path = join_path(path, part)
    return path

