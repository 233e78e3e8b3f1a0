"""The configuration document (agent-config.md): schema, normalization, merge, validation, warnings,
effective view, masks and secret storage — without HTTP."""

import copy
import json
from pathlib import Path

import pytest

from agents import configdoc as cd
from catalogue import schema as config_schema
from core.errors import ErrorCode
from core.exceptions import ApplicationError

EXAMPLE = json.loads((Path(__file__).parent / "example_config.json").read_text(encoding="utf-8"))


def _errors(call) -> tuple[ErrorCode, dict]:
    with pytest.raises(ApplicationError) as info:
        call()
    return info.value.code, info.value.data["errors"]


# --- Every known field: wrong type and out of range, at its JSON path -----------------------------------


def _leaves():
    """(path parts, schema node) of every known scalar/array field, sections and entries included."""
    out = []

    def walk(node, parts):
        node = config_schema.resolve(node)
        if node.get("type") == "object" and "properties" in node:
            for key, sub in node["properties"].items():
                walk(sub, [*parts, key])
        elif node.get("type") == "array" and isinstance(node.get("items"), dict) and "$ref" in node["items"]:
            walk(node["items"], [*parts, 0])
        else:
            out.append((parts, node))

    walk(config_schema.CONFIG_SCHEMA, [])
    return out


LEAVES = _leaves()


def _document_with(parts, value):
    """A minimal valid document with `value` at `parts` (entries get their required name)."""
    doc: dict = {}
    target = doc
    for index, part in enumerate(parts[:-1]):
        nxt = parts[index + 1]
        if isinstance(nxt, int):
            target[part] = [{"name": "entry"}]
            target = target[part][0]
        elif isinstance(part, int):
            continue
        else:
            target = target.setdefault(part, {})
    target[parts[-1]] = value
    return doc


def _wrong_type(node):
    return {"string": 5, "integer": "5", "number": "1.5", "boolean": "true", "array": {"a": 1},
            "object": [1]}[node.get("type", "string") if "anyOf" not in node else "string"]


def test_the_schema_covers_every_documented_section():
    assert set(config_schema.KNOWN_SECTIONS) == {
        "chat", "expression", "memory", "message_receive", "mood", "emoji", "tool", "voice", "plugin",
        "keyword_reaction", "relationship", "lpmm_knowledge", "dream", "jargon", "response_post_process",
        "chinese_typo", "response_splitter", "debug", "experimental", "maim_message", "telemetry", "model",
    }
    assert len(config_schema.KNOWN_TASKS) == 11
    assert len(LEAVES) > 120


@pytest.mark.parametrize("parts,node", LEAVES, ids=[cd.path_of(p) for p, _ in LEAVES])
def test_every_field_rejects_a_wrong_json_type_at_its_path(parts, node):
    if parts == ["bot_overrides", "qq_account"]:
        value = 1.5  # integers are accepted (stored as strings); a float is not
    else:
        value = _wrong_type(node)
    doc = _document_with(parts, value)
    code, errors = _errors(lambda: cd.prepare_write({}, doc, prefix="config", whole_key="config"))
    assert code == ErrorCode.AGENT_012
    assert list(errors) == ["config." + cd.path_of(parts)]


@pytest.mark.parametrize("path,value,message", [
    ("config_overrides.chat.max_context_size", 0, "Must be an integer between 1 and 200."),
    ("config_overrides.chat.max_context_size", 201, "Must be an integer between 1 and 200."),
    ("config_overrides.chat.max_context_size", 5.0, "Must be an integer between 1 and 200."),
    ("config_overrides.chat.max_context_size", True, "Must be an integer between 1 and 200."),
    ("config_overrides.chat.planner_size", -0.1, "Must be a number greater than or equal to 0."),
    ("config_overrides.chat.mentioned_bot_reply", 1, "Must be a boolean (true or false)."),
    ("persona.state_probability", 1.01, "Must be a number between 0 and 1."),
    ("persona.personality", "x" * 5001, "Must be a string of at most 5000 characters."),
    ("config_overrides.emoji.emoji_chance", 2, "Must be a number between 0 and 1."),
    ("config_overrides.maim_message.port", 65536, "Must be an integer between 0 and 65535."),
    ("config_overrides.memory.max_memory_number", 0, "Must be an integer greater than or equal to 1."),
    ("config_overrides.lpmm_knowledge.qa_ppr_damping", -1, "Must be a number between 0 and 1."),
    ("config_overrides.chinese_typo.min_freq", -1, "Must be an integer greater than or equal to 0."),
])
def test_ranges(path, value, message):
    parts = path.split(".")
    code, errors = _errors(lambda: cd.prepare_write({}, _document_with(parts, value)))
    assert code == ErrorCode.AGENT_012
    assert errors == {path: [message]}


