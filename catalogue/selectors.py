"""The system model catalogue and the MaiMBot bot-config defaults (api.md §12).

Both come from TOML files whose paths are settings (`MAIMBOT_MODEL_CONFIG_PATH`,
`MAIMBOT_BOT_CONFIG_TEMPLATE_PATH`; relative paths are resolved against the repository root). The
repository ships both files in `config/`. A file is re-read when its modification time or size changes.
A missing, unreadable or invalid file is never an error: the built-in fallback answers, the source says
`static_fallback`, and a warning naming the file and the reason is logged.

Interface used by other apps:

* `load_model_catalogue()` -> `ModelCatalogue` with `.providers` (dicts with `name`, `base_url`,
  `client_type`, `timeout`, `api_key` resolved from `MAIMCONFIG_PROVIDER_KEY_<NAME>` or the file; the key
  is for calling the provider and is never returned by a route), `.models` (dicts with `name`,
  `model_identifier`, `api_provider`, `description`, `price_in`, `price_out` and the entry's other keys
  such as `temperature`, `max_tokens`, `extra_params`), `.defaults` (the `model_task_config` table) and
  `.source` (`dynamic_toml` or `static_fallback`).
* `system_provider_names()` / `system_model_names()`: case-folded, trimmed names (AGENT_011, warnings).
* `load_bot_defaults()` -> `BotDefaults` with `.data` (the 23 tables, secrets masked) and `.source`.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import re
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from catalogue.schema import CONFIG_DEFAULTS

logger = logging.getLogger("maimconfig.catalogue")

DYNAMIC = "dynamic_toml"
FALLBACK = "static_fallback"
MASK = "********"
SECRET_NAMES = frozenset({"api_key", "auth_token", "token", "password", "secret"})
PROVIDER_KEY_ENV_PREFIX = "MAIMCONFIG_PROVIDER_KEY_"

FALLBACK_PROVIDERS: list[dict[str, Any]] = [
    {"name": "OpenAI", "client_type": "openai", "base_url": "https://api.openai.com/v1"},
    {"name": "Anthropic", "client_type": "anthropic", "base_url": "https://api.anthropic.com"},
]
FALLBACK_MODELS: list[dict[str, Any]] = [
    {"name": "GPT-4o", "model_identifier": "gpt-4o", "api_provider": "OpenAI", "price_in": 5.0,
     "price_out": 15.0, "description": "OpenAI's general-purpose multimodal model"},
    {"name": "GPT-4o Mini", "model_identifier": "gpt-4o-mini", "api_provider": "OpenAI", "price_in": 0.15,
     "price_out": 0.6, "description": "Small, fast, low-cost OpenAI model"},
    {"name": "Claude 3.5 Sonnet", "model_identifier": "claude-3-5-sonnet-20240620", "api_provider": "Anthropic",
     "price_in": 3.0, "price_out": 15.0, "description": "Anthropic's balanced Claude model"},
]

#: The 23 tables of bot-defaults (api.md §12.2): MaiMBot table name -> agent-config location.
BOT_TABLES: dict[str, tuple[str, ...]] = {
    "bot": ("bot_overrides",),
    "personality": ("persona",),
    **{name: ("config_overrides", name) for name in (
        "chat", "memory", "dream", "jargon", "tool", "mood", "emoji", "voice", "message_receive",
        "lpmm_knowledge", "chinese_typo", "expression", "plugin", "keyword_reaction", "relationship",
        "response_post_process", "response_splitter", "debug", "experimental", "maim_message", "telemetry",
    )},
}


@dataclass(frozen=True)
class ModelCatalogue:
    providers: list[dict[str, Any]]
    models: list[dict[str, Any]]
    defaults: dict[str, Any]
    source: str
    path: str = ""

    def provider(self, name: str) -> dict[str, Any] | None:
        """The provider named `name` (case-insensitive, trimmed), or None."""
        key = name.strip().casefold() if isinstance(name, str) else None
        return next((p for p in self.providers if _fold(p["name"]) == key), None)

    def model(self, name: str) -> dict[str, Any] | None:
        key = name.strip().casefold() if isinstance(name, str) else None
        return next((m for m in self.models if _fold(m["name"]) == key), None)


@dataclass(frozen=True)
class BotDefaults:
    data: dict[str, Any]
    source: str
    path: str = ""


@dataclass
class _CacheEntry:
    stamp: tuple
    parsed: dict | None
    reason: str | None = None


_cache: dict[str, _CacheEntry] = {}
_lock = threading.Lock()


def _fold(name: Any) -> str | None:
    return name.strip().casefold() if isinstance(name, str) else None


def resolve_path(configured: str) -> Path:
    path = Path(configured)
    return path if path.is_absolute() else Path(settings.BASE_DIR) / path


def _finite_float(text: str) -> float:
    """TOML floats; `inf`/`nan` (and overflowing literals) are refused: the answers are JSON."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite float")
    return value


