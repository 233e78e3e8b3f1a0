"""agent-config.md §3, table by table, typed in by hand (issue 16 item 9).

The generated tests of `test_config_document.py` walk the production schema, so a wrong type, range or
default in the schema would pass them. Here every documented field is written out from the
specification's tables — type, default and limits — independently of `catalogue/schemas`, and each is
checked against the implementation: the effective view shows the documented default; values at the
documented limits are accepted; a value just outside a limit, and each JSON type the §2 type table
rejects, is refused with AGENT_012 at the field's path.
"""

from dataclasses import dataclass, field

import pytest

from agents import configdoc as cd
from core.errors import ErrorCode
from core.exceptions import ApplicationError

ABSENT = object()


@dataclass(frozen=True)
class Field:
    path: str            # dotted; `[]` marks the entry of a list (providers, models)
    type: str            # string, integer, number, boolean, string[], object[], array, object
    default: object
    min: float | None = None
    max: float | None = None
    exclusive_min: bool = False
    max_length: int | None = None
    min_length: int | None = None
    max_items: int | None = None
    item_max_length: int | None = None
    item_min_length: int | None = None
    enum: tuple = ()
    extra: dict = field(default_factory=dict)

    def __str__(self):
        return self.path


def S(path, default="", **kw):  # noqa: N802 - table shorthand
    return Field(path, "string", default, **kw)


def I(path, default, **kw):  # noqa: N802,E743
    return Field(path, "integer", default, **kw)


def N(path, default, **kw):  # noqa: N802
    return Field(path, "number", default, **kw)


def B(path, default):  # noqa: N802
    return Field(path, "boolean", default)


P, C = "persona.", "config_overrides."
PROVIDER, MODEL, TASK = C + "model.api_providers[].", C + "model.models[].", C + "model.model_task_config.replyer."

