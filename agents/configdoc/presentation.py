"""Reading a document: the effective view over the documented defaults (agent-config.md §6.2) and the
masked copy every response carries."""

from __future__ import annotations

import copy

from agents.configdoc.merge import deep_merge
from agents.configdoc.secrets import MASK, providers
from catalogue.schema import CONFIG_DEFAULTS, KNOWN_TASKS, MODEL_DEFAULTS, PROVIDER_DEFAULTS, TASK_DEFAULTS


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
    for entry in providers(doc):
        if isinstance(entry, dict):
            entry["api_key"] = MASK if isinstance(entry.get("api_key"), str) and entry["api_key"] else ""
    return doc