def _read_toml(path: Path) -> tuple[dict | None, str | None]:
    """The parsed file (cached while its mtime and size are unchanged), or (None, reason)."""
    try:
        stat = path.stat()
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or type(exc).__name__})"
    stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    key = str(path)
    with _lock:
        entry = _cache.get(key)
        if entry is not None and entry.stamp == stamp:
            return entry.parsed, entry.reason
    try:
        with path.open("rb") as handle:
            parsed, reason = tomllib.load(handle, parse_float=_finite_float), None
    except tomllib.TOMLDecodeError as exc:
        parsed, reason = None, f"is not valid TOML ({exc})"
    except UnicodeDecodeError:
        parsed, reason = None, "is not valid UTF-8"
    except ValueError:  # from _finite_float
        parsed, reason = None, "contains inf or nan, which JSON cannot represent"
    except OSError as exc:
        parsed, reason = None, f"cannot be read ({exc.strerror or type(exc).__name__})"
    with _lock:
        _cache[key] = _CacheEntry(stamp, parsed, reason)
    return parsed, reason


_warned: set[tuple[str, str, str]] = set()


def _warn_fallback(what: str, path: Path, reason: str | None) -> None:
    """Log a fallback once per file and reason, not on every read (agent writes read the catalogue)."""
    key = (what, str(path), reason or "")
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    logger.warning("%s %s %s; using the built-in fallback", what, path, reason)


def clear_cache() -> None:
    with _lock:
        _cache.clear()
        _warned.clear()
        _answers.clear()


def provider_key_env_name(provider_name: str) -> str:
    """`OpenAI` -> `MAIMCONFIG_PROVIDER_KEY_OPENAI` (runs of other characters than A–Z0–9 become `_`)."""
    return PROVIDER_KEY_ENV_PREFIX + re.sub(r"[^A-Z0-9]+", "_", provider_name.upper())


def _text(value: Any, default: str) -> str:
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)


def _price(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value)


def _provider(entry: dict) -> dict[str, Any]:
    provider = copy.deepcopy(entry)
    provider["name"] = _text(entry.get("name"), "Unknown Provider")
    provider["client_type"] = _text(entry.get("client_type"), "openai")
    provider["base_url"] = _text(entry.get("base_url"), "")
    timeout = entry.get("timeout")
    provider["timeout"] = timeout if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) \
        and timeout > 0 else 10
    env_key = os.environ.get(provider_key_env_name(provider["name"]), "")
    file_key = entry.get("api_key") if isinstance(entry.get("api_key"), str) else ""
    provider["api_key"] = env_key or file_key
    return provider


def _model(entry: dict) -> dict[str, Any]:
    model = copy.deepcopy(entry)
    model["name"] = _text(entry.get("name"), "Unknown Model")
    model["model_identifier"] = _text(entry.get("model_identifier"), "")
    model["api_provider"] = _text(entry.get("api_provider"), "")
    model["description"] = _text(entry.get("description"), "") or model["name"]
    model["price_in"] = _price(entry.get("price_in"))
    model["price_out"] = _price(entry.get("price_out"))
    return model


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def load_model_catalogue() -> ModelCatalogue:
    """The system model catalogue (api.md §12.1), from the file or the built-in fallback."""
    path = resolve_path(settings.MAIMBOT_MODEL_CONFIG_PATH)
    parsed, reason = _read_toml(path)
    if parsed is not None:
        providers, models = parsed.get("api_providers", []), parsed.get("models", [])
        tasks = parsed.get("model_task_config", {})
        if not _is_table_array(providers):
            reason = "has an 'api_providers' that is not an array of tables"
        elif not _is_table_array(models):
            reason = "has a 'models' that is not an array of tables"
        elif not isinstance(tasks, dict):
            reason = "has a 'model_task_config' that is not a table"
        else:
            return ModelCatalogue(providers=[_provider(p) for p in providers], models=[_model(m) for m in models],
                                  defaults=copy.deepcopy(tasks), source=DYNAMIC, path=str(path))
    _warn_fallback("Model catalogue", path, reason)
    return ModelCatalogue(providers=[_provider(p) for p in FALLBACK_PROVIDERS],
                          models=[_model(m) for m in FALLBACK_MODELS], defaults={}, source=FALLBACK,
                          path=str(path))


def system_provider_names() -> set[str]:
    """Case-folded, trimmed names of the system providers (reserved: AGENT_011)."""
    return {name for name in (_fold(p["name"]) for p in load_model_catalogue().providers) if name}


