"""Validating a document (agent-config.md §5): size and depth limits, the JSON Schema, unique names, the
system-provider rule (AGENT_011), and the warnings of a valid document (§5.3)."""

from __future__ import annotations

import json
import math
from typing import Any

from django.utils.translation import gettext, gettext_noop

from agents.configdoc.paths import path_of
from agents.configdoc.secrets import provider_key, providers
from catalogue.schema import CONFIG_SCHEMA, KNOWN_TASKS, NOT_AN_OBJECT, describe, resolve, validator
from catalogue.selectors import system_model_names, system_provider_names
from core import egress
from core.errors import ErrorCode
from core.exceptions import validation_error
from core.validation import MAX_JSON_DEPTH, MAX_JSON_NESTING, NON_FIELD, too_deep

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_DEPTH = MAX_JSON_DEPTH  # the one depth rule of stored JSON (core.validation): 31 nested objects/arrays

TOO_LARGE = gettext_noop("The configuration document must be at most {limit} bytes when serialized.")
TOO_DEEP = gettext_noop("The configuration document must not be nested deeper than {limit} levels of objects and "
                        "arrays.")
NOT_FINITE = gettext_noop("The configuration document must not contain numbers outside the range of JSON (such as "
                          "1e999).")
DUPLICATE_NAME = gettext_noop("Names must be unique within {list_name} (case-insensitive); '{name}' is repeated.")
SYSTEM_PROVIDER_DEFINED = gettext_noop("'{name}' is a system provider; agents cannot define a provider with this name.")
SYSTEM_PROVIDER_REFERENCED = gettext_noop("'{name}' is a system provider; agents cannot reference it in their own "
                                          "models.")

__all__ = ["NOT_AN_OBJECT", "check_system_providers", "document_warnings", "raise_if_invalid", "validate_document"]


def _document_size(doc: dict) -> int:
    return len(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _check_limits(doc: dict) -> str | None:
    if too_deep(doc):
        return gettext(TOO_DEEP).format(limit=MAX_JSON_NESTING)
    stack = [doc]
    while stack:
        value = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                return gettext(NOT_FINITE)
        elif isinstance(value, dict):
            stack.extend(v for v in value.values() if isinstance(v, (dict, list, float)))
        elif isinstance(value, list):
            stack.extend(v for v in value if isinstance(v, (dict, list, float)))
    if _document_size(doc) > MAX_DOCUMENT_BYTES:
        return gettext(TOO_LARGE).format(limit=MAX_DOCUMENT_BYTES)
    return None


def _schema_errors(doc: dict, prefix: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}

    def add(path: str, message: str) -> None:
        messages = errors.setdefault(path, [])
        if message not in messages:
            messages.append(message)

    for error in validator().iter_errors(doc):
        parts = list(error.absolute_path)
        if error.validator == "required":
            for name in error.validator_value:
                if isinstance(error.instance, dict) and name not in error.instance:
                    add(path_of([*parts, name], prefix), gettext("This field is required."))
        elif error.validator == "maxItems":
            add(path_of(parts, prefix), gettext("Must have at most %(count)s items.") % {"count": error.validator_value})
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
            key = provider_key(entry["name"])
            if key in seen:
                path = path_of(["config_overrides", "model", list_name, index, "name"], prefix)
                errors.setdefault(path, []).append(gettext(DUPLICATE_NAME).format(list_name=list_name, name=entry["name"]))
            seen.add(key)
    return errors


def _egress_errors(doc: dict, prefix: str) -> dict[str, list[str]]:
    """The egress policy of provider `base_url`s at write time (agent-config.md; `core.egress`): credentials in
    the URL, a host that is a non-public IP literal or a local name, unless allowed."""
    errors: dict[str, list[str]] = {}
    for index, entry in enumerate(providers(doc)):
        url = entry.get("base_url") if isinstance(entry, dict) else None
        if isinstance(url, str) and url:
            refusal = egress.write_time_refusal(url)
            if refusal:
                errors[path_of(["config_overrides", "model", "api_providers", index, "base_url"], prefix)] = [refusal]
    return errors


def raise_if_invalid(doc: Any, *, prefix: str, whole_key: str) -> None:
    if not isinstance(doc, dict):
        raise validation_error({prefix or whole_key: [gettext(NOT_AN_OBJECT)]}, code=ErrorCode.AGENT_012)
    problem = _check_limits(doc)
    if problem:
        raise validation_error({prefix or whole_key: [problem]}, code=ErrorCode.AGENT_012)
    errors = _schema_errors(doc, prefix)
    for path, messages in _name_errors(doc, prefix).items():
        errors.setdefault(path, []).extend(messages)
    for path, messages in _egress_errors(doc, prefix).items():
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
    raise_if_invalid(doc, prefix=prefix, whole_key=whole_key)
    return document_warnings(doc, system_models=system_models)


def check_system_providers(doc: dict, *, prefix: str = "", system_providers: set[str] | None = None) -> None:
    """The system-provider rule (agent-config.md §5.4): AGENT_011 naming every offending path."""
    if system_providers is None:
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
            if isinstance(value, str) and provider_key(value) in system_providers:
                path = path_of(["config_overrides", "model", list_name, index, field], prefix)
                errors[path] = [gettext(message).format(name=value.strip())]
    if errors:
        raise validation_error(errors, code=ErrorCode.AGENT_011)


def _warn_walk(node: dict, value: Any, parts: list, out: list[dict]) -> None:
    node = resolve(node)
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
        provider_names = {provider_key(p.get("name")) for p in model.get("api_providers") or []
                          if isinstance(p, dict)}
        model_names = {provider_key(m.get("name")) for m in model.get("models") or [] if isinstance(m, dict)}
        for index, entry in enumerate(model.get("models") or []):
            if isinstance(entry, dict):
                provider = entry.get("api_provider", "")
                if isinstance(provider, str) and provider_key(provider) not in provider_names:
                    out.append({"path": path_of(["config_overrides", "model", "models", index, "api_provider"]),
                                "code": "unknown_provider",
                                "message": "Does not name an entry of api_providers."})
        tasks = model.get("model_task_config")
        if system_models is None:
            system_models = system_model_names()
        if isinstance(tasks, dict):
            for task_name, task in tasks.items():
                if task_name not in KNOWN_TASKS or not isinstance(task, dict):
                    continue
                for index, name in enumerate(task.get("model_list") or []):
                    key = provider_key(name)
                    if key is not None and key not in model_names and key not in system_models:
                        out.append({
                            "path": path_of(["config_overrides", "model", "model_task_config", task_name,
                                             "model_list", index]),
                            "code": "unknown_model",
                            "message": "Names neither a model of this agent nor a system catalogue model.",
                        })
    return sorted(out, key=lambda w: (w["path"], w["code"]))
