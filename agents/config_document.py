"""The agent configuration document (agent-config.md): schema, normalization, merge, validation,
warnings, effective view, masking and the encryption of provider keys.

The JSON Schema in `agents/schemas/agent_config.schema.json` is the single source of truth for the
document's known fields, their types, ranges and defaults. It carries a few annotation keywords that
JSON Schema validators ignore and this module reads:

* `x-unknown-code` on an object: extra keys are kept and warned with this code;
* `x-label`: how the object is named in warning messages;
* `x-enum` on a string: the known values (another string is kept and warned `unknown_value`);
* `x-message`: the error message for the node, instead of one built from its type and range.

Provider `api_key` values are stored encrypted (Fernet, agent-config.md §8) as `enc:v1:<token>` and are
never returned: every read goes through `mask_document`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
import math
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from core.errors import ErrorCode
from core.exceptions import validation_error
from core.validation import NON_FIELD

logger = logging.getLogger("maimconfig.agents")

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "agent_config.schema.json"
CONFIG_SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

MASK = "********"
MAX_DOCUMENT_BYTES = 256 * 1024
MAX_DEPTH = 32
ENCRYPTED_PREFIX = "enc:v1:"
RESERVED_TOP_LEVEL = "warnings"

MASK_WITHOUT_KEY = "The masked value can only keep an existing key; send the real key."
NOT_AN_OBJECT = "Must be a JSON object."
TOO_LARGE = f"The configuration document must be at most {MAX_DOCUMENT_BYTES} bytes when serialized."
TOO_DEEP = f"The configuration document must not be nested deeper than {MAX_DEPTH} levels."
NOT_FINITE = "The configuration document must not contain numbers outside the range of JSON (such as 1e999)."
DUPLICATE_NAME = "Names must be unique within {list_name} (case-insensitive); '{name}' is repeated."
SYSTEM_PROVIDER_DEFINED = "'{name}' is a system provider; agents cannot define a provider with this name."
SYSTEM_PROVIDER_REFERENCED = "'{name}' is a system provider; agents cannot reference it in their own models."

_PLAIN_KEY = re.compile(r"^[^.\[\]]+$")


# --------------------------------------------------------------------------------------------------
# Paths


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


# --------------------------------------------------------------------------------------------------
# Schema helpers


def _resolve(node: dict) -> dict:
    """Follow a local `$ref` (`#/$defs/name`), keeping sibling keywords."""
    ref = node.get("$ref")
    if not ref:
        return node
    target = CONFIG_SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return _resolve(merged) if "$ref" in target else merged


def _defaults_of(node: dict) -> Any:
    node = _resolve(node)
    if "default" in node:
        return copy.deepcopy(node["default"])
    if node.get("type") == "object" and "properties" in node:
        out = {}
        for key, sub in node["properties"].items():
            value = _defaults_of(sub)
            if value is not _NO_DEFAULT:
                out[key] = value
        return out
    return _NO_DEFAULT


_NO_DEFAULT = object()


def _entry_defaults(def_name: str) -> dict:
    node = CONFIG_SCHEMA["$defs"][def_name]
    return {k: copy.deepcopy(v["default"]) for k, v in node["properties"].items() if "default" in v}


#: The documented defaults (agent-config.md §3, §6.2), read from the schema's `default` keywords.
CONFIG_DEFAULTS: dict[str, Any] = _defaults_of(CONFIG_SCHEMA)
PROVIDER_DEFAULTS: dict[str, Any] = _entry_defaults("provider")
MODEL_DEFAULTS: dict[str, Any] = _entry_defaults("model")
TASK_DEFAULTS: dict[str, Any] = _entry_defaults("task")
KNOWN_SECTIONS: tuple[str, ...] = tuple(CONFIG_SCHEMA["properties"]["config_overrides"]["properties"])
KNOWN_TASKS: tuple[str, ...] = tuple(
    CONFIG_SCHEMA["properties"]["config_overrides"]["properties"]["model"]["properties"]["model_task_config"][
        "properties"
    ]
)


def _is_int(checker, instance) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


_format_checker = jsonschema.FormatChecker(formats=())


@_format_checker.checks("regex", raises=(re.error, RecursionError, OverflowError))
def _check_regex(instance) -> bool:
    if isinstance(instance, str):
        re.compile(instance)
    return True


@_format_checker.checks("http-url-or-empty")
def _check_url(instance) -> bool:
    if not isinstance(instance, str) or instance == "":
        return True
    try:
        parts = urlsplit(instance)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not any(c.isspace() for c in instance)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_int),
)


@cache
def _validator():
    return _Validator(CONFIG_SCHEMA, format_checker=_format_checker)


def _fmt(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return str(value)


def describe(node: dict) -> str:
    """The error message of a schema node, built from its type and range."""
    node = _resolve(node)
    if "x-message" in node:
        return node["x-message"]
    kind = node.get("type")
    if kind in ("integer", "number"):
        noun = "an integer" if kind == "integer" else "a number"
        low, high, exclusive = node.get("minimum"), node.get("maximum"), node.get("exclusiveMinimum")
        if low is not None and high is not None:
            return f"Must be {noun} between {_fmt(low)} and {_fmt(high)}."
        if low is not None:
            return f"Must be {noun} greater than or equal to {_fmt(low)}."
        if exclusive is not None:
            return f"Must be {noun} greater than {_fmt(exclusive)}."
        return f"Must be {noun}."
    if kind == "string":
        low, high = node.get("minLength"), node.get("maxLength")
        if node.get("format") == "regex":
            extra = " that is a valid regular expression"
        elif node.get("format") == "http-url-or-empty":
            return f'Must be "" or an absolute http(s) URL of at most {high} characters.'
        else:
            extra = ""
        if low and high:
            return f"Must be a string of {low} to {high} characters{extra}."
        if high:
            return f"Must be a string of at most {high} characters{extra}."
        return f"Must be a string{extra}."
    if kind == "boolean":
        return "Must be a boolean (true or false)."
    if kind == "object":
        return NOT_AN_OBJECT
    if kind == "array":
        if "maxItems" in node:
            return f"Must be an array of at most {node['maxItems']} items."
        return "Must be an array."
    return "Invalid value."


# --------------------------------------------------------------------------------------------------
# Secrets


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
    for entry in _providers(doc):
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


def _providers(doc: Any) -> list:
    """The `config_overrides.model.api_providers` list of `doc` ([] when absent or malformed)."""
    try:
        providers = doc["config_overrides"]["model"]["api_providers"]
    except (KeyError, TypeError):
        return []
    return providers if isinstance(providers, list) else []


def _provider_key(name: Any) -> str | None:
    return name.strip().casefold() if isinstance(name, str) else None


def _stored_keys(doc: dict) -> dict[str, str]:
    """Provider name (case-folded) -> stored (encrypted) key, for the providers that have one."""
    out = {}
    for entry in _providers(doc):
        if isinstance(entry, dict):
            name, key = _provider_key(entry.get("name")), entry.get("api_key")
            if name is not None and isinstance(key, str) and key and name not in out:
                out[name] = key
    return out


def provider_api_key(agent, provider_name: str) -> str | None:
    """The decrypted key of the agent's provider `provider_name` (case-insensitive) for chat.

    Returns `""` when the provider has no key (or does not exist) and `None` when the stored key cannot be
    decrypted (the provider is then unusable, agent-config.md §7.3, §8). The key is never logged.
    """
    stored = _stored_keys(agent.config or {}).get(_provider_key(provider_name) or "")
    if not stored:
        return ""
    try:
        return decrypt_secret(stored)
    except ValueError:
        logger.error("Provider key of agent %s provider %r cannot be decrypted", agent.pk, provider_name)
        return None


# --------------------------------------------------------------------------------------------------
# Writing: normalization, merge, replace


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
    stored_keys = _stored_keys(stored or {})
    errors: dict[str, list[str]] = {}
    for index, entry in enumerate(_providers(doc)):
        if isinstance(entry, dict) and entry.get("api_key") == MASK:
            token = stored_keys.get(_provider_key(entry.get("name")) or "")
            if token:
                entry["api_key"] = StoredSecret(token)
            else:
                path = path_of(["config_overrides", "model", "api_providers", index, "api_key"], prefix)
                errors[path] = [MASK_WITHOUT_KEY]
    if errors:
        raise validation_error(errors, code=ErrorCode.AGENT_012)
    return doc


def deep_merge(base: Any, patch: Any) -> Any:
    """JSON merge patch (agent-config.md §4.2): objects merge, arrays and scalars replace, null deletes.

    Neither argument is modified.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    target = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = deep_merge(target.get(key), value)
    return target


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
    for entry in _providers(doc):
        if isinstance(entry, dict) and isinstance(entry.get("api_key"), str) and entry["api_key"]:
            entry["api_key"] = StoredSecret(entry["api_key"])
    return doc