def system_model_names() -> set[str]:
    return {name for name in (_fold(m["name"]) for m in load_model_catalogue().models) if name}


def mask_secrets(value: Any) -> Any:
    """A copy where keys named like secrets with a non-empty value read `"********"` (any depth)."""
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            if isinstance(key, str) and key.casefold() in SECRET_NAMES and sub not in ("", None, [], {}):
                out[key] = MASK
            else:
                out[key] = mask_secrets(sub)
        return out
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


def documented_bot_defaults() -> dict[str, dict[str, Any]]:
    """The 23 tables built from the documented defaults (agent-config.md §3): the fallback."""
    out = {}
    for table, location in BOT_TABLES.items():
        value: Any = CONFIG_DEFAULTS
        for part in location:
            value = value.get(part, {})
        out[table] = copy.deepcopy(value)
    return out


def load_bot_defaults() -> BotDefaults:
    """The MaiMBot configuration defaults (api.md §12.2): every top-level table of the file, the 23
    documented tables always present, secret-named values masked."""
    path = resolve_path(settings.MAIMBOT_BOT_CONFIG_TEMPLATE_PATH)
    parsed, reason = _read_toml(path)
    if parsed is None:
        _warn_fallback("Bot config template", path, reason)
        return BotDefaults(data=documented_bot_defaults(), source=FALLBACK, path=str(path))
    data = {name: {} for name in BOT_TABLES}
    data.update({key: value for key, value in parsed.items() if isinstance(value, dict)})
    return BotDefaults(data=mask_secrets(data), source=DYNAMIC, path=str(path))


# --- the system routes' answers, built once per process while what they are made of is unchanged ------

#: route -> (key, data). The key holds the parsed file itself (compared by identity: `_read_toml` returns
#: the same object while the file's stamp is unchanged), the resolved path, the fallback reason, and for
#: the models route the provider-key variables `has_api_key` depends on. The data is shared: read only.
_answers: dict[str, tuple[tuple, Any]] = {}


def _provider_env(providers) -> tuple:
    names = tuple(provider_key_env_name(_text(p.get("name"), "Unknown Provider")) for p in providers)
    return names, tuple(os.environ.get(name, "") for name in names)


def _answer(route: str, key: tuple, build):
    entry = _answers.get(route)
    if entry is not None and len(entry[0]) == len(key) and all(a is b or a == b for a, b in zip(entry[0], key)):
        return entry[1]
    data = build()
    _answers[route] = (key, data)
    return data


def system_models_data() -> tuple[dict[str, Any], str]:
    """The `data` of `GET /api/v2/system/models` and its source (api.md §12.1), built once per process and
    rebuilt when the file (mtime, size, inode), its path or a provider-key variable changes."""
    from catalogue.serializers import SystemModelsOutputSerializer

    path = resolve_path(settings.MAIMBOT_MODEL_CONFIG_PATH)
    parsed, reason = _read_toml(path)
    providers = parsed.get("api_providers", []) if parsed is not None else FALLBACK_PROVIDERS
    if not _is_table_array(providers):
        providers = FALLBACK_PROVIDERS
    key = (parsed, str(path), reason, *_provider_env(providers))

    def build():
        loaded = load_model_catalogue()
        data = {
            "providers": [
                {"name": p["name"], "client_type": p["client_type"], "base_url": p["base_url"],
                 "is_server_provider": True, "has_api_key": bool(p["api_key"])}
                for p in loaded.providers
            ],
            "models": [
                {key: m[key] for key in ("name", "model_identifier", "api_provider", "description", "price_in",
                                         "price_out")}
                for m in loaded.models
            ],
            "defaults": loaded.defaults,
            "source": loaded.source,
        }
        return SystemModelsOutputSerializer(data).data | {"defaults": loaded.defaults}, loaded.source

    return _answer("models", key, build)


def bot_defaults_data() -> tuple[dict[str, Any], str]:
    """The `data` of `GET /api/v2/system/bot-defaults` and its source (api.md §12.2), built once per process
    and rebuilt when the file (mtime, size, inode) or its path changes."""
    path = resolve_path(settings.MAIMBOT_BOT_CONFIG_TEMPLATE_PATH)
    parsed, reason = _read_toml(path)

    def build():
        loaded = load_bot_defaults()
        return loaded.data, loaded.source

    return _answer("bot_defaults", (parsed, str(path), reason), build)


__all__ = [
    "BotDefaults", "DYNAMIC", "bot_defaults_data", "system_models_data", "FALLBACK", "ModelCatalogue", "clear_cache", "documented_bot_defaults",
    "load_bot_defaults", "load_model_catalogue", "mask_secrets", "provider_key_env_name", "system_model_names",
    "system_provider_names",
]
