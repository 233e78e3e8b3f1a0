"""The key format (spec §2.1–2.3): generation, parsing, hashing and the display hint.

Pure functions, no database access. `parse_key` is the first step of every verification.
"""

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "mmc_"
MAX_KEY_LENGTH = 512
HINT_PREFIX = "mmc_\u2026"


@dataclass(frozen=True)
class ParsedKey:
    tenant_id: str
    agent_id: str
    random_hash: str
    version: str
    format: str  # "current" or "legacy"

    def as_dict(self) -> dict:
        return {
            "format_valid": True,
            "format": self.format,
            "tenant_id": self.tenant_id,
            "agent_id": self.agent_id,
            "random_hash": self.random_hash,
            "version": self.version,
        }


def generate_key(tenant_id: str, agent_id: str) -> tuple[str, str]:
    """A fresh secret for the agent: returns `(raw_key, random_part)` (128 random bits)."""
    random_part = secrets.token_hex(16)
    payload = f"{tenant_id}_{agent_id}_{random_part}_v1"
    return KEY_PREFIX + base64.b64encode(payload.encode("utf-8")).decode("ascii"), random_part


def hash_key(raw_key: str) -> str:
    """Lower-case hex SHA-256 of the whole key string (what is stored)."""
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def key_hint(random_part: str) -> str:
    """`mmc_…` + the last 4 characters of the random part."""
    return HINT_PREFIX + random_part[-4:]


def parse_key(value) -> ParsedKey | None:
    """Parse a presented key the way the original service did (spec §2.2); None when invalid."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) > MAX_KEY_LENGTH or not text.startswith(KEY_PREFIX):
        return None
    try:
        # Like base64.b64decode(s) without validate=True: characters outside the alphabet are dropped.
        decoded = base64.b64decode(text[len(KEY_PREFIX):]).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    parts = decoded.split("_")
    if len(parts) >= 6:
        return ParsedKey(f"{parts[0]}_{parts[1]}", f"{parts[2]}_{parts[3]}", parts[4], parts[5], "current")
    if len(parts) >= 4:
        return ParsedKey(parts[0], parts[1], parts[2], parts[3], "legacy")
    return None
