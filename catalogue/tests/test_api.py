"""System routes (api.md §12.1, §12.2): operator only, source reported, never a 500."""

import pytest

from catalogue import selectors as catalogue

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh():
    catalogue.clear_cache()
    yield
    catalogue.clear_cache()


def test_system_models_from_the_shipped_file(operator_client, monkeypatch):
    monkeypatch.setenv("MAIMCONFIG_PROVIDER_KEY_OPENAI", "sk-server-secret")
    response = operator_client.get("/api/v2/system/models")
    body = response.json()
    assert response.status_code == 200 and body["success"] is True
    assert response["X-Config-Source"] == "dynamic_toml"
    assert body["message"].endswith("(Source: dynamic_toml)")
    data = body["data"]
    assert data["source"] == "dynamic_toml"
    assert data["providers"] == [
        {"name": "OpenAI", "client_type": "openai", "base_url": "https://api.openai.com/v1",
         "is_server_provider": True, "has_api_key": True},
        {"name": "Anthropic", "client_type": "anthropic", "base_url": "https://api.anthropic.com",
         "is_server_provider": True, "has_api_key": False},
    ]
    assert data["models"][1] == {"name": "GPT-4o Mini", "model_identifier": "gpt-4o-mini", "api_provider": "OpenAI",
                                 "description": "Small, fast, low-cost OpenAI model", "price_in": 0.15,
                                 "price_out": 0.6}
    assert data["defaults"]["replyer"]["model_list"] == ["GPT-4o Mini"]
    assert "sk-server-secret" not in response.content.decode()
    assert operator_client.get("/api/v2/system/models/").status_code == 200


def test_file_keys_are_never_returned(operator_client, settings, tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[[api_providers]]\nname = "X"\napi_key = "sk-in-file"\n'
                    '[[models]]\nname = "x"\nextra_params = { api_key = "sk-extra" }\n')
    settings.MAIMBOT_MODEL_CONFIG_PATH = str(path)
    response = operator_client.get("/api/v2/system/models")
    assert response.json()["data"]["providers"][0]["has_api_key"] is True
    assert "sk-in-file" not in response.content.decode() and "sk-extra" not in response.content.decode()


@pytest.mark.parametrize("content", [None, "[[broken", "models = {a = 1}"])
def test_system_models_fallback(operator_client, settings, tmp_path, content):
    path = tmp_path / "m.toml"
    if content is not None:
        path.write_text(content)
    settings.MAIMBOT_MODEL_CONFIG_PATH = str(path)
    response = operator_client.get("/api/v2/system/models")
    body = response.json()
    assert response.status_code == 200 and body["success"] is True
    assert response["X-Config-Source"] == "static_fallback"
    assert body["message"].endswith("(Source: static_fallback)")
    assert body["data"]["source"] == "static_fallback" and body["data"]["defaults"] == {}
    assert [m["name"] for m in body["data"]["models"]] == ["GPT-4o", "GPT-4o Mini", "Claude 3.5 Sonnet"]


def test_bot_defaults(operator_client):
    response = operator_client.get("/api/v2/system/bot-defaults")
    body = response.json()
    assert response.status_code == 200 and response["X-Config-Source"] == "dynamic_toml"
    assert body["message"].endswith("(Source: dynamic_toml)")
    assert len(body["data"]) == 23
    assert body["data"]["chat"]["max_context_size"] == 18
    assert body["data"]["bot"]["nickname"] == ""


def test_bot_defaults_equal_the_effective_view_of_an_empty_agent(operator_client):
    from agents.tests.factories import AgentFactory

    agent = AgentFactory()
    effective = operator_client.get(f"/api/v2/agents/{agent.pk}/config?effective=true").json()["data"]
    defaults = operator_client.get("/api/v2/system/bot-defaults").json()["data"]
    assert defaults["bot"] == effective["bot_overrides"]
    assert defaults["personality"] == effective["persona"]
    for section, values in effective["config_overrides"].items():
        if section != "model":
            assert defaults[section] == values


@pytest.mark.parametrize("content", [None, "not toml at all ==="])
def test_bot_defaults_fallback(operator_client, settings, tmp_path, content):
    path = tmp_path / "b.toml"
    if content is not None:
        path.write_text(content)
    settings.MAIMBOT_BOT_CONFIG_TEMPLATE_PATH = str(path)
    response = operator_client.get("/api/v2/system/bot-defaults")
    assert response.status_code == 200 and response["X-Config-Source"] == "static_fallback"
    assert response.json()["message"].endswith("(Source: static_fallback)")
    assert response.json()["data"] == catalogue.documented_bot_defaults()


