"""Model choice (agent-config.md §7.3, §7.4): which model answers an agent, at which endpoint.

Candidates come from the agent's `replyer.model_list` (agent models with agent providers, or system
catalogue models with the server's keys), else from the catalogue's own `replyer.model_list` (the
server default). The first *usable* candidate is called; none usable means the offline responder.
"""

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from agents.configdoc import provider_api_key
from catalogue.selectors import load_model_catalogue

DEFAULT_TASK_TEMPERATURE = 0.3
DEFAULT_TASK_MAX_TOKENS = 1024
DEFAULT_PROVIDER_TIMEOUT = 10
IGNORED_EXTRA_PARAMS = frozenset({"model", "messages", "stream", "stream_options"})


@dataclass(frozen=True)
class ModelTarget:
    """A usable model: everything needed to call it. `api_key` is never logged or returned."""

    model_name: str
    model_identifier: str
    provider_name: str
    provider_kind: str  # "agent" or "system"
    base_url: str
    api_key: str = field(repr=False)
    timeout: float
    temperature: float
    max_tokens: int
    extra_params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ModelChoice:
    """The usable candidates of the step that applies (agent-config.md §7.3); empty = offline."""

    candidates: tuple[ModelTarget, ...]
    step: int  # 1 (agent list), 2 (server default) or 3 (offline)

    @property
    def target(self) -> ModelTarget | None:
        return self.candidates[0] if self.candidates else None

    @property
    def responder(self) -> str:
        return "llm" if self.candidates else "offline"


class _Catalogue:
    def __init__(self):
        catalogue = load_model_catalogue()
        self.providers = [p for p in getattr(catalogue, "providers", None) or [] if isinstance(p, dict)]
        self.models = [m for m in getattr(catalogue, "models", None) or [] if isinstance(m, dict)]
        defaults = getattr(catalogue, "defaults", None)
        self.tasks = defaults if isinstance(defaults, dict) else {}
        self.provider_keys = {_fold(p.get("name")) for p in self.providers if _fold(p.get("name"))}

    def model(self, name: str) -> dict | None:
        return next((m for m in self.models if _fold(m.get("name")) == _fold(name)), None)

    def provider(self, name: str) -> dict | None:
        return next((p for p in self.providers if _fold(p.get("name")) == _fold(name)), None)


def _fold(value: Any) -> str:
    return value.strip().casefold() if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _integer(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _task(tasks: Any) -> dict:
    task = tasks.get("replyer") if isinstance(tasks, dict) else None
    return task if isinstance(task, dict) else {}


def _extra_params(model: dict) -> dict:
    extra = model.get("extra_params")
    if not isinstance(extra, dict):
        return {}
    return {k: v for k, v in extra.items() if k not in IGNORED_EXTRA_PARAMS}


def _timeout(provider: dict) -> float:
    value = _number(provider.get("timeout"))
    seconds = value if value and value > 0 else DEFAULT_PROVIDER_TIMEOUT
    return min(seconds, float(settings.MAIMCONFIG_CHAT_TIMEOUT_SECONDS))


def _usable_openai_provider(provider: dict | None) -> bool:
    if provider is None:
        return False
    client_type = provider.get("client_type", "openai")
    base_url = provider.get("base_url")
    return client_type == "openai" and isinstance(base_url, str) and bool(base_url.strip())


def _target(*, model: dict, provider: dict, kind: str, api_key: str, task: dict) -> ModelTarget:
    temperature = _number(model.get("temperature"))
    if temperature is None:
        temperature = _number(task.get("temperature"))
    max_tokens = _integer(task.get("max_tokens"))
    return ModelTarget(
        model_name=str(model.get("name")),
        model_identifier=model["model_identifier"],
        provider_name=str(provider.get("name")),
        provider_kind=kind,
        base_url=provider["base_url"].strip().rstrip("/"),
        api_key=api_key,
        timeout=_timeout(provider),
        temperature=DEFAULT_TASK_TEMPERATURE if temperature is None else temperature,
        max_tokens=max_tokens if max_tokens and max_tokens >= 1 else DEFAULT_TASK_MAX_TOKENS,
        extra_params=_extra_params(model),
    )


def _identifier(model: dict) -> bool:
    value = model.get("model_identifier")
    return isinstance(value, str) and bool(value.strip())


def _system_candidate(catalogue: _Catalogue, name: str, task: dict) -> ModelTarget | None:
    model = catalogue.model(name)
    if model is None or not _identifier(model):
        return None
    provider = catalogue.provider(model.get("api_provider"))
    if not _usable_openai_provider(provider):
        return None
    key = provider.get("api_key")
    if not isinstance(key, str) or not key:
        return None
    return _target(model=model, provider=provider, kind="system", api_key=key, task=task)


def _provider_key(agent, provider_name: str) -> str | None:
    """The decrypted key of an agent provider; None when it cannot be decrypted (unusable)."""
    try:
        key = provider_api_key(agent, provider_name)
    except Exception:  # noqa: BLE001 - an undecryptable key makes the provider unusable (§7.3)
        return None
    return None if key is None else key


def _agent_candidate(agent, model_section: dict, catalogue: _Catalogue, model: dict, task: dict) -> ModelTarget | None:
    if not _identifier(model):
        return None
    provider_name = model.get("api_provider")
    if not _fold(provider_name) or _fold(provider_name) in catalogue.provider_keys:
        return None
    providers = model_section.get("api_providers")
    providers = [p for p in providers if isinstance(p, dict)] if isinstance(providers, list) else []
    provider = next((p for p in providers if _fold(p.get("name")) == _fold(provider_name)), None)
    if provider is None or _fold(provider.get("name")) in catalogue.provider_keys:
        return None
    if not _usable_openai_provider(provider):
        return None
    key = _provider_key(agent, provider["name"])
    if key is None:
        return None
    return _target(model=model, provider=provider, kind="agent", api_key=key, task=task)


def choose_models(agent, doc: dict) -> ModelChoice:
    """The usable candidates, in order, of the step of agent-config.md §7.3 that applies."""
    catalogue = _Catalogue()
    model_section = doc.get("config_overrides", {}).get("model") if isinstance(doc.get("config_overrides"), dict) else None
    model_section = model_section if isinstance(model_section, dict) else {}
    agent_task = _task(model_section.get("model_task_config"))
    agent_models = model_section.get("models")
    agent_models = [m for m in agent_models if isinstance(m, dict)] if isinstance(agent_models, list) else []

    candidates: list[ModelTarget] = []
    names = agent_task.get("model_list")
    for name in names if isinstance(names, list) else []:
        if not isinstance(name, str):
            continue
        model = next((m for m in agent_models if _fold(m.get("name")) == _fold(name)), None)
        if model is not None:
            target = _agent_candidate(agent, model_section, catalogue, model, agent_task)
        else:
            target = _system_candidate(catalogue, name, agent_task)
        if target is not None:
            candidates.append(target)
    if candidates:
        return ModelChoice(tuple(candidates), 1)

    server_task = _task(catalogue.tasks)
    names = server_task.get("model_list")
    for name in names if isinstance(names, list) else []:
        if isinstance(name, str):
            target = _system_candidate(catalogue, name, server_task)
            if target is not None:
                candidates.append(target)
    if candidates:
        return ModelChoice(tuple(candidates), 2)
    return ModelChoice((), 3)
