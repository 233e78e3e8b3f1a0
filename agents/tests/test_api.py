"""Agent routes (spec §4): status codes, shapes, check order, query counts, agent-key access."""

import copy
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from activity.models import AgentActivity
from agents.models import Agent
from agents.tests.factories import AgentFactory
from apikeys.tests.factories import ApiKeyFactory
from tenants.models import Tenant
from tenants.tests.factories import TenantFactory
from apikeys.usage import shown  # stored + pending in Redis (spec §1.15)

pytestmark = pytest.mark.django_db

# The agent object's `config` always carries the original's skeleton (spec §16).
EMPTY_CONFIG = {"persona": {}, "bot_overrides": {}, "config_overrides": {}}

EXAMPLE = json.loads((Path(__file__).parent / "example_config.json").read_text(encoding="utf-8"))
AGENT_FIELDS = ["id", "agent_id", "tenant_id", "name", "description", "template_id", "config", "config_warnings",
                "config_version", "status", "tags", "is_online", "last_seen_at", "created_at", "updated_at"]


def _create(client, **body):
    return client.post("/api/v2/agents", body, format="json")


@pytest.fixture
def tenant():
    return TenantFactory()


# --- Create ----------------------------------------------------------------------------------------------


def test_create_minimal(operator_client, tenant, settings):
    response = _create(operator_client, tenant_id=tenant.pk, name="  helper  ")
    body = response.json()
    assert response.status_code == 200, body
    data = body["data"]
    assert list(data) == AGENT_FIELDS
    assert data["id"] == data["agent_id"] and data["id"].startswith("agent_") and len(data["id"]) == 18
    assert data["name"] == "helper"
    assert data["config"] == EMPTY_CONFIG and data["config_warnings"] == [] and data["tags"] == []
    assert data["status"] == "active" and data["is_online"] is True
    assert data["last_seen_at"] is not None and data["created_at"].endswith("Z")
    assert body["tenant_id"] == tenant.pk and body["message"] == "Agent created"
    activity = AgentActivity.objects.get(agent_id=data["id"])
    assert activity.ttl_seconds == settings.MAIMCONFIG_NEW_AGENT_TTL_SECONDS == 43200
    assert abs((activity.expires_at - activity.last_seen_at).total_seconds() - 43200) < 1


def test_create_with_the_complete_example_then_read_it_back(operator_client, tenant):
    response = _create(operator_client, tenant_id=tenant.pk, name="Mai", config=EXAMPLE, tags=["a", "b", "a"],
                       template_id="tpl-1", description="The example")
    data = response.json()["data"]
    assert response.status_code == 200
    expected = copy.deepcopy(EXAMPLE)
    expected["config_overrides"]["model"]["api_providers"][0]["api_key"] = "********"
    assert data["config"] == expected and data["config_warnings"] == []
    assert data["tags"] == ["a", "b"] and data["template_id"] == "tpl-1"
    stored = Agent.objects.get(pk=data["id"]).config
    assert "sk-placeholder-not-a-real-key" not in json.dumps(stored)
    config = operator_client.get(f"/api/v2/agents/{data['id']}/config").json()["data"]
    assert config == {**expected, "warnings": [], "config_version": 1}


def test_create_string_persona_and_unknown_keys_warned(operator_client, tenant):
    data = _create(operator_client, tenant_id=tenant.pk, name="x",
                   config={"persona": "A cat.", "config_overrides": {"chat": {"response_timeout": 3}}}).json()["data"]
    assert data["config"] == {"persona": {"personality": "A cat."}, "bot_overrides": {},
                              "config_overrides": {"chat": {"response_timeout": 3}}}
    assert data["config_warnings"] == [{"path": "config_overrides.chat.response_timeout", "code": "unknown_key",
                                        "message": "Not a known field of chat; kept as given."}]