def to_storage(doc: dict, *, previous: dict | None = None) -> dict:
    """The document as stored: kept keys back to their ciphertext, new keys encrypted.

    A plaintext equal to the key already stored for the same provider reuses that ciphertext, so
    re-sending an unchanged key does not count as a change.
    """
    doc = copy.deepcopy(doc)
    previous_keys = _stored_keys(previous or {})
    for entry in _providers(doc):
        if not isinstance(entry, dict) or "api_key" not in entry:
            continue
        key = entry["api_key"]
        if isinstance(key, StoredSecret):
            entry["api_key"] = key.token
        elif isinstance(key, str) and key:
            old = previous_keys.get(_provider_key(entry.get("name")) or "")
            entry["api_key"] = old if old and _decrypts_to(old, key) else encrypt_secret(key)
    assert not any(isinstance(e, dict) and e.get("api_key") == MASK for e in _providers(doc)), \
        "a mask must never be stored as a key"
    return doc


def _decrypts_to(token: str, plaintext: str) -> bool:
    try:
        return decrypt_secret(token) == plaintext
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------------
# Validation


def _document_size(doc: dict) -> int:
    return len(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _check_limits(doc: dict) -> str | None:
    stack = [(doc, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                return NOT_FINITE
            continue
        if level > MAX_DEPTH:
            return TOO_DEEP
        if isinstance(value, dict):
            stack.extend((v, level + 1) for v in value.values() if isinstance(v, (dict, list, float)))
        elif isinstance(value, list):
            stack.extend((v, level + 1) for v in value if isinstance(v, (dict, list, float)))
    if _document_size(doc) > MAX_DOCUMENT_BYTES:
        return TOO_LARGE
    return None


def _schema_errors(doc: dict, prefix: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}

    def add(path: str, message: str) -> None:
        messages = errors.setdefault(path, [])
        if message not in messages:
            messages.append(message)

    for error in _validator().iter_errors(doc):
        parts = list(error.absolute_path)
        if error.validator == "required":
            for name in error.validator_value:
                if isinstance(error.instance, dict) and name not in error.instance:
                    add(path_of([*parts, name], prefix), "This field is required.")
        elif error.validator == "maxItems":
            add(path_of(parts, prefix), f"Must have at most {error.validator_value} items.")
        else:
            add(path_of(parts, prefix), describe(error.schema))
    return errors


def _name_errors(doc: dict, prefix: str) -> dict[str, list[str]]:
    """Names unique (case-insensitive) within `api_providers` and within `models` (§5.1)."""
    errors: dict[str, list[str]] = {}
    try:
        model = doc["config_overrides"]["model"]
    except (KeyError, TypeError):
        return errors
    if not isinstance(model, dict):
        return errors
    for list_name in ("api_providers", "models"):
        entries = model.get(list_name)
        if not isinstance(entries, list):
            continue
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            key = _provider_key(entry["name"])
            if key in seen:
                path = path_of(["config_overrides", "model", list_name, index, "name"], prefix)
                errors.setdefault(path, []).append(DUPLICATE_NAME.format(list_name=list_name, name=entry["name"]))
            seen.add(key)
    return errors


def _raise_if_invalid(doc: Any, *, prefix: str, whole_key: str) -> None:
    if not isinstance(doc, dict):
        raise validation_error({prefix or whole_key: [NOT_AN_OBJECT]}, code=ErrorCode.AGENT_012)
    problem = _check_limits(doc)
    if problem:
        raise validation_error({prefix or whole_key: [problem]}, code=ErrorCode.AGENT_012)
    errors = _schema_errors(doc, prefix)
    for path, messages in _name_errors(doc, prefix).items():
        errors.setdefault(path, []).extend(messages)
    if errors:
        raise validation_error(dict(sorted(errors.items())), code=ErrorCode.AGENT_012)


def validate_document(doc: Any, *, prefix: str = "", whole_key: str = NON_FIELD,
                      system_models: set[str] | None = None) -> list[dict]:
    """Validate a resulting document (agent-config.md §5.1); return its warnings (§5.3).

    Raises AGENT_012 with every failure keyed by path (`prefix` prepended, e.g. `config`); errors about
    the document as a whole go under `prefix`, or `whole_key` without one. The system-provider rule is
    `check_system_providers`.
    """
    _raise_if_invalid(doc, prefix=prefix, whole_key=whole_key)
    return document_warnings(doc, system_models=system_models)


def check_system_providers(doc: dict, *, prefix: str = "", system_providers: set[str] | None = None) -> None:
    """The system-provider rule (agent-config.md §5.4): AGENT_011 naming every offending path."""
    if system_providers is None:
        from core.catalogue import system_provider_names

        system_providers = system_provider_names()
    errors: dict[str, list[str]] = {}
    try:
        model = doc["config_overrides"]["model"]
    except (KeyError, TypeError):
        return
    for list_name, field, message in (("api_providers", "name", SYSTEM_PROVIDER_DEFINED),
                                      ("models", "api_provider", SYSTEM_PROVIDER_REFERENCED)):
        for index, entry in enumerate(model.get(list_name) or []):
            value = entry.get(field) if isinstance(entry, dict) else None
            if isinstance(value, str) and _provider_key(value) in system_providers:
                path = path_of(["config_overrides", "model", list_name, index, field], prefix)
                errors[path] = [message.format(name=value.strip())]
    if errors:
        raise validation_error(errors, code=ErrorCode.AGENT_011)


def prepare_write(stored: dict | None, request_doc: Any, *, mode: str = "merge", prefix: str = "",
                  whole_key: str = NON_FIELD) -> dict:
    """The whole write pipeline of agent-config.md §4–§5, without touching the database.

    normalize (persona, qq_account, masks) -> merge into / replace `stored` -> drop nulls -> validate
    (AGENT_012) -> system-provider rule (AGENT_011) -> storage form (keys encrypted). Returns the
    document to store.
    """
    if not isinstance(request_doc, dict):
        raise validation_error({prefix or whole_key: [NOT_AN_OBJECT]}, code=ErrorCode.AGENT_012)
    normalized = normalize_document(request_doc, stored=stored, prefix=prefix)
    if mode == "replace":
        result = strip_nulls(normalized)
    else:
        result = strip_nulls(deep_merge(load_stored(stored), normalized))
    _raise_if_invalid(result, prefix=prefix, whole_key=whole_key)
    check_system_providers(result, prefix=prefix)
    return to_storage(result, previous=stored)


# --------------------------------------------------------------------------------------------------
# Reading: warnings, effective view, masks


def _warn_walk(node: dict, value: Any, parts: list, out: list[dict]) -> None:
    node = _resolve(node)
    if isinstance(value, dict) and "properties" in node:
        code = node.get("x-unknown-code")
        label = node.get("x-label", "this object")
        for key, sub in value.items():
            if key in node["properties"]:
                _warn_walk(node["properties"][key], sub, [*parts, key], out)
            elif code:
                out.append(_warning(parts + [key], code, label))
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for index, item in enumerate(value):
            _warn_walk(node["items"], item, [*parts, index], out)
    elif isinstance(value, str) and "x-enum" in node and value not in node["x-enum"]:
        known = ", ".join(f'"{v}"' for v in node["x-enum"])
        out.append({"path": path_of(parts), "code": "unknown_value",
                    "message": f"Not one of the known values ({known}); kept as given."})


def _warning(parts: list, code: str, label: str) -> dict:
    messages = {
        "unknown_key": f"Not a known field of {label}; kept as given.",
        "unknown_section": "Not a known section of config_overrides; kept as given (not inspected).",
        "unknown_task": "Not a known task of model_task_config; kept as given (not inspected).",
    }
    return {"path": path_of(parts), "code": code, "message": messages[code]}


def document_warnings(doc: dict, *, system_models: set[str] | None = None) -> list[dict]:
    """Warnings of a (valid) stored document (agent-config.md §5.3), sorted by path.

    `system_models`: case-folded names of the system catalogue's models (read from the catalogue when
    None; pass `set()` to skip the `unknown_model` check).
    """
    out: list[dict] = []
    if not isinstance(doc, dict):
        return out
    _warn_walk(CONFIG_SCHEMA, doc, [], out)
    model = doc.get("config_overrides", {}).get("model") if isinstance(doc.get("config_overrides"), dict) else None
    if isinstance(model, dict):
        provider_names = {_provider_key(p.get("name")) for p in model.get("api_providers") or []
                          if isinstance(p, dict)}
        model_names = {_provider_key(m.get("name")) for m in model.get("models") or [] if isinstance(m, dict)}
        for index, entry in enumerate(model.get("models") or []):
            if isinstance(entry, dict):
                provider = entry.get("api_provider", "")
                if isinstance(provider, str) and _provider_key(provider) not in provider_names:
                    out.append({"path": path_of(["config_overrides", "model", "models", index, "api_provider"]),
                                "code": "unknown_provider",
                                "message": "Does not name an entry of api_providers."})
        tasks = model.get("model_task_config")
        if system_models is None:
            from core.catalogue import system_model_names

            system_models = system_model_names()
        if isinstance(tasks, dict):
            for task_name, task in tasks.items():
                if task_name not in KNOWN_TASKS or not isinstance(task, dict):
                    continue
                for index, name in enumerate(task.get("model_list") or []):
                    key = _provider_key(name)
                    if key is not None and key not in model_names and key not in system_models:
                        out.append({
                            "path": path_of(["config_overrides", "model", "model_task_config", task_name,
                                             "model_list", index]),
                            "code": "unknown_model",
                            "message": "Names neither a model of this agent nor a system catalogue model.",
                        })
    return sorted(out, key=lambda w: (w["path"], w["code"]))


def effective_document(doc: dict | None) -> dict:
    """The stored document merged over the documented defaults (agent-config.md §6.2)."""
    result = deep_merge(CONFIG_DEFAULTS, doc or {})
    model = result.get("config_overrides", {}).get("model")
    if isinstance(model, dict):
        if isinstance(model.get("api_providers"), list):
            model["api_providers"] = [{**PROVIDER_DEFAULTS, **p} if isinstance(p, dict) else p
                                      for p in model["api_providers"]]
        if isinstance(model.get("models"), list):
            model["models"] = [{**MODEL_DEFAULTS, **m} if isinstance(m, dict) else m for m in model["models"]]
        tasks = model.get("model_task_config")
        if isinstance(tasks, dict):
            for name in KNOWN_TASKS:
                if isinstance(tasks.get(name), dict):
                    tasks[name] = {**TASK_DEFAULTS, **tasks[name]}
    return result


def mask_document(doc: dict | None) -> dict:
    """A copy for responses: every provider `api_key` is `"********"` when a key is stored, else `""`."""
    doc = copy.deepcopy(doc or {})
    for entry in _providers(doc):
        if isinstance(entry, dict):
            entry["api_key"] = MASK if isinstance(entry.get("api_key"), str) and entry["api_key"] else ""
    return doc


# --------------------------------------------------------------------------------------------------
# OpenAPI


def _to_openapi(node: Any, *, request: bool) -> Any:
    """Convert the JSON Schema (2020-12) into an OpenAPI 3.0 schema object (refs inlined)."""
    if isinstance(node, list):
        return [_to_openapi(v, request=request) for v in node]
    if not isinstance(node, dict):
        return node
    node = _resolve(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$schema", "$id", "$defs", "$comment", "x-message", "x-label"):
            continue
        if key == "exclusiveMinimum":
            out["minimum"] = value
            out["exclusiveMinimum"] = True
        elif key == "default" and value is None:
            out["nullable"] = True
        elif key == "format" and value == "http-url-or-empty":
            # "" is allowed (no URL), which OpenAPI's `uri` format would reject: describe it instead.
            out["description"] = (out.get("description", "") + " An http(s) URL, or empty.").strip()
        elif key in ("properties",):
            out[key] = {k: _to_openapi(v, request=request) for k, v in value.items()}
        elif key in ("items", "anyOf"):
            out[key] = _to_openapi(value, request=request)
        else:
            out[key] = copy.deepcopy(value)
    if node.get("type") == "object":
        out.setdefault("additionalProperties", True)
    return out


@cache
def openapi_schema(request: bool = False) -> dict:
    """The document's schema for drf-spectacular (`persona` may be a string on input)."""
    schema = _to_openapi(CONFIG_SCHEMA, request=request)
    if request:
        persona = schema["properties"]["persona"]
        schema["properties"]["persona"] = {
            "description": persona.get("description", ""),
            "oneOf": [{"type": "string"}, {k: v for k, v in persona.items() if k != "description"}],
        }
    return schema