SPEC = [
    # §3.1 persona
    *[S(P + name, max_length=5000) for name in
      ("personality", "reply_style", "interest", "plan_style", "private_plan_style", "visual_style")],
    Field(P + "states", "array", [], max_items=50, item_max_length=5000),
    N(P + "state_probability", 0.0, min=0, max=1),
    # §3.2 bot_overrides
    S("bot_overrides.platform", max_length=50),
    S("bot_overrides.qq_account", max_length=50),
    S("bot_overrides.nickname", max_length=100),
    Field("bot_overrides.platforms", "string[]", [], max_items=50, item_max_length=100),
    Field("bot_overrides.alias_names", "string[]", [], max_items=50, item_max_length=100),
    # §3.3 chat
    I(C + "chat.max_context_size", 18, min=1, max=200),
    S(C + "chat.interest_rate_mode", "fast", enum=("fast", "accurate")),
    N(C + "chat.planner_size", 1.5, min=0),
    B(C + "chat.mentioned_bot_reply", True),
    N(C + "chat.auto_chat_value", 1.0, min=0),
    B(C + "chat.enable_auto_chat_value_rules", True),
    N(C + "chat.at_bot_inevitable_reply", 1.0, min=0),
    N(C + "chat.planner_smooth", 3.0, min=0),
    N(C + "chat.talk_value", 1.0, min=0),
    B(C + "chat.enable_talk_value_rules", True),
    Field(C + "chat.talk_value_rules", "object[]", [], max_items=100),
    Field(C + "chat.auto_chat_value_rules", "object[]", [], max_items=100),
    B(C + "chat.include_planner_reasoning", False),
    # expression
    S(C + "expression.mode", "classic", enum=("classic", "exp_model")),
    Field(C + "expression.learning_list", "array", [], max_items=100),
    Field(C + "expression.expression_groups", "array", [], max_items=100),
    B(C + "expression.reflect", False),
    S(C + "expression.reflect_operator_id", max_length=200),
    Field(C + "expression.allow_reflect", "string[]", [], max_items=100),
    # memory
    I(C + "memory.max_memory_number", 100, min=1),
    I(C + "memory.memory_build_frequency", 1, min=1),
    I(C + "memory.max_agent_iterations", 5, min=1),
    B(C + "memory.enable_jargon_detection", True),
    # message_receive
    Field(C + "message_receive.ban_words", "string[]", [], max_items=1000, item_max_length=200, item_min_length=1),
    Field(C + "message_receive.ban_msgs_regex", "string[]", [], max_items=1000, item_max_length=500,
          item_min_length=1),
    # mood
    B(C + "mood.enable_mood", True),
    N(C + "mood.mood_update_threshold", 1.0, min=0),
    S(C + "mood.emotion_style", max_length=2000),
    # emoji
    N(C + "emoji.emoji_chance", 0.6, min=0, max=1),
    I(C + "emoji.max_reg_num", 200, min=0),
    B(C + "emoji.do_replace", True),
    I(C + "emoji.check_interval", 120, min=1),
    B(C + "emoji.steal_emoji", True),
    B(C + "emoji.content_filtration", False),
    S(C + "emoji.filtration_prompt", max_length=2000),
    # tool, voice, plugin
    B(C + "tool.enable_tool", False),
    B(C + "voice.enable_asr", False),
    B(C + "plugin.enable_plugins", True),
    B(C + "plugin.tenant_mode_disable_plugins", True),
    Field(C + "plugin.allowed_plugins", "string[]", [], max_items=500),
    Field(C + "plugin.blocked_plugins", "string[]", [], max_items=500),
    # keyword_reaction, relationship
    Field(C + "keyword_reaction.keyword_rules", "object[]", [], max_items=500),
    Field(C + "keyword_reaction.regex_rules", "object[]", [], max_items=500),
    B(C + "relationship.enable_relationship", True),
    # lpmm_knowledge
    B(C + "lpmm_knowledge.enable", False),
    S(C + "lpmm_knowledge.lpmm_mode", "", enum=("", "classic", "agent")),
    I(C + "lpmm_knowledge.rag_synonym_search_top_k", 5, min=1),
    N(C + "lpmm_knowledge.rag_synonym_threshold", 0.8, min=0, max=1),
    I(C + "lpmm_knowledge.info_extraction_workers", 4, min=1),
    I(C + "lpmm_knowledge.qa_relation_search_top_k", 10, min=1),
    N(C + "lpmm_knowledge.qa_relation_threshold", 0.6, min=0, max=1),
    I(C + "lpmm_knowledge.qa_paragraph_search_top_k", 5, min=1),
    N(C + "lpmm_knowledge.qa_paragraph_node_weight", 0.5, min=0),
    I(C + "lpmm_knowledge.qa_ent_filter_top_k", 10, min=1),
    N(C + "lpmm_knowledge.qa_ppr_damping", 0.85, min=0, max=1),
    I(C + "lpmm_knowledge.qa_res_top_k", 3, min=1),
    I(C + "lpmm_knowledge.embedding_dimension", 768, min=1),
    # dream, jargon, response_post_process
    I(C + "dream.interval_minutes", 60, min=1),
    I(C + "dream.max_iterations", 3, min=1),
    B(C + "jargon.all_global", False),
    B(C + "response_post_process.enable_response_post_process", False),
    # chinese_typo
    B(C + "chinese_typo.enable", False),
    N(C + "chinese_typo.error_rate", 0.0, min=0, max=1),
    I(C + "chinese_typo.min_freq", 0, min=0),
    N(C + "chinese_typo.tone_error_rate", 0.0, min=0, max=1),
    N(C + "chinese_typo.word_replace_rate", 0.0, min=0, max=1),
    # response_splitter
    B(C + "response_splitter.enable", False),
    I(C + "response_splitter.max_length", 100, min=1),
    I(C + "response_splitter.max_sentence_num", 5, min=1),
    B(C + "response_splitter.enable_kaomoji_protection", True),
    B(C + "response_splitter.enable_overflow_return_all", True),
    # debug: seven booleans
    *[B(C + "debug." + name, False) for name in
      ("show_prompt", "show_replyer_prompt", "show_replyer_reasoning", "show_jargon_prompt", "show_memory_prompt",
       "show_planner_prompt", "show_lpmm_paragraph")],
    # experimental
    B(C + "experimental.enable_friend_chat", False),
    Field(C + "experimental.chat_prompts", "string[]", [], max_items=100, item_max_length=5000),
    # maim_message
    B(C + "maim_message.use_custom", False),
    S(C + "maim_message.host", max_length=255),
    I(C + "maim_message.port", 0, min=0, max=65535),
    S(C + "maim_message.mode", "", enum=("", "ws", "tcp")),
    B(C + "maim_message.use_wss", False),
    S(C + "maim_message.cert_file", max_length=500),
    S(C + "maim_message.key_file", max_length=500),
    Field(C + "maim_message.auth_token", "string[]", [], max_items=20, item_max_length=500),
    # telemetry
    B(C + "telemetry.enable", True),
    # §3.4 model: providers
    S(PROVIDER + "name", ABSENT, min_length=1, max_length=100),
    S(PROVIDER + "base_url", "", max_length=500, extra={"long": "https://api.example.com/" + "v" * 476}),
    S(PROVIDER + "api_key", "", max_length=500),
    S(PROVIDER + "client_type", "openai", enum=("openai", "gemini", "anthropic")),
    B(PROVIDER + "is_server_provider", False),
    I(PROVIDER + "max_retry", 2, min=0, max=10),
    I(PROVIDER + "timeout", 10, min=1, max=600),
    I(PROVIDER + "retry_interval", 10, min=0, max=600),
    # models
    S(MODEL + "name", ABSENT, min_length=1, max_length=100),
    S(MODEL + "model_identifier", "", max_length=200),
    S(MODEL + "api_provider", "", max_length=100),
    N(MODEL + "temperature", ABSENT, min=0, max=2),
    N(MODEL + "price_in", 0.0, min=0),
    N(MODEL + "price_out", 0.0, min=0),
    Field(MODEL + "extra_params", "object", {}),
    B(MODEL + "force_stream_mode", False),
    # a known task (`replyer`; the other ten known tasks share this table)
    Field(TASK + "model_list", "string[]", [], max_items=20),
    I(TASK + "max_tokens", 1024, min=1, max=1_000_000),
    N(TASK + "temperature", 0.3, min=0, max=2),
    N(TASK + "slow_threshold", 15.0, min=0, exclusive_min=True),
]