@pytest.mark.parametrize("body,path", [
    ({}, "tenant_id"),
    ({"tenant_id": 5, "name": "x"}, "tenant_id"),
    ({"name": "", "tenant_id": "t"}, "name"),
    ({"name": "a\x00b", "tenant_id": "t"}, "name"),
    ({"name": "x" * 101, "tenant_id": "t"}, "name"),
    ({"name": 7, "tenant_id": "t"}, "name"),
    ({"name": "x", "tenant_id": "t", "description": "d" * 2001}, "description"),
    ({"name": "x", "tenant_id": "t", "description": 5}, "description"),
    ({"name": "x", "tenant_id": "t", "template_id": "t" * 51}, "template_id"),
    ({"name": "x", "tenant_id": "t", "tags": "a"}, "tags"),
    ({"name": "x", "tenant_id": "t", "tags": ["ok", " "]}, "tags[1]"),
    ({"name": "x", "tenant_id": "t", "tags": ["ok", 5]}, "tags[1]"),
    ({"name": "x", "tenant_id": "t", "tags": ["t" * 51]}, "tags[0]"),
    ({"name": "x", "tenant_id": "t", "tags": [str(i) for i in range(21)]}, "tags"),
])
def test_create_validation_errors(operator_client, body, path):
    response = _create(operator_client, **body)
    payload = response.json()
    assert response.status_code == 400, payload
    assert payload["error_code"] == "VALIDATION_ERROR"
    assert path in payload["data"]["errors"]
    assert Agent.objects.count() == 0


def test_tags_are_trimmed_and_deduplicated_in_order(operator_client, tenant):
    data = _create(operator_client, tenant_id=tenant.pk, name="x", tags=[" b ", "a", "b", "A"]).json()["data"]
    assert data["tags"] == ["b", "a", "A"]


def test_body_errors_come_before_config_errors_before_tenant_errors(operator_client):
    bad_config = {"config_overrides": {"chat": {"max_context_size": 0}}}
    response = _create(operator_client, tenant_id="tenant_000000000999", name="", config=bad_config)
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    response = _create(operator_client, tenant_id="tenant_000000000999", name="x", config=bad_config)
    body = response.json()
    assert (response.status_code, body["error_code"]) == (400, "AGENT_012")
    assert body["data"]["errors"] == {"config.config_overrides.chat.max_context_size":
                                      ["Must be an integer between 1 and 200."]}
    assert body["error"] == "config.config_overrides.chat.max_context_size: Must be an integer between 1 and 200."
    assert body["message"] == "Agent config invalid" and body["tenant_id"] is None
    response = _create(operator_client, tenant_id="tenant_000000000999", name="x",
                       config={"config_overrides": {"model": {"models": [{"name": "m", "api_provider": "openai"}]}}})
    assert (response.status_code, response.json()["error_code"]) == (400, "AGENT_011")
    assert response.json()["data"]["errors"] == {"config.config_overrides.model.models[0].api_provider": [
        "'openai' is a system provider; agents cannot reference it in their own models."]}
    response = _create(operator_client, tenant_id="tenant_000000000999", name="x")
    assert (response.status_code, response.json()["error_code"]) == (404, "AGENT_001")
    assert Agent.objects.count() == 0


@pytest.mark.parametrize("config", [[], "text", 5, True])
def test_config_not_an_object(operator_client, tenant, config):
    response = _create(operator_client, tenant_id=tenant.pk, name="x", config=config)
    assert response.status_code == 400
    assert response.json()["error_code"] == "AGENT_012"
    assert response.json()["data"]["errors"] == {"config": ["Must be a JSON object."]}


def test_config_null_means_empty(operator_client, tenant):
    assert _create(operator_client, tenant_id=tenant.pk, name="x", config=None).json()["data"]["config"] == EMPTY_CONFIG


def test_mask_on_create_is_rejected(operator_client, tenant):
    response = _create(operator_client, tenant_id=tenant.pk, name="x", config={"config_overrides": {"model": {
        "api_providers": [{"name": "P", "api_key": "********"}]}}})
    assert response.status_code == 400
    assert response.json()["data"]["errors"] == {"config.config_overrides.model.api_providers[0].api_key": [
        "The masked value can only keep an existing key; send the real key."]}


