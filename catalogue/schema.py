"""The agent configuration document's JSON Schema (agent-config.md): the single source of truth for the
document's known fields, their types, ranges and defaults.

`catalogue/schemas/agent_config.schema.json` carries a few annotation keywords that JSON Schema validators
ignore and the agents app reads:

* `x-unknown-code` on an object: extra keys are kept and warned with this code;
* `x-label`: how the object is named in warning messages;
* `x-enum` on a string: the known values (another string is kept and warned `unknown_value`);
* `x-message`: the error message for the node, instead of one built from its type and range.

This module only describes the schema (defaults, validator, messages, the OpenAPI form). Validating,
merging and storing agents' documents is `agents.configdoc`.
"""

from __future__ import annotations

import copy
import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
from django.utils.translation import gettext, gettext_noop

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "agent_config.schema.json"
CONFIG_SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

NOT_AN_OBJECT = gettext_noop("Must be a JSON object.")


def resolve(node: dict) -> dict:
    """Follow a local `$ref` (`#/$defs/name`), keeping sibling keywords."""
    ref = node.get("$ref")
    if not ref:
        return node
    target = CONFIG_SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return resolve(merged) if "$ref" in target else merged


def _defaults_of(node: dict) -> Any:
    node = resolve(node)
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
def validator():
    return _Validator(CONFIG_SCHEMA, format_checker=_format_checker)


def _fmt(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    return str(value)


def describe(node: dict) -> str:
    """The error message of a schema node, built from its type and range, in the active language."""
    node = resolve(node)
    if "x-message" in node:
        return gettext(node["x-message"])
    kind = node.get("type")
    if kind in ("integer", "number"):
        low, high, exclusive = node.get("minimum"), node.get("maximum"), node.get("exclusiveMinimum")
        integer = kind == "integer"
        if low is not None and high is not None:
            text = (gettext("Must be an integer between %(low)s and %(high)s.") if integer
                    else gettext("Must be a number between %(low)s and %(high)s."))
            return text % {"low": _fmt(low), "high": _fmt(high)}
        if low is not None:
            text = (gettext("Must be an integer greater than or equal to %(low)s.") if integer
                    else gettext("Must be a number greater than or equal to %(low)s."))
            return text % {"low": _fmt(low)}
        if exclusive is not None:
            text = (gettext("Must be an integer greater than %(low)s.") if integer
                    else gettext("Must be a number greater than %(low)s."))
            return text % {"low": _fmt(exclusive)}
        return gettext("Must be an integer.") if integer else gettext("Must be a number.")
    if kind == "string":
        low, high = node.get("minLength"), node.get("maxLength")
        if node.get("format") == "http-url-or-empty":
            return gettext('Must be "" or an absolute http(s) URL of at most %(high)s characters.') % {"high": high}
        if node.get("format") == "regex":
            if low and high:
                text = gettext("Must be a string of %(low)s to %(high)s characters that is a valid regular expression.")
            elif high:
                text = gettext("Must be a string of at most %(high)s characters that is a valid regular expression.")
            else:
                text = gettext("Must be a string that is a valid regular expression.")
        elif low and high:
            text = gettext("Must be a string of %(low)s to %(high)s characters.")
        elif high:
            text = gettext("Must be a string of at most %(high)s characters.")
        else:
            text = gettext("Must be a string.")
        return text % {"low": low, "high": high} if "%(" in text else text
    if kind == "boolean":
        return gettext("Must be a boolean (true or false).")
    if kind == "object":
        return gettext(NOT_AN_OBJECT)
    if kind == "array":
        if "maxItems" in node:
            return gettext("Must be an array of at most %(count)s items.") % {"count": node["maxItems"]}
        return gettext("Must be an array.")
    return gettext("Invalid value.")


# x-message sentences of the schema, for the translation catalogue.
_SCHEMA_MESSAGES = (gettext_noop("Must be a string of at most 5000 characters or a JSON object."),)


def _to_openapi(node: Any, *, request: bool) -> Any:
    """Convert the JSON Schema (2020-12) into an OpenAPI 3.0 schema object (refs inlined)."""
    if isinstance(node, list):
        return [_to_openapi(v, request=request) for v in node]
    if not isinstance(node, dict):
        return node
    node = resolve(node)
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