# §2: what each type rejects (`qq_account` also accepts an integer, §4.1).
WRONG_TYPES = {
    "string": [5, 1.5, True, [], {}],
    "integer": [5.0, "5", True, 1.5],
    "number": ["1.5", True, [], {}],
    "boolean": [0, 1, "true", "false"],
    "string[]": ["x", [5], [True], {}],
    "object[]": [{}, ["x"], [[1]], "x"],
    "array": [{}, "x", 5],
    "object": [[1], "x", 5],
}


def _split(path: str):
    """(`…list` path, entry key) for entry fields, else (path, None)."""
    if "[]." in path:
        head, key = path.split("[].")
        return head, key
    return path, None


def _document(spec: Field, value) -> tuple[dict, str]:
    """A minimal valid document with `value` at the field, and the field's error path."""
    head, key = _split(spec.path)
    if key is None:
        parts, leaf_value = head.split("."), value
    else:
        entry = {"name": "entry"} if key != "name" else {}
        if value is not ABSENT:
            entry[key] = value
        parts, leaf_value = head.split("."), [entry]
    doc: dict = {}
    target = doc
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = leaf_value
    return doc, ("config." + head + (f"[0].{key}" if key else ""))


def _write(doc):
    return cd.prepare_write({}, doc, prefix="config", whole_key="config")


def _refused(spec: Field, value) -> None:
    doc, path = _document(spec, value)
    with pytest.raises(ApplicationError) as info:
        _write(doc)
    assert info.value.code == ErrorCode.AGENT_012
    errors = info.value.data["errors"]
    assert any(key == path or key.startswith(path + "[") for key in errors), (spec.path, value, errors)


def _accepted(spec: Field, value) -> None:
    doc, _ = _document(spec, value)
    _write(doc)


def _effective(spec: Field):
    head, key = _split(spec.path)
    if key is None:
        node = cd.effective_document({})
        for part in head.split("."):
            node = node[part]
        return node
    doc, _ = _document(spec, ABSENT if key != "name" else "entry")
    node = cd.effective_document(doc)
    for part in head.split("."):
        node = node[part]
    return node[0].get(key, ABSENT)


def _fits(spec: Field, length: int):
    """A string value of `length` characters (URLs keep their form)."""
    if "long" in spec.extra and length >= 30:
        base = spec.extra["long"]
        return base[:length] if length <= len(base) else base + "v" * (length - len(base))
    return "x" * length


def _accepted_values(spec: Field) -> list:
    values = []
    if spec.default is not ABSENT:
        values.append(spec.default)
    if spec.type in ("integer", "number"):
        if spec.min is not None and not spec.exclusive_min:
            values.append(int(spec.min) if spec.type == "integer" else spec.min)
        if spec.exclusive_min:
            values.append(0.001)
        if spec.max is not None:
            values.append(int(spec.max) if spec.type == "integer" else spec.max)
        if spec.type == "number":
            values.append(1)  # an integer is a number
    if spec.type == "string":
        if spec.max_length:
            values.append(_fits(spec, spec.max_length))
        values += list(spec.enum)
        if spec.enum:
            values.append("something_else")  # enumerated: kept with a warning, not an error
    if spec.type == "boolean":
        values += [True, False]
    if spec.max_items:
        item = {"string[]": "x", "object[]": {}, "array": "x"}[spec.type]
        if spec.type == "string[]" and spec.item_max_length:
            values.append(["x" * spec.item_max_length])
        values.append([item] * spec.max_items)
    if spec.type == "object":
        values.append({"any": {"nested": [1, "x"]}})
    return values


