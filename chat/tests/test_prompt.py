"""System prompt, history length and the offline reply (agent-config.md §7.1, §7.2; api.md §10.8)."""

import random

from agents.tests.factories import AgentFactory
from chat.prompt import max_context_size, offline_reply, system_prompt


def test_system_prompt_lines_from_persona(db):
    agent = AgentFactory.build(name="Helper")
    doc = {"persona": {"personality": "Calm.", "interest": "Tea", "reply_style": "Brief.",
                       "private_plan_style": "Be kind.", "plan_style": "ignored", "visual_style": "ignored"},
           "bot_overrides": {"nickname": "Mai", "alias_names": ["Maimai", "Little Mai"]}}
    assert system_prompt(agent, doc) == (
        "You are Mai.\nAlso known as: Maimai, Little Mai.\nPersonality: Calm.\nInterests: Tea\n"
        "Reply style: Brief.\nBehaviour in private chats: Be kind.")


def test_system_prompt_defaults_to_agent_name_and_skips_empty_lines():
    agent = AgentFactory.build(name="Helper")
    assert system_prompt(agent, {}) == "You are Helper."
    assert system_prompt(agent, {"persona": "Just a string persona."}) == (
        "You are Helper.\nPersonality: Just a string persona.")


def test_state_probability_replaces_personality():
    agent = AgentFactory.build(name="Helper")
    doc = {"persona": {"personality": "Base.", "states": ["Alt.", {"name": "obj"}], "state_probability": 1.0}}
    assert "Personality: Alt." in system_prompt(agent, doc, random.Random(1))
    doc["persona"]["state_probability"] = 0.0
    assert "Personality: Base." in system_prompt(agent, doc, random.Random(1))


def test_max_context_size_default_and_configured():
    assert max_context_size({}) == 18
    assert max_context_size({"config_overrides": {"chat": {"max_context_size": 3}}}) == 3


def test_offline_reply_excerpt():
    agent = AgentFactory.build(name="Helper")
    assert offline_reply(agent, {}, "  hi there \n") == "[offline] Helper received: hi there"
    long = "x" * 250
    assert offline_reply(agent, {"bot_overrides": {"nickname": "Mai"}}, long) == (
        "[offline] Mai received: " + "x" * 200 + "…")