def test_errors_deep_inside_sections_are_all_reported_together():
    doc = {
        "persona": {"states": ["ok", 3], "state_probability": "high"},
        "bot_overrides": {"platforms": ["qq:1", 2], "alias_names": "Mai"},
        "config_overrides": {
            "chat": {"max_context_size": "18", "talk_value_rules": [{"target": ""}, "x"]},
            "message_receive": {"ban_words": [""], "ban_msgs_regex": ["(unclosed"]},
            "keyword_reaction": {"keyword_rules": [{"keywords": "bot"}], "regex_rules": [{"regex": ["[x"]}]},
            "experimental": {"chat_prompts": [None]},
            "model": {
                "api_providers": [{"name": "A", "base_url": "ftp://x", "timeout": 0}, {"base_url": ""},
                                  {"name": "a"}],
                "models": [{"name": "m", "temperature": 3, "extra_params": []}],
                "model_task_config": {"replyer": {"model_list": "m", "max_tokens": 0, "slow_threshold": 0}},
            },
            "tool": [],
        },
    }
    code, errors = _errors(lambda: cd.prepare_write({}, doc, prefix="config"))
    assert code == ErrorCode.AGENT_012
    model = "config.config_overrides.model"
    assert set(errors) == {
        "config.persona.states[1]", "config.persona.state_probability", "config.bot_overrides.platforms[1]",
        "config.bot_overrides.alias_names", "config.config_overrides.chat.max_context_size",
        "config.config_overrides.chat.talk_value_rules[1]", "config.config_overrides.message_receive.ban_words[0]",
        "config.config_overrides.message_receive.ban_msgs_regex[0]",
        "config.config_overrides.keyword_reaction.keyword_rules[0].keywords",
        "config.config_overrides.keyword_reaction.regex_rules[0].regex[0]",
        "config.config_overrides.tool", "config.config_overrides.experimental.chat_prompts[0]",
        f"{model}.api_providers[0].base_url", f"{model}.api_providers[0].timeout", f"{model}.api_providers[1].name",
        f"{model}.api_providers[2].name", f"{model}.models[0].temperature", f"{model}.models[0].extra_params",
        f"{model}.model_task_config.replyer.model_list", f"{model}.model_task_config.replyer.max_tokens",
        f"{model}.model_task_config.replyer.slow_threshold",
    }
    # a null *item* of a string list is not a deleted key: it is a wrong type
    assert errors[f"{model}.api_providers[1].name"] == ["This field is required."]
    assert "repeated" in errors[f"{model}.api_providers[2].name"][0]
    assert errors["config.config_overrides.tool"] == ["Must be a JSON object."]
    assert errors == dict(sorted(errors.items()))


def test_containers_must_be_objects():
    for doc, path in [({"persona": [1]}, "persona"), ({"bot_overrides": "x"}, "bot_overrides"),
                      ({"config_overrides": 1}, "config_overrides"), ({"config_overrides": {"model": []}},
                                                                      "config_overrides.model"),
                      ({"config_overrides": {"model": {"api_providers": ["x"]}}},
                       "config_overrides.model.api_providers[0]"),
                      ({"config_overrides": {"model": {"model_task_config": {"replyer": 1}}}},
                       "config_overrides.model.model_task_config.replyer")]:
        code, errors = _errors(lambda: cd.prepare_write({}, doc))
        assert (code, errors) == (ErrorCode.AGENT_012, {path: ["Must be a JSON object."]}), doc


