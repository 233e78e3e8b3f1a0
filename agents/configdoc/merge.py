"""Writing a document (agent-config.md §4–§5): normalization, JSON merge patch or replace, the storage
form, and `prepare_write`, the whole pipeline without touching the database."""

from __future__ import annotations

import copy
from typing import Any

from django.utils.translation import gettext, gettext_noop

from agents.configdoc.paths import path_of
from agents.configdoc.secrets import (
    MASK, StoredSecret, decrypts_to, encrypt_secret, provider_key, providers, stored_keys,
)
from agents.configdoc.validation import NOT_AN_OBJECT, TOO_DEEP, check_system_providers, raise_if_invalid
from core.errors import ErrorCode
from core.exceptions import validation_error
from core.validation import MAX_JSON_NESTING, NON_FIELD, too_deep

RESERVED_TOP_LEVEL = "warnings"
MASK_WITHOUT_KEY = gettext_noop("The masked value can only keep an existing key; send the real key.")
MASK_HOST_CHANGED = gettext_noop("The provider's base_url names another host than the stored key was entered for; "
                                 "send the key again.")


def _url_host(url: Any) -> str:
    """`host:port` of a base_url (lower-case), "" when there is none: a stored key follows its host only."""
    from urllib.parse import urlsplit

    if not isinstance(url, str) or not url:
        return ""
    try:
        parts = urlsplit(url)
        return f"{(parts.hostname or '').lower()}:{parts.port or ''}"
    except ValueError:
        return url


def normalize_document(doc: dict, *, stored: dict | None = None, prefix: str = "") -> dict:
    """Normalize a request document (agent-config.md §4.1) into a new dict.

    String `persona` -> `{"personality": s}`; integer `qq_account` -> string; top-level `warnings`
    dropped; provider masks resolved against `stored` (the document before the request): a mask keeps
    that provider's stored key, or is AGENT_012 when there is none.
    """
    doc = copy.deepcopy(doc)
    doc.pop(RESERVED_TOP_LEVEL, None)
    if isinstance(doc.get("persona"), str):
        doc["persona"] = {"personality": doc["persona"]}
    bot = doc.get("bot_overrides")
    if isinstance(bot, dict):
        account = bot.get("qq_account")
        if isinstance(account, int) and not isinstance(account, bool):
            bot["qq_account"] = str(account)
    kept_keys = stored_keys(stored or {})
    stored_hosts = {provider_key(e.get("name")): _url_host(e.get("base_url"))
                    for e in providers(stored or {}) if isinstance(e, dict)}
    errors: dict[str, list[str]] = {}
    for index, entry in enumerate(providers(doc)):
        if isinstance(entry, dict) and entry.get("api_key") == MASK:
            name = provider_key(entry.get("name")) or ""
            token = kept_keys.get(name)
            path = path_of(["config_overrides", "model", "api_providers", index, "api_key"], prefix)
            if not token:
                errors[path] = [gettext(MASK_WITHOUT_KEY)]
            elif _url_host(entry.get("base_url")) != stored_hosts.get(name):
                # A stored key is never sent to a host it was not entered for (agent-config.md, egress).
                errors[path] = [gettext(MASK_HOST_CHANGED)]
            else:
                entry["api_key"] = StoredSecret(token)
    if errors:
        raise validation_error(errors, code=ErrorCode.AGENT_012)
    return doc


def deep_merge(base: Any, patch: Any) -> Any:
    """JSON merge patch (agent-config.md §4.2): objects merge, arrays and scalars replace, null deletes.

    Neither argument is modified.
    """
    if not isinstance(patch, dict):
        return _copy(patch)
    target = _copy(base) if isinstance(base, dict) else {}
    _merge_into(target, patch)
    return target


_SCALARS = (str, int, float, bool, type(None))


def _copy(value: Any) -> Any:
    """A deep copy of a JSON-shaped value: dicts and lists copied, scalars shared (immutable), anything else
    through `copy.deepcopy`. Several times faster than `copy.deepcopy` of the whole (no memo)."""
    if isinstance(value, dict):
        return {k: v if isinstance(v, _SCALARS) else _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if isinstance(v, _SCALARS) else _copy(v) for v in value]
    if isinstance(value, _SCALARS):
        return value
    return copy.deepcopy(value)


def _merge_into(target: dict, patch: dict) -> None:
    """Apply `patch` to `target` (a private copy) in place: each level of `base` is copied once, not once
    per level of nesting (the chat lane merges a document on every request)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            if not isinstance(current, dict):
                current = target[key] = {}
            _merge_into(current, value)
        else:
            target[key] = _copy(value)


def strip_nulls(value: Any) -> Any:
    """Drop keys whose value is null, at every depth (null is never a stored value, §2)."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def load_stored(doc: dict | None) -> dict:
    """The stored document prepared for a write: provider keys wrapped as `StoredSecret`."""
    doc = copy.deepcopy(doc or {})
    for entry in providers(doc):
        if isinstance(entry, dict) and isinstance(entry.get("api_key"), str) and entry["api_key"]:
            entry["api_key"] = StoredSecret(entry["api_key"])
    return doc


def to_storage(doc: dict, *, previous: dict | None = None) -> dict:
    """The document as stored: kept keys back to their ciphertext, new keys encrypted.

    A plaintext equal to the key already stored for the same provider reuses that ciphertext, so
    re-sending an unchanged key does not count as a change.
    """
    doc = copy.deepcopy(doc)
    previous_keys = stored_keys(previous or {})
    for entry in providers(doc):
        if not isinstance(entry, dict) or "api_key" not in entry:
            continue
        key = entry["api_key"]
        if isinstance(key, StoredSecret):
            entry["api_key"] = key.token
        elif isinstance(key, str) and key:
            old = previous_keys.get(provider_key(entry.get("name")) or "")
            entry["api_key"] = old if old and decrypts_to(old, key) else encrypt_secret(key)
    assert not any(isinstance(e, dict) and e.get("api_key") == MASK for e in providers(doc)), \
        "a mask must never be stored as a key"
    return doc


def prepare_write(stored: dict | None, request_doc: Any, *, mode: str = "merge", prefix: str = "",
                  whole_key: str = NON_FIELD) -> dict:
    """The whole write pipeline of agent-config.md §4–§5, without touching the database.

    normalize (persona, qq_account, masks) -> merge into / replace `stored` -> drop nulls -> validate
    (AGENT_012) -> system-provider rule (AGENT_011) -> storage form (keys encrypted). Returns the
    document to store.
    """
    if not isinstance(request_doc, dict):
        raise validation_error({prefix or whole_key: [gettext(NOT_AN_OBJECT)]}, code=ErrorCode.AGENT_012)
    if too_deep(request_doc):  # before any deepcopy (issue 12, item 7)
        raise validation_error({prefix or whole_key: [gettext(TOO_DEEP).format(limit=MAX_JSON_NESTING)]},
                               code=ErrorCode.AGENT_012)
    normalized = normalize_document(request_doc, stored=stored, prefix=prefix)
    if mode == "replace":
        result = strip_nulls(normalized)
    else:
        result = strip_nulls(deep_merge(load_stored(stored), normalized))
    raise_if_invalid(result, prefix=prefix, whole_key=whole_key)
    check_system_providers(result, prefix=prefix)
    return to_storage(result, previous=stored)

