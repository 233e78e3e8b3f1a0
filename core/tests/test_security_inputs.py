"""Issue 12, items 6, 7, 8, 12, 13: inputs that gave a 500 or were silently dropped. The fuzz corpus of
these cases is `core/tests/test_fuzz_corpus.py`; this file holds the targeted checks, on SQLite and MariaDB."""

import json

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from agents.models import Agent
from apikeys.models import ApiKey
from apikeys.tests.factories import ApiKeyFactory
from core.validation import MAX_JSON_NESTING, json_nesting
from plugins.models import PluginSetting
from tenants.models import Tenant
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def nested(levels: int) -> dict:
    """An object nesting `levels` objects in all (`nested(1) == {"leaf": 1}`)."""
    value: object = 1
    for _ in range(levels - 1):
        value = {"n": value}
    return {"leaf": value}


def raw_post(client, path, text, **extra):
    return client.generic("POST", path, text.encode("utf-8"), content_type="application/json", **extra)


def raw_send(client, method, path, text, **extra):
    return client.generic(method, path, text.encode("utf-8"), content_type="application/json", **extra)


def assert_validation_error(response, path=None, code="VALIDATION_ERROR"):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error_code"] == code
    if path is not None:
        assert path in body["data"]["errors"], body["data"]
        assert body["error"].startswith(f"{path}: ")
    return body


@pytest.fixture
def key(db):
    return ApiKeyFactory(permissions=["chat", "config", "plugins"])


