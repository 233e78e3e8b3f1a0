"""Provider API keys at rest (agent-config.md §8): stored encrypted (Fernet) as `enc:v1:<token>`, never
returned (every read goes through `presentation.mask_document`), decrypted only to call the provider."""

from __future__ import annotations

import base64
import copy
import hashlib
import logging
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

logger = logging.getLogger("maimconfig.agents")

MASK = "********"
ENCRYPTED_PREFIX = "enc:v1:"


class StoredSecret(str):
    """A provider key kept from the stored document (its ciphertext in `.token`).

    Its string value is the mask, so validation and size checks see a short valid string; `to_storage`
    writes the ciphertext back. It never reaches the database or a response as such.
    """

    token: str

    def __new__(cls, token: str):
        obj = super().__new__(cls, MASK)
        obj.token = token
        return obj

    def __deepcopy__(self, memo):
        return self


def _fernet_key(configured: str) -> Fernet:
    """The Fernet of a configured secrets key: used as is when it is a Fernet key, else derived from it."""
    try:
        return Fernet(configured.encode())
    except (ValueError, TypeError):
        return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"maimconfig.secrets-key:" + configured.encode())
                                               .digest()))


def _derived_from_secret_key(secret_key: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"maimconfig.provider-keys:" + secret_key.encode())
                                           .digest()))


def _fernets() -> list[Fernet]:
    """The current provider-key Fernet first, then the earlier ones still accepted for decryption.

    Current: `MAIMCONFIG_SECRETS_KEY`, else derived from `SECRET_KEY`. Earlier, in order:
    `MAIMCONFIG_SECRETS_KEY_FALLBACKS`; the `SECRET_KEY`-derived key when `MAIMCONFIG_SECRETS_KEY` is set
    (a deployment that starts setting it keeps reading what it stored before); keys derived from
    Django's `SECRET_KEY_FALLBACKS`.
    """
    configured = getattr(settings, "MAIMCONFIG_SECRETS_KEY", "") or ""
    keys = [_fernet_key(configured) if configured else _derived_from_secret_key(settings.SECRET_KEY)]
    keys += [_fernet_key(key) for key in getattr(settings, "MAIMCONFIG_SECRETS_KEY_FALLBACKS", []) if key]
    if configured:
        keys.append(_derived_from_secret_key(settings.SECRET_KEY))
    keys += [_derived_from_secret_key(key) for key in getattr(settings, "SECRET_KEY_FALLBACKS", []) if key]
    return keys


def _fernet() -> MultiFernet:
    """Encrypts with the current key; decrypts with it or with any earlier one still configured."""
    return MultiFernet(_fernets())


def encrypt_secret(plaintext: str) -> str:
    return ENCRYPTED_PREFIX + _fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt_secret(stored: str) -> str:
    """The plaintext of a stored key (under the current key or an earlier one); raises ValueError when it
    cannot be decrypted."""
    if not stored.startswith(ENCRYPTED_PREFIX):
        raise ValueError("not an encrypted value")
    try:
        return _fernet().decrypt(stored.removeprefix(ENCRYPTED_PREFIX).encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise ValueError("cannot decrypt") from exc


def reencrypt_secret(stored: str) -> str | None:
    """`stored` re-encrypted under the current key, or None when it already is; ValueError when no
    configured key decrypts it."""
    if not stored.startswith(ENCRYPTED_PREFIX):
        raise ValueError("not an encrypted value")
    token = stored.removeprefix(ENCRYPTED_PREFIX).encode("ascii")
    keys = _fernets()
    try:
        keys[0].decrypt(token)
        return None
    except InvalidToken:
        pass
    try:
        return ENCRYPTED_PREFIX + MultiFernet(keys).rotate(token).decode("ascii")
    except InvalidToken as exc:
        raise ValueError("cannot decrypt") from exc


def reencrypt_document(doc: dict) -> tuple[dict, int, list[str]]:
    """The document with every provider key under the current key: `(document, re-encrypted count,
    names of the providers whose key no configured key decrypts)`. Those keys are left as they are."""
    doc = copy.deepcopy(doc)
    rotated, failed = 0, []
    for entry in providers(doc):
        key = entry.get("api_key") if isinstance(entry, dict) else None
        if not isinstance(key, str) or not key:
            continue
        try:
            new = reencrypt_secret(key)
        except ValueError:
            failed.append(str(entry.get("name")))
            continue
        if new is not None:
            entry["api_key"] = new
            rotated += 1
    return doc, rotated, failed


def providers(doc: Any) -> list:
    """The `config_overrides.model.api_providers` list of `doc` ([] when absent or malformed)."""
    try:
        providers = doc["config_overrides"]["model"]["api_providers"]
    except (KeyError, TypeError):
        return []
    return providers if isinstance(providers, list) else []


def provider_key(name: Any) -> str | None:
    return name.strip().casefold() if isinstance(name, str) else None


def stored_keys(doc: dict) -> dict[str, str]:
    """Provider name (case-folded) -> stored (encrypted) key, for the providers that have one."""
    out = {}
    for entry in providers(doc):
        if isinstance(entry, dict):
            name, key = provider_key(entry.get("name")), entry.get("api_key")
            if name is not None and isinstance(key, str) and key and name not in out:
                out[name] = key
    return out


def provider_api_key(agent, provider_name: str) -> str | None:
    """The decrypted key of the agent's provider `provider_name` (case-insensitive) for chat.

    Returns `""` when the provider has no key (or does not exist) and `None` when the stored key cannot be
    decrypted (the provider is then unusable, agent-config.md §7.3, §8). The key is never logged.
    """
    stored = stored_keys(agent.config or {}).get(provider_key(provider_name) or "")
    if not stored:
        return ""
    try:
        return decrypt_secret(stored)
    except ValueError:
        logger.error("Provider key of agent %s provider %r cannot be decrypted", agent.pk, provider_name)
        return None



def decrypts_to(token: str, plaintext: str) -> bool:
    try:
        return decrypt_secret(token) == plaintext
    except ValueError:
        return False
