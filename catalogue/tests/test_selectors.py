"""System catalogue loader (api.md §12): shipped files, settings paths, fallback, key resolution."""

import tomllib

import pytest

from catalogue import selectors as catalogue


@pytest.fixture(autouse=True)
def _fresh():
    catalogue.clear_cache()
    yield
    catalogue.clear_cache()


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_shipped_model_catalogue(settings, monkeypatch):
    monkeypatch.delenv("MAIMCONFIG_PROVIDER_KEY_OPENAI", raising=False)
    loaded = catalogue.load_model_catalogue()
    assert loaded.source == catalogue.DYNAMIC
    assert [p["name"] for p in loaded.providers] == ["OpenAI", "Anthropic"]
    assert [m["name"] for m in loaded.models] == ["GPT-4o", "GPT-4o Mini", "Claude 3.5 Sonnet"]
    assert loaded.defaults == {"replyer": {"model_list": ["GPT-4o Mini"], "max_tokens": 1024, "temperature": 0.3,
                                           "slow_threshold": 15.0}}
    assert all(p["api_key"] == "" for p in loaded.providers)  # the shipped file has no keys
    assert catalogue.system_provider_names() == {"openai", "anthropic"}
    assert "gpt-4o mini" in catalogue.system_model_names()


def test_shipped_catalogue_equals_the_fallback_providers_and_models():
    shipped = catalogue.load_model_catalogue()
    fallback = catalogue.ModelCatalogue(
        providers=[catalogue._provider(p) for p in catalogue.FALLBACK_PROVIDERS],
        models=[catalogue._model(m) for m in catalogue.FALLBACK_MODELS], defaults={}, source=catalogue.FALLBACK)
    assert shipped.providers == fallback.providers
    assert shipped.models == fallback.models


def test_provider_key_from_environment(monkeypatch):
    monkeypatch.setenv("MAIMCONFIG_PROVIDER_KEY_OPENAI", "sk-server")
    loaded = catalogue.load_model_catalogue()
    assert loaded.provider("openai")["api_key"] == "sk-server"
    assert loaded.provider("Anthropic")["api_key"] == ""
    assert loaded.model("gpt-4O")["model_identifier"] == "gpt-4o"
    assert catalogue.provider_key_env_name("My Provider-2.0") == "MAIMCONFIG_PROVIDER_KEY_MY_PROVIDER_2_0"


