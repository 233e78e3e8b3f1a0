"""How chat reads the agent's document (agent-config.md §7.1, §7.2) and the offline reply (api.md §10.8).

Chat reads the agent's *effective* document (the stored one over the documented defaults). Only the few
fields chat uses are read here, each with its documented default, so a partially written document works.
"""

import math
import random
from typing import Any

DEFAULT_MAX_CONTEXT_SIZE = 18
OFFLINE_MODEL = "maimconfig-offline"
OFFLINE_EXCERPT_CHARS = 200


def effective_document(agent) -> dict[str, Any]:
    """The agent's effective configuration document (agents.configdoc)."""
    from agents.configdoc import effective_document as _effective

    return _effective(agent.config if isinstance(agent.config, dict) else {})


def _section(doc: dict, *path: str) -> dict:
    value: Any = doc
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def bot_name(agent, doc: dict) -> str:
    nickname = _text(_section(doc, "bot_overrides").get("nickname")).strip()
    return nickname or agent.name


def _persona(doc: dict) -> dict:
    persona = doc.get("persona")
    if isinstance(persona, str):  # agent-config.md §4.1: a string persona is the personality
        return {"personality": persona}
    return persona if isinstance(persona, dict) else {}


def choose_personality(persona: dict, rng: random.Random | None = None) -> str:
    """`personality`, or with probability `state_probability` a random string entry of `states`."""
    personality = _text(persona.get("personality"))
    probability = persona.get("state_probability")
    states = [s for s in persona.get("states") or [] if isinstance(s, str) and s] if isinstance(
        persona.get("states"), list) else []
    if isinstance(probability, (int, float)) and not isinstance(probability, bool) and probability > 0 and states:
        rng = rng or random.SystemRandom()
        if rng.random() < probability:
            return rng.choice(states)
    return personality


def system_prompt(agent, doc: dict, rng: random.Random | None = None) -> str:
    """The system prompt of agent-config.md §7.1: one line per non-empty value, joined with newlines."""
    persona = _persona(doc)
    aliases = _section(doc, "bot_overrides").get("alias_names")
    aliases = [a for a in aliases if isinstance(a, str) and a] if isinstance(aliases, list) else []
    lines = [f"You are {bot_name(agent, doc)}."]
    if aliases:
        lines.append(f"Also known as: {', '.join(aliases)}.")
    for label, value in (
        ("Personality", choose_personality(persona, rng)),
        ("Interests", _text(persona.get("interest"))),
        ("Reply style", _text(persona.get("reply_style"))),
        ("Behaviour in private chats", _text(persona.get("private_plan_style"))),
    ):
        if value:
            lines.append(f"{label}: {value}")
    return "\n".join(lines)


def max_context_size(doc: dict) -> int:
    value = _section(doc, "config_overrides", "chat").get("max_context_size")
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 200:
        return value
    return DEFAULT_MAX_CONTEXT_SIZE


def offline_reply(agent, doc: dict, message: str) -> str:
    """`[offline] {bot_name} received: {excerpt}` (api.md §10.8)."""
    text = message.strip()
    excerpt = text[:OFFLINE_EXCERPT_CHARS] + ("…" if len(text) > OFFLINE_EXCERPT_CHARS else "")
    return f"[offline] {bot_name(agent, doc)} received: {excerpt}"


def estimate_tokens(text: str) -> int:
    """`ceil(characters / 4)`, the estimate used when the upstream reports no usage."""
    return math.ceil(len(text) / 4)