def test_limits_size_and_depth():
    deep: dict = {}
    cursor = deep
    for _ in range(40):
        cursor["x"] = {}
        cursor = cursor["x"]
    code, errors = _errors(lambda: cd.prepare_write({}, {"unknown": deep}))
    assert list(errors) == ["non_field_errors"] and "deeper" in errors["non_field_errors"][0]
    code, errors = _errors(lambda: cd.prepare_write({}, {"blob": "x" * (256 * 1024)}, prefix="config"))
    assert list(errors) == ["config"] and "bytes" in errors["config"][0]


def test_non_object_document():
    code, errors = _errors(lambda: cd.prepare_write({}, [1], prefix="config"))
    assert (code, errors) == (ErrorCode.AGENT_012, {"config": ["Must be a JSON object."]})


def test_keys_with_dots_and_brackets_are_quoted_in_paths():
    doc = {"config_overrides": {"model": {"models": [{"name": "m", "extra_params": {}}],
                                          "model_task_config": {"a.b": {}}}}, "we[ird]": 1}
    paths = [w["path"] for w in cd.document_warnings(cd.prepare_write({}, doc), system_models=set())]
    assert 'config_overrides.model.model_task_config["a.b"]' in paths
    assert '["we[ird]"]' in paths


# --- Normalization, merge, replace ---------------------------------------------------------------------


def test_string_persona_and_integer_qq_account():
    stored = cd.prepare_write({}, {"persona": "A cat.", "bot_overrides": {"qq_account": 1145141919810}})
    assert stored == {"persona": {"personality": "A cat."}, "bot_overrides": {"qq_account": "1145141919810"}}
    # in merge mode a string persona changes only `personality`
    stored = cd.prepare_write({"persona": {"personality": "old", "interest": "games"}}, {"persona": "new"})
    assert stored == {"persona": {"personality": "new", "interest": "games"}}


def test_reserved_warnings_key_is_ignored():
    assert cd.prepare_write({}, {"warnings": [{"x": 1}], "persona": {"interest": "x"}}) == {
        "persona": {"interest": "x"}}


def test_deep_merge_objects_merge_arrays_replace_null_deletes():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": {"f": 1}}
    patch = {"a": {"c": [3], "g": None}, "d": None, "e": {"h": {"i": None, "j": 2}}}
    assert cd.deep_merge(base, patch) == {"a": {"b": 1, "c": [3]}, "e": {"f": 1, "h": {"j": 2}}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1, "e": {"f": 1}}  # inputs untouched
    assert cd.deep_merge(base, {}) == base
    assert cd.deep_merge({"a": [1]}, {"a": {"b": 1}}) == {"a": {"b": 1}}


def test_example_patch_of_the_spec():
    stored = cd.prepare_write({}, EXAMPLE, mode="replace")
    patched = cd.prepare_write(stored, {"config_overrides": {"chat": {"talk_value": 0.5}, "emoji": None}})
    assert patched["config_overrides"]["chat"]["talk_value"] == 0.5
    assert "emoji" not in patched["config_overrides"]
    expected = copy.deepcopy(stored)
    expected["config_overrides"]["chat"]["talk_value"] = 0.5
    del expected["config_overrides"]["emoji"]
    assert patched == expected  # everything else kept, the provider key included


def test_nulls_inside_array_entries_are_dropped_and_replace_drops_nulls_everywhere():
    doc = {"config_overrides": {"model": {"models": [{"name": "m", "temperature": None}]}},
           "persona": {"interest": None}}
    stored = cd.prepare_write({}, doc, mode="replace")
    assert stored == {"config_overrides": {"model": {"models": [{"name": "m"}]}}, "persona": {}}


def test_replace_clears_with_empty_document():
    assert cd.prepare_write(cd.prepare_write({}, EXAMPLE), {}, mode="replace") == {}


def test_rejected_write_reports_but_does_not_touch_the_stored_document():
    stored = cd.prepare_write({}, EXAMPLE)
    snapshot = copy.deepcopy(stored)
    with pytest.raises(ApplicationError):
        cd.prepare_write(stored, {"config_overrides": {"chat": {"max_context_size": -1}}})
    assert stored == snapshot


# --- Masks and secrets ---------------------------------------------------------------------------------


def _provider_doc(*providers):
    return {"config_overrides": {"model": {"api_providers": list(providers)}}}