@pytest.fixture
def key_client(key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    return client


def test_nesting_is_counted_as_documented():
    assert json_nesting(1) == 0 and json_nesting({}) == 1 and json_nesting({"a": []}) == 2
    assert json_nesting(nested(MAX_JSON_NESTING)) == MAX_JSON_NESTING == 31


# --- item 6: one depth rule for every stored JSON value, before the database ---------------------------

def test_tenant_config_at_the_limit_is_stored_and_one_more_level_is_refused(operator_client):
    ok = operator_client.post("/api/v2/tenants", {"tenant_name": "deep ok", "tenant_type": "personal",
                                                  "tenant_config": nested(MAX_JSON_NESTING)}, format="json")
    assert ok.status_code == 200, ok.content
    assert Tenant.objects.get(pk=ok.json()["data"]["id"]).tenant_config == nested(MAX_JSON_NESTING)
    refused = operator_client.post("/api/v2/tenants", {"tenant_name": "deep no", "tenant_type": "personal",
                                                       "tenant_config": nested(MAX_JSON_NESTING + 1)}, format="json")
    assert_validation_error(refused, "tenant_config")
    assert not Tenant.objects.filter(tenant_name="deep no").exists()


def test_usage_details_too_deep_with_an_agent_key(key_client):
    response = key_client.post("/api/v1/usage/log", {"action": "deep", "details": nested(MAX_JSON_NESTING + 1)},
                               format="json")
    assert_validation_error(response, "details")


def test_key_metadata_and_plugin_config_have_the_depth_rule(operator_client, key):
    response = operator_client.patch(f"/api/v2/api-keys/{key.id}", {"metadata": nested(MAX_JSON_NESTING + 1)},
                                     format="json")
    assert_validation_error(response, "metadata")
    response = operator_client.post("/api/v2/plugin-settings", {
        "tenant_id": key.tenant_id, "plugin_name": "deep", "config": nested(MAX_JSON_NESTING + 1)}, format="json")
    assert_validation_error(response, "config")
    assert not PluginSetting.objects.exists()


def test_agent_config_limit_is_not_off_by_one(operator_client, key):
    path = f"/api/v2/agents/{key.agent_id}/config"
    ok = operator_client.put(path, nested(MAX_JSON_NESTING), format="json")
    assert ok.status_code == 200, ok.content
    refused = operator_client.put(path, nested(MAX_JSON_NESTING + 1), format="json")
    body = assert_validation_error(refused, "non_field_errors", code="AGENT_012")
    assert "31" in body["error"]
    assert Agent.objects.get(pk=key.agent_id).config == nested(MAX_JSON_NESTING)


# --- item 7: bodies nested a thousand levels deep --------------------------------------------------------

@pytest.mark.parametrize("text", [
    "[" * 5000 + "]" * 5000,
    '{"api_key": "x", "n": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"a":' * 3000 + "1" + "}" * 3000,
])
def test_a_body_nested_thousands_deep_is_a_400_without_credential(api_client, text):
    response = raw_post(api_client, "/api/v2/auth/validate-api-key", text)
    body = assert_validation_error(response, "non_field_errors")
    assert "Traceback" not in response.content.decode()
    assert "nested deeper" in body["error"]


def test_agent_config_nested_hundreds_deep_is_a_400(operator_client, key):
    text = '{"a":' * 900 + "1" + "}" * 900
    response = raw_send(operator_client, "PUT", f"/api/v2/agents/{key.agent_id}/config", text)
    assert_validation_error(response, "non_field_errors")


# --- item 8: lone surrogates -------------------------------------------------------------------------------

LONE = '"\\ud800"'


def test_lone_surrogates_in_json_fields_are_refused(key_client, operator_client, key):
    response = raw_post(key_client, "/api/v1/usage/log", '{"action": "a", "details": {"x": ' + LONE + "}}")
    assert_validation_error(response, "non_field_errors")
    response = raw_send(operator_client, "PATCH", f"/api/v2/api-keys/{key.id}", '{"metadata": {' + LONE + ": 1}}")
    assert_validation_error(response, "non_field_errors")
    response = raw_send(operator_client, "PUT", f"/api/v2/agents/{key.agent_id}/config",
                        '{"persona": {"personality": ' + LONE + "}}")
    assert_validation_error(response, "non_field_errors")
    key.refresh_from_db()
    assert key.metadata == {}


def test_a_valid_surrogate_pair_is_accepted(key_client):
    response = raw_post(key_client, "/api/v1/usage/log", '{"action": "a", "details": {"x": "\\ud83d\\ude00"}}')
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("stream", [False, True])
def test_lone_surrogates_in_v1_message_content_are_a_400_not_a_broken_stream(transactional_db, stream):
    """The chat routes run their database work on other threads: committed rows (transactional_db)."""
    key_client = APIClient()
    key_client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiKeyFactory(permissions=['chat']).raw_key}")
    text = json.dumps({"model": "x", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
    text = text.replace('"hi"', LONE)
    response = raw_post(key_client, "/v1/chat/completions", text)
    assert response.status_code == 400, response.content
    assert "error" in response.json()
    response = raw_post(key_client, "/api/v2/chat", json.dumps({"message": "hi", "stream": stream})
                        .replace('"hi"', LONE))
    assert_validation_error(response)


def test_a_field_given_a_lone_surrogate_directly_is_refused():
    """The serializer field refuses it too (for inputs that do not come through the parser)."""
    from core.fields import JSONObjectField
    from rest_framework.exceptions import ValidationError

    with pytest.raises(ValidationError):
        JSONObjectField().run_validation({"x": "\ud800"})


# --- item 12: JSON-strict comparison on update -------------------------------------------------------------

def test_plugin_config_1_to_true_is_stored(operator_client):
    tenant = TenantFactory()
    first = operator_client.post("/api/v2/plugin-settings", {"tenant_id": tenant.id, "plugin_name": "p",
                                                             "config": {"flag": 1}}, format="json")
    assert first.status_code == 200, first.content
    setting_id = first.json()["data"]["id"]
    second = operator_client.patch(f"/api/v2/plugin-settings/{setting_id}", {"config": {"flag": True}}, format="json")
    assert second.status_code == 200, second.content
    assert PluginSetting.objects.get(pk=setting_id).config["flag"] is True
    assert second.json()["data"]["config"] == {"flag": True}


def test_key_metadata_1_to_1_0_is_stored(operator_client, key):
    operator_client.patch(f"/api/v2/api-keys/{key.id}", {"metadata": {"v": 1}}, format="json")
    response = raw_send(operator_client, "PATCH", f"/api/v2/api-keys/{key.id}", '{"metadata": {"v": 1.0}}')
    assert response.status_code == 200
    stored = ApiKey.objects.get(pk=key.id).metadata["v"]
    assert isinstance(stored, float)


# --- item 13: four-digit years in the usage summary ---------------------------------------------------------

def test_usage_summary_never_prints_a_three_digit_year(operator_client):
    tenant = TenantFactory()
    response = operator_client.get("/api/v2/usage-logs/summary", {"tenant_id": tenant.id,
                                                                  "until": "1000-01-03T00:00:00Z"})
    assert response.status_code == 200, response.content
    since = response.json()["data"]["range"]["since"]
    assert since.startswith("1000-01-01T00:00:00"), since
