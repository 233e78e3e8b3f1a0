"""Server-generated identifiers (spec §1.10): prefix + lower-case hex from `secrets`."""

import secrets

from django.db import models


def new_id(prefix: str, hex_chars: int = 12) -> str:
    return prefix + secrets.token_hex(hex_chars // 2)


def unique_id(model: type[models.Model], prefix: str, hex_chars: int = 12) -> str:
    """A fresh id not yet used by `model` (regenerated on the unlikely collision)."""
    while True:
        candidate = new_id(prefix, hex_chars)
        if not model._default_manager.filter(pk=candidate).exists():
            return candidate


def id_pattern(prefix: str, hex_chars: int = 12) -> str:
    """Regex of a well-formed id; used to answer 404 for a malformed id in a path (spec §1.10)."""
    return rf"^{prefix}[0-9a-f]{{{hex_chars}}}$"