def test_provider_keys_are_encrypted_at_rest_and_masked_on_read():
    stored = cd.prepare_write({}, _provider_doc({"name": "Mine", "api_key": "sk-secret-1"}, {"name": "Free"}))
    raw = json.dumps(stored)
    assert "sk-secret-1" not in raw
    assert stored["config_overrides"]["model"]["api_providers"][0]["api_key"].startswith(cd.ENCRYPTED_PREFIX)
    masked = cd.mask_document(stored)
    assert [p["api_key"] for p in masked["config_overrides"]["model"]["api_providers"]] == ["********", ""]
    effective = cd.mask_document(cd.effective_document(stored))
    assert [p["api_key"] for p in effective["config_overrides"]["model"]["api_providers"]] == ["********", ""]


def test_mask_keeps_the_stored_key_matching_names_case_insensitively():
    stored = cd.prepare_write({}, _provider_doc({"name": "Mine", "api_key": "sk-1"}))
    again = cd.prepare_write(stored, _provider_doc({"name": " mine ", "api_key": "********"},
                                                   {"name": "Other", "api_key": "sk-2"}))
    keys = [cd.decrypt_secret(p["api_key"]) for p in again["config_overrides"]["model"]["api_providers"]]
    assert keys == ["sk-1", "sk-2"]
    # replace mode: masks refer to the document stored before the request
    replaced = cd.prepare_write(stored, _provider_doc({"name": "MINE", "api_key": "********"}), mode="replace")
    assert cd.decrypt_secret(replaced["config_overrides"]["model"]["api_providers"][0]["api_key"]) == "sk-1"


def test_mask_for_a_provider_without_stored_key_is_rejected():
    stored = cd.prepare_write({}, _provider_doc({"name": "Mine", "api_key": ""}))
    for request in (_provider_doc({"name": "Mine", "api_key": "********"}),
                    _provider_doc({"name": "Renamed", "api_key": "********"})):
        code, errors = _errors(lambda: cd.prepare_write(stored, request, prefix="config"))
        assert code == ErrorCode.AGENT_012
        assert errors == {"config.config_overrides.model.api_providers[0].api_key": [cd.MASK_WITHOUT_KEY]}
    code, errors = _errors(lambda: cd.prepare_write({}, _provider_doc({"name": "New", "api_key": "********"})))
    assert list(errors) == ["config_overrides.model.api_providers[0].api_key"]


def test_empty_string_removes_the_key_and_resending_the_same_plaintext_is_no_change():
    stored = cd.prepare_write({}, _provider_doc({"name": "Mine", "api_key": "sk-1"}))
    assert cd.prepare_write(stored, _provider_doc({"name": "Mine", "api_key": "sk-1"})) == stored
    cleared = cd.prepare_write(stored, _provider_doc({"name": "Mine", "api_key": ""}))
    assert cleared["config_overrides"]["model"]["api_providers"][0]["api_key"] == ""


def test_unchanged_round_trip_of_a_masked_read_keeps_everything():
    stored = cd.prepare_write({}, EXAMPLE, mode="replace")
    assert cd.prepare_write(stored, cd.mask_document(stored), mode="replace") == stored
    assert cd.prepare_write(stored, cd.mask_document(stored)) == stored


def test_provider_api_key_for_chat(settings):
    class AgentStub:
        pk = "agent_000000000001"
        config = cd.prepare_write({}, _provider_doc({"name": "Mine", "api_key": "sk-9"}, {"name": "Free"}))

    assert cd.provider_api_key(AgentStub, "mine") == "sk-9"
    assert cd.provider_api_key(AgentStub, "Free") == ""
    assert cd.provider_api_key(AgentStub, "Missing") == ""
    settings.SECRET_KEY = "a-different-secret-key"  # changed, the old one not kept as a fallback
    assert cd.provider_api_key(AgentStub, "Mine") is None  # undecryptable: unusable, still masked on read
    assert cd.mask_document(AgentStub.config)["config_overrides"]["model"]["api_providers"][0]["api_key"] == "********"


def test_secrets_key_setting_is_used(settings):
    settings.MAIMCONFIG_SECRETS_KEY = "operator-chosen-secret"
    token = cd.encrypt_secret("sk-x")
    assert cd.decrypt_secret(token) == "sk-x"
    settings.MAIMCONFIG_SECRETS_KEY = ""
    with pytest.raises(ValueError):
        cd.decrypt_secret(token)