@pytest.mark.parametrize("status", [Tenant.Status.INACTIVE, Tenant.Status.SUSPENDED])
def test_create_in_inactive_tenant(operator_client, status):
    tenant = TenantFactory(status=status)
    response = _create(operator_client, tenant_id=tenant.pk, name="x")
    assert (response.status_code, response.json()["error_code"]) == (409, "TENANT_008")
    assert response.json()["tenant_id"] == tenant.pk


def test_duplicate_name_case_insensitive_per_tenant(operator_client, tenant):
    assert _create(operator_client, tenant_id=tenant.pk, name="Helper").status_code == 200
    response = _create(operator_client, tenant_id=tenant.pk, name="  hELPER ")
    body = response.json()
    assert (response.status_code, body["error_code"]) == (409, "AGENT_002")
    assert body["tenant_id"] == tenant.pk and body["data"] is None
    assert body["error"] == "An agent named 'hELPER' already exists in this tenant."
    other = TenantFactory()
    assert _create(operator_client, tenant_id=other.pk, name="helper").status_code == 200
    assert _create(operator_client, tenant_id=tenant.pk, name="Hélper").status_code == 200  # accents count


def test_status_on_create_is_ignored(operator_client, tenant):
    assert _create(operator_client, tenant_id=tenant.pk, name="x", status="archived").json()["data"]["status"] == \
        "active"


# --- Access -----------------------------------------------------------------------------------------------


def test_operator_credential_required(api_client, tenant):
    assert api_client.get("/api/v2/agents").status_code == 401
    assert _create(api_client, tenant_id=tenant.pk, name="x").status_code == 401


def test_open_mode(api_client, tenant, open_mode):
    assert _create(api_client, tenant_id=tenant.pk, name="x").status_code == 200