def test_custom_file_with_defaults_and_file_key(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("MAIMCONFIG_PROVIDER_KEY_LOCAL_LLM", raising=False)
    settings.MAIMBOT_MODEL_CONFIG_PATH = _write(tmp_path / "models.toml", """
[[api_providers]]
name = "Local LLM"
api_key = "file-key"
timeout = 42

[[models]]
model_identifier = "m-1"
api_provider = "Local LLM"
temperature = 0.2
""")
    loaded = catalogue.load_model_catalogue()
    assert loaded.source == catalogue.DYNAMIC
    assert loaded.providers[0] == {"name": "Local LLM", "api_key": "file-key", "timeout": 42,
                                        "client_type": "openai", "base_url": ""}
    assert loaded.models[0] == {"name": "Unknown Model", "model_identifier": "m-1", "api_provider": "Local LLM",
                                "description": "Unknown Model", "price_in": 0.0, "price_out": 0.0,
                                "temperature": 0.2}
    monkeypatch.setenv("MAIMCONFIG_PROVIDER_KEY_LOCAL_LLM", "env-key")
    assert catalogue.load_model_catalogue().providers[0]["api_key"] == "env-key"


@pytest.mark.parametrize("content,reason", [
    (None, "missing"),
    ("this is = = not toml", "invalid"),
    ("api_providers = 5", "providers not an array"),
    ("api_providers = [1, 2]", "providers not tables"),
    ("models = 'x'", "models not an array"),
    ("model_task_config = [1]", "tasks not a table"),
    (b"\xff\xfe name = 1", "not utf-8"),
    ("[[models]]\nname = 'm'\nprice_in = inf", "inf, which JSON cannot represent"),
    ("[model_task_config.replyer]\ntemperature = nan", "nan in the defaults"),
    ("[model_task_config.replyer]\ntemperature = 1e999", "overflowing literal"),
])
def test_broken_model_catalogue_falls_back(settings, tmp_path, content, reason, caplog):
    path = tmp_path / "models.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    settings.MAIMBOT_MODEL_CONFIG_PATH = str(path)
    loaded = catalogue.load_model_catalogue()
    assert loaded.source == catalogue.FALLBACK
    assert [p["name"] for p in loaded.providers] == ["OpenAI", "Anthropic"]
    assert loaded.defaults == {}
    assert str(path) in caplog.text


def test_directory_instead_of_file_falls_back(settings, tmp_path):
    settings.MAIMBOT_MODEL_CONFIG_PATH = str(tmp_path)
    assert catalogue.load_model_catalogue().source == catalogue.FALLBACK
    settings.MAIMBOT_BOT_CONFIG_TEMPLATE_PATH = str(tmp_path)
    assert catalogue.load_bot_defaults().source == catalogue.FALLBACK


def test_file_is_reread_when_it_changes(settings, tmp_path):
    path = tmp_path / "models.toml"
    settings.MAIMBOT_MODEL_CONFIG_PATH = _write(path, '[[api_providers]]\nname = "A"\n')
    assert catalogue.system_provider_names() == {"a"}
    _write(path, '[[api_providers]]\nname = "Bee"\n')
    assert catalogue.system_provider_names() == {"bee"}


def test_relative_paths_resolve_against_the_repository_root(settings):
    settings.MAIMBOT_MODEL_CONFIG_PATH = "config/model_config.toml"
    assert catalogue.resolve_path("config/model_config.toml") == settings.BASE_DIR / "config" / "model_config.toml"
    assert catalogue.load_model_catalogue().source == catalogue.DYNAMIC


def test_shipped_bot_defaults_equal_the_documented_defaults():
    loaded = catalogue.load_bot_defaults()
    assert loaded.source == catalogue.DYNAMIC
    assert loaded.data == catalogue.documented_bot_defaults()
    assert len(loaded.data) == 23
    with open(catalogue.resolve_path("config/bot_config.toml"), "rb") as handle:
        assert tomllib.load(handle) == loaded.data


def test_bot_defaults_agree_with_the_effective_view_of_an_empty_document():
    from agents.configdoc import effective_document

    effective = effective_document({})
    data = catalogue.load_bot_defaults().data
    assert data["bot"] == effective["bot_overrides"]
    assert data["personality"] == effective["persona"]
    for section, values in effective["config_overrides"].items():
        if section != "model":
            assert data[section] == values, section


def test_bot_defaults_custom_file_masks_secrets_and_fills_missing_tables(settings, tmp_path):
    settings.MAIMBOT_BOT_CONFIG_TEMPLATE_PATH = _write(tmp_path / "bot.toml", """
top_level_scalar = 1
[bot]
nickname = "Mai"
[maim_message]
auth_token = ["secret-token"]
[log]
level = "INFO"
[llm]
API_KEY = "sk-file"
password = ""
[llm.nested]
Secret = "x"
token = 5
[[llm.list]]
api_key = "sk-in-array"
""")
    data = catalogue.load_bot_defaults().data
    assert data["bot"] == {"nickname": "Mai"}
    assert data["chat"] == {} and data["telemetry"] == {}
    assert data["maim_message"] == {"auth_token": "********"}
    assert data["log"] == {"level": "INFO"}
    assert data["llm"] == {"API_KEY": "********", "password": "", "nested": {"Secret": "********", "token": "********"},
                           "list": [{"api_key": "********"}]}
    assert "top_level_scalar" not in data
    assert len(data) == 25


def test_bot_defaults_fallback(settings, tmp_path):
    settings.MAIMBOT_BOT_CONFIG_TEMPLATE_PATH = str(tmp_path / "missing.toml")
    loaded = catalogue.load_bot_defaults()
    assert loaded.source == catalogue.FALLBACK
    assert loaded.data == catalogue.documented_bot_defaults()


@pytest.mark.django_db
def test_bot_defaults_with_nan_fall_back_instead_of_a_500(settings, tmp_path, operator_client):
    settings.MAIMBOT_BOT_CONFIG_TEMPLATE_PATH = _write(tmp_path / "bot.toml", "[chat]\ntalk_value = nan\n")
    response = operator_client.get("/api/v2/system/bot-defaults")
    assert response.status_code == 200
    assert response["X-Config-Source"] == catalogue.FALLBACK