def test_a_stored_looking_ciphertext_sent_by_a_client_is_encrypted_again():
    token = cd.encrypt_secret("sk-other-agent")
    stored = cd.prepare_write({}, _provider_doc({"name": "Mine", "api_key": token}))
    assert cd.decrypt_secret(stored["config_overrides"]["model"]["api_providers"][0]["api_key"]) == token


# --- System-provider rule --------------------------------------------------------------------------------


def test_system_provider_rule_checks_names_and_references_case_insensitively():
    doc = {"config_overrides": {"model": {
        "api_providers": [{"name": " openai "}, {"name": "Mine"}],
        "models": [{"name": "a", "api_provider": "ANTHROPIC"}, {"name": "b", "api_provider": "Mine"}],
        "model_task_config": {"replyer": {"model_list": ["GPT-4o Mini"]}},
    }}}
    code, errors = _errors(lambda: cd.prepare_write({}, doc, prefix="config"))
    assert code == ErrorCode.AGENT_011
    assert set(errors) == {"config.config_overrides.model.api_providers[0].name",
                           "config.config_overrides.model.models[0].api_provider"}
    assert errors["config.config_overrides.model.models[0].api_provider"] == [
        "'ANTHROPIC' is a system provider; agents cannot reference it in their own models."]


def test_agent_012_is_reported_before_agent_011():
    doc = {"config_overrides": {"model": {"models": [{"name": "x", "api_provider": "OpenAI", "price_in": -1}]}}}
    code, errors = _errors(lambda: cd.prepare_write({}, doc))
    assert code == ErrorCode.AGENT_012


def test_system_model_names_in_model_list_are_allowed():
    doc = {"config_overrides": {"model": {"model_task_config": {"replyer": {"model_list": ["GPT-4o Mini"]}}}}}
    stored = cd.prepare_write({}, doc)
    assert cd.document_warnings(stored) == []


# --- Warnings ---------------------------------------------------------------------------------------------


def test_warnings_codes_and_order():
    doc = {
        "extra_top": 1,
        "persona": {"mood": "x"},
        "config_overrides": {
            "chat": {"response_timeout": 30, "interest_rate_mode": "slow"},
            "expression": {"mode": "other"}, "lpmm_knowledge": {"lpmm_mode": "x"}, "maim_message": {"mode": "udp"},
            "tool": {"tool_cache_ttl": 5},
            "my_section": {"anything": [1, {"deep": None}]},
            "model": {
                "api_providers": [{"name": "P", "client_type": "cohere", "extra": 1}],
                "models": [{"name": "m1", "api_provider": "P", "x": 1}, {"name": "m2"}],
                "model_task_config": {"replyer": {"model_list": ["M1", "gpt-4o", "nope"], "foo": 1},
                                      "custom_task": {"whatever": 1}},
                "unknown_model_key": True,
            },
        },
    }
    warnings = cd.document_warnings(cd.prepare_write({}, doc))
    pairs = [(w["path"], w["code"]) for w in warnings]
    assert pairs == sorted(pairs)
    assert set(pairs) == {
        ("config_overrides.chat.interest_rate_mode", "unknown_value"),
        ("config_overrides.chat.response_timeout", "unknown_key"),
        ("config_overrides.expression.mode", "unknown_value"),
        ("config_overrides.lpmm_knowledge.lpmm_mode", "unknown_value"),
        ("config_overrides.maim_message.mode", "unknown_value"),
        ("config_overrides.model.api_providers[0].client_type", "unknown_value"),
        ("config_overrides.model.api_providers[0].extra", "unknown_key"),
        ("config_overrides.model.model_task_config.custom_task", "unknown_task"),
        ("config_overrides.model.model_task_config.replyer.foo", "unknown_key"),
        ("config_overrides.model.model_task_config.replyer.model_list[2]", "unknown_model"),
        ("config_overrides.model.models[0].x", "unknown_key"),
        ("config_overrides.model.models[1].api_provider", "unknown_provider"),
        ("config_overrides.model.unknown_model_key", "unknown_key"),
        ("config_overrides.my_section", "unknown_section"),
        ("config_overrides.tool.tool_cache_ttl", "unknown_key"),
        ("extra_top", "unknown_key"),
        ("persona.mood", "unknown_key"),
    }
    chat = next(w for w in warnings if w["path"] == "config_overrides.chat.response_timeout")
    assert chat["message"] == "Not a known field of chat; kept as given."