def _refused_values(spec: Field) -> list:
    values = list(WRONG_TYPES[spec.type])
    if spec.path == "bot_overrides.qq_account":
        values = [v for v in values if not isinstance(v, int) or isinstance(v, bool)]
    if spec.type in ("integer", "number"):
        if spec.min is not None:
            values.append(spec.min if spec.exclusive_min else (spec.min - 1 if spec.type == "integer" else
                                                               spec.min - 0.001))
        if spec.max is not None:
            values.append(spec.max + 1 if spec.type == "integer" else spec.max + 0.001)
    if spec.type == "string" and spec.max_length:
        values.append(_fits(spec, spec.max_length + 1))
    if spec.type == "string" and spec.min_length:
        values.append("")
    if spec.max_items:
        item = {"string[]": "x", "object[]": {}, "array": "x"}[spec.type]
        values.append([item] * (spec.max_items + 1))
    if spec.item_max_length:
        values.append(["x" * (spec.item_max_length + 1)])
    if spec.item_min_length:
        values.append([""])
    return values


CASES_DEFAULT = [spec for spec in SPEC if spec.default is not ABSENT or spec.path.endswith("temperature")]


@pytest.mark.parametrize("spec", CASES_DEFAULT, ids=str)
def test_documented_default(spec):
    assert _effective(spec) == spec.default if spec.default is not ABSENT else _effective(spec) in (ABSENT, None)
    if spec.default is not ABSENT and not isinstance(spec.default, bool) and spec.type in ("integer", "number"):
        assert type(_effective(spec)) is (int if spec.type == "integer" else type(spec.default))


@pytest.mark.parametrize("spec", SPEC, ids=str)
def test_documented_values_are_accepted(spec):
    for value in _accepted_values(spec):
        _accepted(spec, value)


@pytest.mark.parametrize("spec", SPEC, ids=str)
def test_values_outside_the_table_are_refused_at_their_path(spec):
    for value in _refused_values(spec):
        _refused(spec, value)


# --- Rules of the tables that are not a type or a range -----------------------------------------------


@pytest.mark.parametrize("path,value", [
    (C + "chat.interest_rate_mode", "medium"), (C + "expression.mode", "x"),
    (C + "lpmm_knowledge.lpmm_mode", "turbo"), (C + "maim_message.mode", "udp"),
])
def test_unknown_enumerated_values_are_kept_with_a_warning(path, value):
    parts = path.split(".")
    doc: dict = {}
    target = doc
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value
    _write(doc)  # kept: not an error
    warnings = cd.document_warnings(doc, system_models=set())
    assert [w["code"] for w in warnings if w["path"] == path] == ["unknown_value"]


def test_qq_account_integer_becomes_its_decimal_string():
    normalized = cd.normalize_document({"bot_overrides": {"qq_account": 123456789}})
    assert normalized["bot_overrides"]["qq_account"] == "123456789"


def test_states_items_are_strings_or_objects():
    spec = next(s for s in SPEC if s.path == P + "states")
    _accepted(spec, ["a calm mood", {"name": "正常", "keywords": ["你好"]}])
    _refused(spec, [5])
    _refused(spec, ["x" * 5001])


def test_regexes_must_compile():
    _refused(next(s for s in SPEC if s.path.endswith("ban_msgs_regex")), ["("])
    rules = next(s for s in SPEC if s.path.endswith("regex_rules"))
    _accepted(rules, [{"regex": ["^hi$"], "reaction": "hello"}])
    _refused(rules, [{"regex": ["("], "reaction": "x"}])
    keywords = next(s for s in SPEC if s.path.endswith("keyword_rules"))
    _accepted(keywords, [{"keywords": ["你好"], "reaction": "hi", "free": 1}])
    _refused(keywords, [{"keywords": "你好"}])
    _refused(keywords, [{"reaction": 5}])


def test_entry_lists_hold_at_most_fifty_uniquely_named_entries():
    for head in (C + "model.api_providers", C + "model.models"):
        parts = head.split(".")
        fifty = {parts[0]: {"model": {parts[2]: [{"name": f"e{i}"} for i in range(50)]}}}
        _write(fifty)
        fifty[parts[0]]["model"][parts[2]].append({"name": "e50"})
        with pytest.raises(ApplicationError):
            _write(fifty)
        twins = {parts[0]: {"model": {parts[2]: [{"name": "Same"}, {"name": "same"}]}}}
        with pytest.raises(ApplicationError):
            _write(twins)


@pytest.mark.parametrize("url", ["ftp://api.example.com", "https://user:pw@api.example.com",
                                 "https://api.example.com/v1?x=1", "https://api.example.com/#f", "not a url"])
def test_base_url_form(url):
    _refused(next(s for s in SPEC if s.path == PROVIDER + "base_url"), url)


def test_the_table_covers_every_documented_section():
    sections = {spec.path.split(".")[1] for spec in SPEC if spec.path.startswith(C)}
    assert sections == {
        "chat", "expression", "memory", "message_receive", "mood", "emoji", "tool", "voice", "plugin",
        "keyword_reaction", "relationship", "lpmm_knowledge", "dream", "jargon", "response_post_process",
        "chinese_typo", "response_splitter", "debug", "experimental", "maim_message", "telemetry", "model"}
