"""The structured editor of an agent's configuration document in the admin.

One JSON Schema drives both the API's validation and this editor: `catalogue.schema.CONFIG_SCHEMA`, handed
to the vendored json-editor (`console/static/console/vendor/json-editor`) with its `$ref`s inlined and its
descriptions translated into the operator's language. Saving still goes through the form's validation and
`agents.services`; the server's errors are shown at their field in the editor (and above it). A raw-JSON mode
edits the same textarea the form submits.
"""

import copy
import json
from functools import lru_cache
from typing import Any

from django import forms
from django.utils.translation import get_language, gettext

from catalogue.schema import CONFIG_SCHEMA, resolve

_DROPPED = ("$schema", "$id", "$defs", "x-unknown-code", "x-label", "x-message")


def _for_editor(node: Any, translate) -> Any:
    if isinstance(node, list):
        return [_for_editor(item, translate) for item in node]
    if not isinstance(node, dict):
        return node
    node = resolve(node)
    out = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "description" and isinstance(value, str):
            out[key] = translate(value)
        elif key == "x-enum":
            # Known values as suggestions; another value stays valid (it is only warned, agent-config.md).
            out["examples"] = list(value)
        elif key in ("properties", "patternProperties"):
            out[key] = {name: _for_editor(sub, translate) for name, sub in value.items()}
        else:
            out[key] = _for_editor(value, translate)
    return out


@lru_cache(maxsize=8)
def _editor_schema_json(language: str) -> str:
    schema = _for_editor(copy.deepcopy(CONFIG_SCHEMA), gettext)
    schema["title"] = gettext("Configuration")
    return json.dumps(schema, ensure_ascii=False)


def editor_schema_json() -> str:
    """The schema json-editor renders, in the active language (cached per language)."""
    return _editor_schema_json(get_language() or "en")


def schema_texts() -> list[str]:
    """Every description of the schema (the strings `console/schema_texts.py` marks for translation)."""
    texts: list[str] = []
    _for_editor(copy.deepcopy(CONFIG_SCHEMA), lambda text: texts.append(text) or text)
    return sorted(set(texts))


def _editor_path(path: str) -> str:
    """`config_overrides.model.api_providers[0].name` -> `root.config_overrides.model.api_providers.0.name`."""
    out, token, i = [], "", 0
    while i < len(path):
        char = path[i]
        if char == ".":
            if token:
                out.append(token)
            token = ""
        elif char == "[":
            if token:
                out.append(token)
            end = path.index("]", i)
            inner = path[i + 1:end]
            out.append(inner.strip('"'))
            token, i = "", end
        else:
            token += char
        i += 1
    if token:
        out.append(token)
    return ".".join(["root", *out])


class ConfigEditorWidget(forms.Textarea):
    """A textarea (the submitted value, raw-JSON mode) plus the structured editor and the effective view."""

    template_name = "console/widgets/config_editor.html"

    def __init__(self, attrs=None):
        super().__init__(attrs={"rows": 24, "cols": 100, "class": "config-editor-raw", **(attrs or {})})
        self.effective: dict | None = None
        self.errors: list[tuple[str | None, str]] = []

    class Media:
        js = ("console/vendor/json-editor/jsoneditor.min.js", "console/config_editor.js")
        css = {"all": ("console/config_editor.css",)}

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["editor"] = {
            "schema": json.loads(editor_schema_json()),
            "effective": None if self.effective is None else json.dumps(self.effective, ensure_ascii=False,
                                                                         indent=2),
            "errors": [{"path": _editor_path(path) if path else "root", "property": "server", "message": message}
                       for path, message in self.errors],
            "language": get_language() or "en",
        }
        return context