def test_system_routes_are_operator_only(api_client):
    from apikeys.tests.factories import ApiKeyFactory

    for url in ("/api/v2/system/models", "/api/v2/system/bot-defaults"):
        assert api_client.get(url).status_code == 401
    key = ApiKeyFactory(permissions=["chat", "config", "plugins"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    for url in ("/api/v2/system/models", "/api/v2/system/bot-defaults"):
        response = api_client.get(url)
        assert (response.status_code, response.json()["error_code"]) == (403, "PERMISSION_DENIED")


def test_system_routes_in_open_mode(api_client, open_mode):
    assert api_client.get("/api/v2/system/models").status_code == 200
    assert api_client.post("/api/v2/system/models", {}, format="json").status_code == 405


def test_catalogue_change_applies_to_the_next_agent_write(operator_client, settings, tmp_path):
    """AGENT_011 reads the catalogue at write time: a renamed system provider frees the old name."""
    from agents.tests.factories import AgentFactory

    agent = AgentFactory()
    doc = {"config_overrides": {"model": {"api_providers": [{"name": "Custom"}]}}}
    url = f"/api/v2/agents/{agent.pk}/config"
    assert operator_client.patch(url, doc, format="json").status_code == 200
    path = tmp_path / "m.toml"
    path.write_text('[[api_providers]]\nname = "custom"\n')
    settings.MAIMBOT_MODEL_CONFIG_PATH = str(path)
    response = operator_client.patch(url, {}, format="json")
    assert (response.status_code, response.json()["error_code"]) == (400, "AGENT_011")


def _statements(call) -> list[str]:
    """The SQL statements `call()` makes, without the request transaction's savepoints (ATOMIC_REQUESTS)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        call()
    return [q["sql"] for q in context.captured_queries
            if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))]


def test_system_answers_follow_the_file_and_the_provider_keys(operator_client, settings, tmp_path, monkeypatch):
    """The answers are built once per process and rebuilt when the file, its path or a provider-key
    variable changes; a warm answer makes no query but the operator token's."""
    monkeypatch.delenv("MAIMCONFIG_PROVIDER_KEY_X", raising=False)
    path = tmp_path / "m.toml"
    path.write_text('[[api_providers]]\nname = "X"\n[[models]]\nname = "one"\n')
    settings.MAIMBOT_MODEL_CONFIG_PATH = str(path)
    first = operator_client.get("/api/v2/system/models").json()["data"]
    assert first["providers"][0]["has_api_key"] is False and [m["name"] for m in first["models"]] == ["one"]
    assert len(_statements(lambda: operator_client.get("/api/v2/system/models"))) == 1  # the operator token
    assert operator_client.get("/api/v2/system/models").json()["data"] == first
    monkeypatch.setenv("MAIMCONFIG_PROVIDER_KEY_X", "sk-server")
    assert operator_client.get("/api/v2/system/models").json()["data"]["providers"][0]["has_api_key"] is True
    path.write_text('[[api_providers]]\nname = "X"\n[[models]]\nname = "two"\nprice_in = 1.5\n')
    data = operator_client.get("/api/v2/system/models").json()["data"]
    assert [(m["name"], m["price_in"]) for m in data["models"]] == [("two", 1.5)]
    other = tmp_path / "n.toml"
    other.write_text('[[api_providers]]\nname = "Y"\n')
    settings.MAIMBOT_MODEL_CONFIG_PATH = str(other)
    assert [p["name"] for p in operator_client.get("/api/v2/system/models").json()["data"]["providers"]] == ["Y"]

    bot = tmp_path / "b.toml"
    bot.write_text('[chat]\ntalk_value = 0.5\n')
    settings.MAIMBOT_BOT_CONFIG_TEMPLATE_PATH = str(bot)
    assert operator_client.get("/api/v2/system/bot-defaults").json()["data"]["chat"] == {"talk_value": 0.5}
    assert len(_statements(lambda: operator_client.get("/api/v2/system/bot-defaults"))) == 1
    bot.write_text('[chat]\ntalk_value = 0.25\n[extra]\npassword = "p"\n')
    data = operator_client.get("/api/v2/system/bot-defaults").json()["data"]
    assert data["chat"] == {"talk_value": 0.25} and data["extra"] == {"password": "********"}