def test_unknown_keys_are_kept_exactly():
    doc = {"config_overrides": {"my_section": {"a": [1, "x", {"b": True}]}, "chat": {"custom": {"k": [1]}}}}
    assert cd.prepare_write({}, doc) == doc


def test_warnings_never_contain_provider_keys():
    doc = _provider_doc({"name": "P", "api_key": "sk-should-not-leak", "client_type": "sk-should-not-leak"})
    assert "sk-should-not-leak" not in json.dumps(cd.document_warnings(cd.prepare_write({}, doc)))


# --- Effective view and the complete example -----------------------------------------------------------


def test_effective_view_of_an_empty_document_has_every_known_field():
    effective = cd.effective_document({})
    assert effective["persona"]["state_probability"] == 0.0
    assert effective["bot_overrides"]["platforms"] == []
    assert effective["config_overrides"]["chat"]["max_context_size"] == 18
    assert effective["config_overrides"]["lpmm_knowledge"]["embedding_dimension"] == 768
    assert effective["config_overrides"]["model"]["api_providers"] == []
    assert set(effective["config_overrides"]["model"]["model_task_config"]) == set(config_schema.KNOWN_TASKS)
    for task in effective["config_overrides"]["model"]["model_task_config"].values():
        assert task == {"model_list": [], "max_tokens": 1024, "temperature": 0.3, "slow_threshold": 15.0}
    for parts, node in LEAVES:
        if 0 in parts or "default" not in node:
            continue
        value = effective
        for part in parts:
            value = value[part]
        assert value == node["default"], parts
    assert cd.document_warnings(effective, system_models=set()) == []


def test_effective_view_completes_entries_and_keeps_stored_values():
    stored = cd.prepare_write({}, {"config_overrides": {
        "chat": {"max_context_size": 30, "mine": 1},
        "model": {"api_providers": [{"name": "P", "api_key": "sk"}], "models": [{"name": "m"}],
                  "model_task_config": {"replyer": {"max_tokens": 10}, "custom": {"x": 1}}}}})
    effective = cd.effective_document(stored)
    model = effective["config_overrides"]["model"]
    assert effective["config_overrides"]["chat"]["max_context_size"] == 30
    assert effective["config_overrides"]["chat"]["mine"] == 1
    assert model["api_providers"][0] | {"api_key": None} == {**config_schema.PROVIDER_DEFAULTS, "name": "P", "api_key": None}
    assert model["models"][0] == {**config_schema.MODEL_DEFAULTS, "name": "m"} and model["models"][0]["temperature"] is None
    assert model["model_task_config"]["replyer"]["max_tokens"] == 10
    assert model["model_task_config"]["replyer"]["temperature"] == 0.3
    assert model["model_task_config"]["custom"] == {"x": 1}


def test_complete_example_round_trips():
    stored = cd.prepare_write({}, EXAMPLE, mode="replace")
    assert cd.document_warnings(stored) == []
    expected = copy.deepcopy(EXAMPLE)
    expected["config_overrides"]["model"]["api_providers"][0]["api_key"] = "********"
    assert cd.mask_document(stored) == expected
    # the effective view adds nothing the example did not already set, except the absent tasks
    effective = cd.mask_document(cd.effective_document(stored))
    tasks = effective["config_overrides"]["model"].pop("model_task_config")
    expected_tasks = expected["config_overrides"]["model"].pop("model_task_config")
    assert effective == expected
    assert {k: tasks[k] for k in expected_tasks} == expected_tasks


def test_openapi_schema_is_derived_from_the_json_schema():
    response_schema = config_schema.openapi_schema(request=False)
    request_schema = config_schema.openapi_schema(request=True)
    chat = response_schema["properties"]["config_overrides"]["properties"]["chat"]["properties"]
    assert chat["max_context_size"] == {"type": "integer", "default": 18, "minimum": 1, "maximum": 200}
    assert "oneOf" in request_schema["properties"]["persona"]
    assert "$ref" not in json.dumps(response_schema)