def test_agent_keys_cannot_manage_agents(api_client):
    key = ApiKeyFactory(permissions=["config", "chat"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    for method, url in [("get", "/api/v2/agents"), ("get", f"/api/v2/agents/{key.agent_id}"),
                        ("patch", f"/api/v2/agents/{key.agent_id}"), ("delete", f"/api/v2/agents/{key.agent_id}"),
                        ("put", f"/api/v2/agents/{key.agent_id}/config"),
                        ("patch", f"/api/v2/agents/{key.agent_id}/config")]:
        response = getattr(api_client, method)(url, {}, format="json")
        assert (response.status_code, response.json()["error_code"]) == (403, "PERMISSION_DENIED"), (method, url)


# --- List, detail -----------------------------------------------------------------------------------------


def test_list_filters_and_order(operator_client, tenant):
    other = TenantFactory()
    now = timezone.now()
    a = AgentFactory(tenant=tenant, name="Alpha Bot", tags=["support", "qq"], created_at=now - timedelta(3))
    b = AgentFactory(tenant=tenant, name="beta", tags=["Support"], status="archived", created_at=now - timedelta(2))
    c = AgentFactory(tenant=other, name="ALPHABET", tags=["support"], created_at=now - timedelta(1))

    def ids(**query):
        response = operator_client.get("/api/v2/agents", query)
        assert response.status_code == 200, response.json()
        return [item["id"] for item in response.json()["data"]["items"]]

    assert ids() == [c.pk, b.pk, a.pk]
    assert ids(tenant_id=tenant.pk) == [b.pk, a.pk]
    assert ids(status="archived") == [b.pk]
    assert ids(tag="support") == [c.pk, a.pk]
    assert ids(tag="Support") == [b.pk]
    assert ids(tag="supp") == []
    assert ids(search="alpha") == [c.pk, a.pk]
    assert ids(search="ALPHA B") == [a.pk]
    assert ids(search="%") == [] and ids(search="_") == []
    assert ids(tenant_id=tenant.pk, search="a", status="active") == [a.pk]
    response = operator_client.get("/api/v2/agents", {"tenant_id": tenant.pk})
    assert response.json()["tenant_id"] == tenant.pk


def test_list_unknown_tenant_is_agent_001(operator_client):
    for tenant_id in ("tenant_000000000fff", "not-an-id"):
        response = operator_client.get("/api/v2/agents", {"tenant_id": tenant_id})
        assert (response.status_code, response.json()["error_code"]) == (404, "AGENT_001")


@pytest.mark.parametrize("query,path", [({"status": "gone"}, "status"), ({"page": "0"}, "page"),
                                        ({"size": "101"}, "size"), ({"page_size": "x"}, "page_size"),
                                        ({"search": "s" * 101}, "search")])
def test_list_query_errors(operator_client, query, path):
    response = operator_client.get("/api/v2/agents", query)
    assert response.status_code == 400 and path in response.json()["data"]["errors"]


def test_list_pagination(operator_client, tenant):
    AgentFactory.create_batch(5, tenant=tenant)
    data = operator_client.get("/api/v2/agents", {"page": 2, "size": 2}).json()["data"]
    assert len(data["items"]) == 2
    assert data["pagination"] == {"page": 2, "page_size": 2, "total": 5, "total_pages": 3, "has_next": True,
                                  "has_prev": True}


def test_liveness_in_list_and_detail(operator_client, tenant):
    from activity.services import activity_upsert

    online, expired, never = AgentFactory(tenant=tenant), AgentFactory(tenant=tenant), AgentFactory(tenant=tenant)
    activity_upsert(agent=online, ttl_seconds=300)
    activity_upsert(agent=expired, ttl_seconds=300)
    AgentActivity.objects.filter(agent=expired).update(expires_at=timezone.now() - timedelta(seconds=1))
    items = {i["id"]: i for i in operator_client.get("/api/v2/agents").json()["data"]["items"]}
    assert items[online.pk]["is_online"] is True and items[online.pk]["last_seen_at"]
    assert items[expired.pk]["is_online"] is False and items[expired.pk]["last_seen_at"]
    assert items[never.pk]["is_online"] is False and items[never.pk]["last_seen_at"] is None
    detail = operator_client.get(f"/api/v2/agents/{expired.pk}").json()["data"]
    assert detail["is_online"] is False and detail["last_seen_at"] == items[expired.pk]["last_seen_at"]


def test_list_and_detail_query_counts_do_not_grow_with_the_page(operator_client, tenant,
                                                               django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from activity.services import activity_upsert

    def count(url):
        with CaptureQueriesContext(connection) as ctx:
            assert operator_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    first = AgentFactory(tenant=tenant, config=EXAMPLE)
    activity_upsert(agent=first, ttl_seconds=60)
    one = count("/api/v2/agents?page_size=1")
    detail = count(f"/api/v2/agents/{first.pk}")
    for agent in AgentFactory.create_batch(30, tenant=tenant, config={"persona": {"personality": "x"}}):
        activity_upsert(agent=agent, ttl_seconds=60)
    # `one` read a full page, so it also counted; a page that is not full tells the total without a COUNT
    assert count("/api/v2/agents?page_size=100") == one - 1
    assert count(f"/api/v2/agents?page_size=50&tenant_id={tenant.pk}") == one  # + the tenant existence check
    assert count(f"/api/v2/agents/{first.pk}") == detail
    # request savepoint + token lookup + page (liveness joined) + release: no per-agent queries, no COUNT
    with django_assert_max_num_queries(4):
        operator_client.get("/api/v2/agents?page_size=100")
    # request savepoint + token lookup + the agent with its activity row + release
    with django_assert_max_num_queries(4):
        operator_client.get(f"/api/v2/agents/{first.pk}")


@pytest.mark.parametrize("agent_id", ["agent_000000000fff", "nope", "agent_ABCDEF012345", "x" * 300])
def test_unknown_or_malformed_id_is_agent_004(operator_client, agent_id):
    for method in ("get", "patch", "put", "delete"):
        response = getattr(operator_client, method)(f"/api/v2/agents/{agent_id}", {}, format="json")
        assert (response.status_code, response.json()["error_code"]) == (404, "AGENT_004"), method
    for method in ("get", "put", "patch"):
        response = getattr(operator_client, method)(f"/api/v2/agents/{agent_id}/config", {}, format="json")
        assert (response.status_code, response.json()["error_code"]) == (404, "AGENT_004"), method


def test_trailing_slash_and_method_not_allowed(operator_client, tenant):
    agent = AgentFactory(tenant=tenant)
    assert operator_client.get(f"/api/v2/agents/{agent.pk}/").status_code == 200
    assert operator_client.get(f"/api/v2/agents/{agent.pk}/config/").status_code == 200
    assert operator_client.get("/api/v2/agents/").status_code == 200
    response = operator_client.post(f"/api/v2/agents/{agent.pk}/config", {}, format="json")
    assert response.status_code == 405 and response.json()["error_code"] == "METHOD_NOT_ALLOWED"


# --- Update -----------------------------------------------------------------------------------------------


def test_update_fields_partial_and_updated_at(operator_client, tenant):
    agent = AgentFactory(tenant=tenant, name="one", description="d", tags=["x"])
    before = Agent.objects.get(pk=agent.pk).updated_at
    response = operator_client.patch(f"/api/v2/agents/{agent.pk}", {}, format="json")
    assert response.status_code == 200 and Agent.objects.get(pk=agent.pk).updated_at == before
    data = operator_client.put(f"/api/v2/agents/{agent.pk}", {"description": None, "template_id": "t",
                                                              "tags": None, "tenant_id": "ignored"},
                               format="json").json()["data"]
    assert data["description"] is None and data["template_id"] == "t" and data["tags"] == []
    assert data["name"] == "one" and data["tenant_id"] == tenant.pk
    assert data["updated_at"] > before.isoformat().replace("+00:00", "Z")


def test_update_config_deep_merges_and_null_resets(operator_client, tenant):
    agent = AgentFactory(tenant=tenant)
    url = f"/api/v2/agents/{agent.pk}"
    operator_client.patch(url, {"config": EXAMPLE}, format="json")
    data = operator_client.patch(url, {"config": {"config_overrides": {"chat": {"talk_value": 0.5}, "emoji": None}}},
                                 format="json").json()["data"]
    assert data["config"]["config_overrides"]["chat"]["talk_value"] == 0.5
    assert data["config"]["config_overrides"]["chat"]["max_context_size"] == 24
    assert "emoji" not in data["config"]["config_overrides"]
    assert data["config"]["config_overrides"]["model"]["api_providers"][0]["api_key"] == "********"
    assert operator_client.patch(url, {"config": None}, format="json").json()["data"]["config"] == EMPTY_CONFIG


def test_update_check_order(operator_client, tenant):
    agent = AgentFactory(tenant=tenant, name="one")
    AgentFactory(tenant=tenant, name="two")
    url = f"/api/v2/agents/{agent.pk}"
    bad_config = {"config_overrides": {"chat": {"max_context_size": "x"}}}
    system = {"config_overrides": {"model": {"api_providers": [{"name": "Anthropic"}]}}}
    cases = [
        ({"name": "two", "status": "gone", "config": bad_config}, 400, "VALIDATION_ERROR"),
        ({"name": "two", "config": bad_config}, 400, "AGENT_012"),
        ({"name": "two", "config": system}, 400, "AGENT_011"),
        ({"name": "TWO"}, 409, "AGENT_002"),
        ({"name": None}, 400, "VALIDATION_ERROR"),
        ({"status": None}, 400, "VALIDATION_ERROR"),
        ({"config": []}, 400, "AGENT_012"),
    ]
    for body, status, code in cases:
        response = operator_client.patch(url, body, format="json")
        assert (response.status_code, response.json()["error_code"]) == (status, code), body
        assert response.json()["tenant_id"] == tenant.pk  # resolved before the error (spec §1.3)
    assert operator_client.patch(url, {"config": system}, format="json").json()["data"]["errors"] == {
        "config.config_overrides.model.api_providers[0].name": [
            "'Anthropic' is a system provider; agents cannot define a provider with this name."]}
    fresh = Agent.objects.get(pk=agent.pk)
    assert fresh.name == "one" and fresh.config == {}


def test_config_route_errors_after_the_agent_name_its_tenant(operator_client, tenant):
    agent = AgentFactory(tenant=tenant)
    url = f"/api/v2/agents/{agent.pk}/config"
    for response in (operator_client.get(url, {"effective": "maybe"}),
                     operator_client.patch(f"{url}?mode=append", {}, format="json"),
                     operator_client.patch(url, [1], format="json")):
        assert response.status_code == 400 and response.json()["error_code"] == "VALIDATION_ERROR"
        assert response.json()["tenant_id"] == tenant.pk


def test_infinite_number_in_config_is_400_not_500(operator_client, tenant):
    agent = AgentFactory(tenant=tenant)
    response = operator_client.patch(f"/api/v2/agents/{agent.pk}/config", '{"custom": {"n": 1e999}}',
                                     content_type="application/json")
    assert response.status_code == 400 and response.json()["error_code"] == "AGENT_012"
    assert list(response.json()["data"]["errors"]) == ["non_field_errors"]
    assert Agent.objects.get(pk=agent.pk).config == {}


def test_asterisks_in_provider_fields_other_than_api_key_are_kept(operator_client, tenant):
    agent = AgentFactory(tenant=tenant)
    provider = {"name": "p********", "base_url": "https://llm.example/v1", "api_key": "sk-1",
                "extra": "********"}
    response = operator_client.patch(f"/api/v2/agents/{agent.pk}/config",
                                     {"config_overrides": {"model": {"api_providers": [provider]}}}, format="json")
    assert response.status_code == 200, response.content
    stored = Agent.objects.get(pk=agent.pk).config["config_overrides"]["model"]["api_providers"][0]
    assert stored["name"] == "p********" and stored["extra"] == "********"
    assert stored["api_key"].startswith("enc:v1:")


def test_type_only_change_in_config_is_stored(operator_client, tenant):
    agent = AgentFactory(tenant=tenant, config={"custom": {"flag": 1}})
    url = f"/api/v2/agents/{agent.pk}"
    before = operator_client.get(url).json()["data"]["updated_at"]
    data = operator_client.patch(url, {"config": {"custom": {"flag": True}}}, format="json").json()["data"]
    assert data["config"]["custom"] == {"flag": True} and data["updated_at"] > before
    assert Agent.objects.get(pk=agent.pk).config["custom"]["flag"] is True
    data = operator_client.patch(f"{url}/config", {"custom": {"flag": 1}}, format="json").json()["data"]
    assert data["custom"] == {"flag": 1}
    assert Agent.objects.get(pk=agent.pk).config["custom"]["flag"] == 1


def test_failed_update_changes_nothing(operator_client, tenant):
    agent = AgentFactory(tenant=tenant, name="one", description="keep")
    response = operator_client.patch(f"/api/v2/agents/{agent.pk}", {
        "description": "changed", "config": {"persona": {"state_probability": 5}}}, format="json")
    assert response.status_code == 400
    assert Agent.objects.get(pk=agent.pk).description == "keep"


def test_rename_case_only_and_to_free_name(operator_client, tenant):
    agent = AgentFactory(tenant=tenant, name="one")
    assert operator_client.patch(f"/api/v2/agents/{agent.pk}", {"name": "ONE"}, format="json").status_code == 200
    assert Agent.objects.get(pk=agent.pk).name_key == "one"


def test_status_away_from_active_takes_the_agent_offline(operator_client, tenant):
    created = _create(operator_client, tenant_id=tenant.pk, name="x").json()["data"]
    assert AgentActivity.objects.filter(agent_id=created["id"]).exists()
    data = operator_client.patch(f"/api/v2/agents/{created['id']}", {"status": "inactive"}, format="json").json()
    assert data["data"]["is_online"] is False and data["data"]["last_seen_at"] is None
    assert not AgentActivity.objects.filter(agent_id=created["id"]).exists()


# --- Delete -----------------------------------------------------------------------------------------------


def test_delete_cascades(operator_client, tenant):
    created = _create(operator_client, tenant_id=tenant.pk, name="x").json()["data"]
    key = ApiKeyFactory(agent=Agent.objects.get(pk=created["id"]))
    response = operator_client.delete(f"/api/v2/agents/{created['id']}")
    data = response.json()["data"]
    assert response.status_code == 200 and set(data) == {"id", "agent_id", "deleted_at"}
    assert data["id"] == data["agent_id"] == created["id"] and data["deleted_at"].endswith("Z")
    assert not Agent.objects.filter(pk=created["id"]).exists()
    assert not AgentActivity.objects.filter(agent_id=created["id"]).exists()
    from apikeys.models import ApiKey

    assert not ApiKey.objects.filter(pk=key.pk).exists()
    assert operator_client.delete(f"/api/v2/agents/{created['id']}").status_code == 404


def test_tenant_delete_cascades_to_agents(operator_client, tenant):
    created = _create(operator_client, tenant_id=tenant.pk, name="x").json()["data"]
    assert operator_client.delete(f"/api/v2/tenants/{tenant.pk}").status_code == 200
    assert not Agent.objects.filter(pk=created["id"]).exists()
    assert not AgentActivity.objects.filter(agent_id=created["id"]).exists()


# --- Config routes ----------------------------------------------------------------------------------------


def test_config_routes_merge_replace_and_effective(operator_client, tenant):
    agent = AgentFactory(tenant=tenant)
    url = f"/api/v2/agents/{agent.pk}/config"
    assert operator_client.get(url).json()["data"] == {"warnings": [], "config_version": 1}
    response = operator_client.put(url + "?mode=replace", EXAMPLE, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["message"] == "Agent configuration updated"
    before = Agent.objects.get(pk=agent.pk).updated_at
    # merge {} is a no-op and keeps updated_at
    assert operator_client.patch(url, {}, format="json").status_code == 200
    assert Agent.objects.get(pk=agent.pk).updated_at == before
    data = operator_client.patch(url, {"config_overrides": {"chat": {"talk_value": 0.5}, "emoji": None},
                                       "warnings": ["ignored"]}, format="json").json()["data"]
    assert data["config_overrides"]["chat"]["talk_value"] == 0.5 and "emoji" not in data["config_overrides"]
    assert data["warnings"] == []
    assert Agent.objects.get(pk=agent.pk).updated_at > before
    effective = operator_client.get(url, {"effective": "TRUE"}).json()["data"]
    assert effective["config_overrides"]["emoji"]["emoji_chance"] == 0.6
    assert effective["config_overrides"]["chat"]["talk_value"] == 0.5
    assert effective["config_overrides"]["model"]["api_providers"][0]["api_key"] == "********"
    assert effective["warnings"] == []
    # versions: 1 (creation), 2 (replace), the no-op merge made none, 3 (merge), 4 (this replace)
    assert operator_client.put(url + "?mode=replace", {}, format="json").json()["data"] == {
        "warnings": [], "config_version": 4}


def test_config_route_errors_use_relative_paths(operator_client, tenant):
    agent = AgentFactory(tenant=tenant)
    url = f"/api/v2/agents/{agent.pk}/config"
    response = operator_client.patch(url, {"config_overrides": {"chat": {"max_context_size": 500}}}, format="json")
    body = response.json()
    assert (response.status_code, body["error_code"]) == (400, "AGENT_012")
    assert body["data"]["errors"] == {"config_overrides.chat.max_context_size":
                                      ["Must be an integer between 1 and 200."]}
    assert body["tenant_id"] == tenant.pk
    response = operator_client.patch(url, [1, 2], format="json")
    assert (response.status_code, response.json()["error_code"]) == (400, "VALIDATION_ERROR")
    assert "non_field_errors" in response.json()["data"]["errors"]
    response = operator_client.patch(url + "?mode=append", {}, format="json")
    assert response.status_code == 400 and "mode" in response.json()["data"]["errors"]
    response = operator_client.get(url, {"effective": "yes"})
    assert response.status_code == 400 and "effective" in response.json()["data"]["errors"]
    response = operator_client.patch(url, {"blob": "x" * (300 * 1024)}, format="json")
    assert response.status_code in (400, 413)
    assert Agent.objects.get(pk=agent.pk).config == {}


def test_config_masks_through_the_api(operator_client, tenant):
    agent = AgentFactory(tenant=tenant)
    url = f"/api/v2/agents/{agent.pk}/config"
    providers = {"config_overrides": {"model": {"api_providers": [{"name": "Mine", "api_key": "sk-1",
                                                                   "base_url": "https://x.example/v1"}]}}}
    data = operator_client.patch(url, providers, format="json").json()["data"]
    assert data["config_overrides"]["model"]["api_providers"][0] == {
        "name": "Mine", "api_key": "********", "base_url": "https://x.example/v1"}
    # send the read document back, adding a provider: the first key is kept
    data["config_overrides"]["model"]["api_providers"].append({"name": "Second", "api_key": "sk-2"})
    operator_client.put(url, data, format="json")
    from agents.configdoc import provider_api_key

    fresh = Agent.objects.get(pk=agent.pk)
    assert provider_api_key(fresh, "Mine") == "sk-1" and provider_api_key(fresh, "second") == "sk-2"
    response = operator_client.patch(url, {"config_overrides": {"model": {"api_providers": [
        {"name": "Third", "api_key": "********"}]}}}, format="json")
    assert response.status_code == 400
    assert list(response.json()["data"]["errors"]) == ["config_overrides.model.api_providers[0].api_key"]
    assert "sk-1" not in json.dumps(operator_client.get(f"/api/v2/agents/{agent.pk}").json())


def test_config_read_with_agent_keys(api_client, tenant):
    key = ApiKeyFactory(permissions=["config"])
    reader = ApiKeyFactory(permissions=["config_read"])
    chatter = ApiKeyFactory(permissions=["chat"])
    other_agent = AgentFactory(tenant=key.tenant)

    def get(raw, agent_id, **query):
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return api_client.get(f"/api/v2/agents/{agent_id}/config", query)

    response = get(key.raw_key, key.agent_id)
    assert response.status_code == 200 and response.json()["tenant_id"] == key.tenant_id
    assert get(key.raw_key, key.agent_id, effective="true").status_code == 200
    assert get(reader.raw_key, reader.agent_id).status_code == 200
    response = get(chatter.raw_key, chatter.agent_id)
    assert (response.status_code, response.json()["error_code"]) == (403, "AUTH_003")
    for agent_id in (other_agent.pk, "agent_000000000fff", "not-an-agent"):
        response = get(key.raw_key, agent_id)
        assert (response.status_code, response.json()["error_code"]) == (403, "PERMISSION_DENIED"), agent_id
        assert response.json()["tenant_id"] is None
    assert shown(key.pk)[0] == 2  # refused requests never count


def test_openapi_exposes_the_config_schema(operator_client):
    from django.core.management import call_command
    import io

    out = io.StringIO()
    call_command("spectacular", "--format", "openapi-json", stdout=out)
    schema = json.loads(out.getvalue())
    components = schema["components"]["schemas"]
    chat = components["AgentConfigDocument"]["properties"]["config_overrides"]["properties"]["chat"]
    assert chat["properties"]["max_context_size"]["maximum"] == 200
    assert components["AgentOutput"]["properties"]["config"]["allOf"][0]["$ref"].endswith("/AgentConfigDocument")
    request = components["AgentCreateInputRequest"]["properties"]["config"]["allOf"][0]["$ref"]
    assert request.endswith("/AgentConfigDocumentRequest")
    assert "oneOf" in components["AgentConfigDocumentRequest"]["properties"]["persona"]
