"""Per-process cache of what chat derives from an agent's stored configuration (issue 10: CPU per chat).

Every chat request reads its agent's row (never cached: status, name and the configuration are read from
the database each time). What chat derives from the stored configuration, the decoded document, the
effective document (the stored one over the defaults) and the model choice (agent-config.md §7.3: the
catalogue, provider keys decrypted), is kept per process, keyed by the agent's id and the exact text of
its stored configuration as the database returned it: any change of the document (a new version, a
rollback, a re-encryption of its provider keys, a direct write) is a different key, so invalidation is
exact. The model choice also depends on the server's side, which is part of its key: the catalogue file
(path, modification time, size, inode), the provider-key environment variables, the chat timeout cap and
the secrets keys (`choice_fingerprint`).

Key state (verification, revocation) is never cached here. Entries are shared between requests and
threads and must not be modified.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from django.conf import settings

MAX_ENTRIES = 256

_lock = threading.Lock()
_entries: OrderedDict[tuple[str, str | bytes], Entry] = OrderedDict()


class Entry:
    """The decoded configuration of one (agent, stored text), with what chat derives from it, each
    computed once."""

    __slots__ = ("config", "doc", "choices", "_lock")

    def __init__(self, config: Any):
        self.config = config
        self.doc: dict | None = None
        self.choices: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    def effective_document(self, compute: Callable[[], dict]) -> dict:
        doc = self.doc
        if doc is None:
            doc = compute()
            with self._lock:
                if self.doc is None:
                    self.doc = doc
                doc = self.doc
        return doc

    def choice(self, fingerprint: tuple, compute: Callable[[], Any]) -> Any:
        choice = self.choices.get(fingerprint)
        if choice is None:
            choice = compute()
            with self._lock:
                if len(self.choices) >= 4:  # the server's side changed: keep only the newest
                    self.choices.clear()
                choice = self.choices.setdefault(fingerprint, choice)
        return choice


def entry(agent_id: str, raw: str | bytes | None, decode: Callable[[Any], Any]) -> Entry | None:
    """The entry of `agent_id` whose stored configuration reads `raw` (decoded by `decode` when new);
    None for a NULL configuration."""
    if raw is None:
        return None
    key = (agent_id, raw)
    with _lock:
        found = _entries.get(key)
        if found is not None:
            _entries.move_to_end(key)
            return found
    created = Entry(decode(raw))
    with _lock:
        found = _entries.setdefault(key, created)
        _entries.move_to_end(key)
        while len(_entries) > MAX_ENTRIES:
            _entries.popitem(last=False)
    return found


def clear() -> None:
    with _lock:
        _entries.clear()
        _stamped.clear()


# --- The express's agents (chat.express): the row itself, stamped with its generation ---------------------

_stamped: OrderedDict[str, tuple[tuple, Any]] = OrderedDict()


def stamped_agent(agent_id: str, stamp: tuple) -> Any | None:
    """The agent `remember_agent` kept for `agent_id` if it was read under the generation `stamp` (read
    from Redis before the agent was: `chat.signals`), else None. Read only on the event loop."""
    found = _stamped.get(agent_id)
    if found is not None and found[0] == stamp:
        return found[1]
    return None


def remember_agent(agent_id: str, stamp: tuple, agent: Any) -> None:
    """Keep `agent` (as `chat.selectors.key_agent` read it, after `stamp` was read) for the express."""
    with _lock:
        _stamped[agent_id] = (stamp, agent)
        _stamped.move_to_end(agent_id)
        while len(_stamped) > MAX_ENTRIES:
            _stamped.popitem(last=False)


_env_names: dict[tuple, tuple[str, ...]] = {}


def _provider_env_names(catalogue_key: tuple) -> tuple[str, ...]:
    """The provider-key variables the catalogue `catalogue_key` (path, stamp) reads: one per provider."""
    names = _env_names.get(catalogue_key)
    if names is None:
        from catalogue.selectors import load_model_catalogue, provider_key_env_name

        catalogue = load_model_catalogue()
        names = tuple(sorted({provider_key_env_name(p["name"]) for p in catalogue.providers
                              if isinstance(p, dict) and isinstance(p.get("name"), str)}))
        with _lock:
            if len(_env_names) > 16:
                _env_names.clear()
            _env_names[catalogue_key] = names
    return names


def choice_fingerprint() -> tuple:
    """Everything besides the agent's document that the model choice depends on (see the module): the
    catalogue file (path and stamp, as `catalogue.selectors` caches it), the values of the provider-key
    variables its providers read, the chat timeout cap and the secrets keys."""
    from catalogue.selectors import resolve_path

    path = resolve_path(settings.MAIMBOT_MODEL_CONFIG_PATH)
    try:
        stat = path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    except OSError:
        stamp = None
    catalogue_key = (str(path), stamp)
    environ = os.environ
    provider_env = tuple(environ.get(name) for name in _provider_env_names(catalogue_key))
    secrets = (getattr(settings, "MAIMCONFIG_SECRETS_KEY", "") or "",
               tuple(getattr(settings, "MAIMCONFIG_SECRETS_KEY_FALLBACKS", []) or ()),
               settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", []) or ()))
    return (catalogue_key, provider_env, settings.MAIMCONFIG_CHAT_TIMEOUT_SECONDS, secrets)


def decode_json(raw: str | bytes) -> Any:
    return json.loads(raw)
