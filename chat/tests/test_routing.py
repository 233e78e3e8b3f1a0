"""Model choice from the agent's configuration (agent-config.md §7.3, §7.4)."""

import pytest

from agents.tests.factories import AgentFactory
from chat.prompt import effective_document
from chat.routing import choose_models
from chat.tests.conftest import llm_document, stored


def choice_for(config):
    agent = AgentFactory(config=config)
    return choose_models(agent, effective_document(agent))


def test_agent_model_with_its_provider_and_decrypted_key(db):
    choice = choice_for(stored(llm_document("http://127.0.0.1:9/v1/", extra={"top_k": 3, "stream": True})))
    assert choice.step == 1 and choice.responder == "llm"
    target = choice.target
    assert target.model_identifier == "fake-1"
    assert target.base_url == "http://127.0.0.1:9/v1"  # trailing slash removed
    assert target.api_key == "sk-agent-secret-123"
    assert "sk-agent" not in repr(target)
    assert target.temperature == 0.4  # the model's temperature wins over the task's
    assert target.max_tokens == 321  # the task's max_tokens
    assert target.extra_params == {"top_k": 3}  # stream is ignored
    assert target.provider_kind == "agent"


def test_task_temperature_when_the_model_has_none(db):
    choice = choice_for(stored(llm_document("http://127.0.0.1:9/v1", temperature=None)))
    assert choice.target.temperature == 0.9


def test_unusable_candidates_fall_to_offline(db):
    doc = llm_document("http://127.0.0.1:9/v1")
    doc["config_overrides"]["model"]["models"][0]["model_identifier"] = ""
    assert choice_for(stored(doc)).responder == "offline"

    doc = llm_document("http://127.0.0.1:9/v1")
    doc["config_overrides"]["model"]["api_providers"][0]["client_type"] = "anthropic"
    assert choice_for(stored(doc)).responder == "offline"

    doc = llm_document("")
    assert choice_for(stored(doc)).responder == "offline"


def test_empty_agent_key_is_usable(db):
    choice = choice_for(stored(llm_document("http://127.0.0.1:9/v1", api_key="")))
    assert choice.target is not None and choice.target.api_key == ""


def test_undecryptable_key_makes_the_provider_unusable(db):
    doc = llm_document("http://127.0.0.1:9/v1")
    doc["config_overrides"]["model"]["api_providers"][0]["api_key"] = "enc:v1:not-a-valid-token"
    assert choice_for(doc).responder == "offline"


def test_no_configuration_is_offline(db):
    choice = choice_for({})
    assert choice.step == 3 and choice.target is None and choice.responder == "offline"


SYSTEM_CATALOGUE = """
[[api_providers]]
name = "FakeSystem"
base_url = "{base_url}"
client_type = "openai"
timeout = 30

[[api_providers]]
name = "NoKey"
base_url = "{base_url}"
client_type = "openai"

[[models]]
name = "Sys Model"
model_identifier = "sys-1"
api_provider = "FakeSystem"
temperature = 0.1
extra_params = {{ seed = 7 }}

[[models]]
name = "Keyless"
model_identifier = "keyless-1"
api_provider = "NoKey"

[model_task_config.replyer]
model_list = ["Keyless", "Sys Model"]
max_tokens = 777
temperature = 0.5
"""


@pytest.fixture
def system_catalogue(settings, tmp_path, monkeypatch):
    path = tmp_path / "system_models.toml"
    path.write_text(SYSTEM_CATALOGUE.format(base_url="http://127.0.0.1:9/v1"))
    settings.MAIMBOT_MODEL_CONFIG_PATH = str(path)
    monkeypatch.setenv("MAIMCONFIG_PROVIDER_KEY_FAKESYSTEM", "sk-system-secret")
    return path


def test_server_default_when_the_agent_names_nothing(db, system_catalogue):
    choice = choice_for({})
    assert choice.step == 2 and [t.model_identifier for t in choice.candidates] == ["sys-1"]  # Keyless: no key
    target = choice.target
    assert target.provider_kind == "system" and target.api_key == "sk-system-secret"
    assert target.temperature == 0.1 and target.max_tokens == 777 and target.timeout == 30
    assert target.extra_params == {"seed": 7}


def test_agent_list_may_name_a_system_model_with_the_agent_task(db, system_catalogue):
    doc = {"config_overrides": {"model": {"model_task_config": {"replyer": {
        "model_list": ["missing", " sys model "], "max_tokens": 55}}}}}
    choice = choice_for(doc)
    assert choice.step == 1 and choice.target.model_identifier == "sys-1" and choice.target.max_tokens == 55


def test_system_model_without_server_key_is_unusable(db, system_catalogue, monkeypatch):
    monkeypatch.delenv("MAIMCONFIG_PROVIDER_KEY_FAKESYSTEM")
    assert choice_for({}).responder == "offline"


def test_agent_model_naming_a_system_provider_is_unusable(db, system_catalogue):
    doc = llm_document("http://127.0.0.1:9/v1")
    doc["config_overrides"]["model"]["models"][0]["api_provider"] = "FakeSystem"
    # The agent's model points at a system provider: unusable; the agent list has nothing else -> step 2.
    assert choice_for(doc).step == 2


def test_shipped_catalogue_without_keys_is_offline(db):
    assert choice_for({}).responder == "offline"
