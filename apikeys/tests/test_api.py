"""The API-key management routes (spec §5): status codes, shapes, check order, filters."""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents.models import Agent
from agents.tests.factories import AgentFactory
from apikeys.keys import hash_key
from apikeys.models import ApiKey
from apikeys.tests.factories import ApiKeyFactory
from tenants.models import Tenant
from tenants.tests.factories import TenantFactory
from apikeys.tests.helpers import set_fields

pytestmark = pytest.mark.django_db

KEY_FIELDS = ["id", "api_key_id", "tenant_id", "agent_id", "name", "description", "api_key", "key_hint",
              "permissions", "status", "expires_at", "rate_limit_per_minute", "metadata", "last_used_at",
              "usage_count", "disabled_at", "rotated_at", "previous_key_expires_at", "created_at", "updated_at"]
URL = "/api/v2/api-keys"


def create(client, **body):
    return client.post(URL, body, format="json")


def test_create_returns_the_secret_once_and_stores_only_its_hash(operator_client):
    agent = AgentFactory()
    response = create(operator_client, agent_id=agent.id, name="qq-main", permissions=["chat", "config", "chat"],
                      metadata={"deployment": "qq"}, rate_limit_per_minute=60, description="bot")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    data = body["data"]
    assert list(data) == KEY_FIELDS
    assert body["tenant_id"] == agent.tenant_id and body["message"] == "API key created"
    raw = data["api_key"]
    assert raw.startswith("mmc_") and len(raw) == 104
    assert data["id"].startswith("key_") and data["id"] == data["api_key_id"]
    assert data["permissions"] == ["chat", "config"]
    assert data["status"] == "active" and data["usage_count"] == 0
    assert data["key_hint"].startswith("mmc_\u2026") and len(data["key_hint"]) == 9
    row = ApiKey.objects.get(pk=data["id"])
    assert row.key_hash == hash_key(raw)
    assert raw not in str(row.__dict__)
    detail = operator_client.get(f"{URL}/{data['id']}").json()["data"]
    # Outside create and rotate `api_key` is the masked hint (spec §5.1): a string, never the secret.
    assert detail["api_key"] == data["key_hint"] and raw not in str(detail)
    listed = operator_client.get(URL).json()["data"]["items"]
    assert [item["api_key"] for item in listed] == [data["key_hint"]] and raw not in str(listed)


def test_create_with_tenant_id_and_defaults(operator_client):
    agent = AgentFactory()
    data = create(operator_client, tenant_id=agent.tenant_id, agent_id=agent.id, name="k").json()["data"]
    assert data["permissions"] == [] and data["metadata"] == {} and data["expires_at"] is None
    assert data["rate_limit_per_minute"] is None and data["description"] is None


def test_create_check_order(operator_client):
    agent = AgentFactory()
    other_agent = AgentFactory()
    # 400 first
    r = create(operator_client, tenant_id="tenant_000000000999", name="")
    assert r.status_code == 400 and set(r.json()["data"]["errors"]) == {"agent_id", "name"}
    # unknown tenant (only when given) -> TENANT_003
    r = create(operator_client, tenant_id="tenant_000000000999", agent_id="agent_000000000999", name="k")
    assert (r.status_code, r.json()["error_code"]) == (404, "TENANT_003")
    # unknown agent / agent of another tenant -> AGENT_004
    r = create(operator_client, agent_id="agent_000000000999", name="k")
    assert (r.status_code, r.json()["error_code"]) == (404, "AGENT_004")
    r = create(operator_client, tenant_id=agent.tenant_id, agent_id=other_agent.id, name="k")
    assert (r.status_code, r.json()["error_code"]) == (404, "AGENT_004")
    # inactive tenant before inactive agent
    set_fields(Agent, agent.pk, status="archived")
    set_fields(Tenant, agent.tenant_id, status="suspended")
    r = create(operator_client, agent_id=agent.id, name="k")
    assert (r.status_code, r.json()["error_code"]) == (409, "TENANT_008")
    set_fields(Tenant, agent.tenant_id, status="active")
    r = create(operator_client, agent_id=agent.id, name="k")
    assert (r.status_code, r.json()["error_code"]) == (409, "AGENT_013")
    assert r.json()["tenant_id"] == agent.tenant_id


def test_name_unique_per_tenant_case_insensitively(operator_client):
    agent = AgentFactory()
    sibling = AgentFactory(tenant=agent.tenant)
    assert create(operator_client, agent_id=agent.id, name="Main Key").status_code == 200
    r = create(operator_client, agent_id=sibling.id, name="  main KEY ")
    assert (r.status_code, r.json()["error_code"]) == (409, "KEY_002")
    assert create(operator_client, agent_id=AgentFactory().id, name="main key").status_code == 200
    assert create(operator_client, agent_id=agent.id, name="Main Kéy").status_code == 200


@pytest.mark.parametrize("body, path", [
    ({"permissions": "chat"}, "permissions"),
    ({"permissions": ["ok", "bad\x07perm"]}, "permissions[1]"),
    ({"permissions": ["p" * 65]}, "permissions[0]"),
    ({"permissions": ["   "]}, "permissions[0]"),
    ({"permissions": [f"p{i}" for i in range(51)]}, "permissions"),
    ({"permissions": [1]}, "permissions[0]"),
    ({"expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
    ({"expires_at": "2999-01-01"}, "expires_at"),
    ({"expires_at": 5}, "expires_at"),
    ({"rate_limit_per_minute": 0}, "rate_limit_per_minute"),
    ({"rate_limit_per_minute": 1_000_001}, "rate_limit_per_minute"),
    ({"rate_limit_per_minute": "5"}, "rate_limit_per_minute"),
    ({"metadata": []}, "metadata"),
    ({"metadata": {"x": "y" * 17000}}, "metadata"),
    ({"description": "d" * 2001}, "description"),
    ({"name": "a" * 101}, "name"),
    ({"name": "bad\x07name"}, "name"),
    ({"name": 5}, "name"),
    ({"agent_id": 5}, "agent_id"),
])
def test_create_validation_errors(operator_client, body, path):
    agent = AgentFactory()
    payload = {"agent_id": agent.id, "name": "k", **body}
    r = create(operator_client, **payload)
    assert r.status_code == 400, r.json()
    assert r.json()["error_code"] == "VALIDATION_ERROR"
    assert path in r.json()["data"]["errors"], r.json()["data"]


def test_create_accepts_future_expiry_with_offset(operator_client):
    agent = AgentFactory()
    r = create(operator_client, agent_id=agent.id, name="k", expires_at="2999-01-01 10:00:00+02:00")
    assert r.json()["data"]["expires_at"] == "2999-01-01T08:00:00.000000Z"


def test_detail_404_for_unknown_and_malformed_ids(operator_client):
    for key_id in ("key_000000000abc", "not-a-key", "KEY_000000000ABC", "key_" + "a" * 300):
        r = operator_client.get(f"{URL}/{key_id}")
        assert (r.status_code, r.json()["error_code"]) == (404, "KEY_001")
        r = operator_client.post(f"{URL}/{key_id}/rotate", {}, format="json")
        assert (r.status_code, r.json()["error_code"]) == (404, "KEY_001")


def test_routes_answer_with_and_without_trailing_slash(operator_client):
    key = ApiKeyFactory()
    assert operator_client.get(f"{URL}/").status_code == 200
    assert operator_client.get(f"{URL}/{key.id}/").status_code == 200
    assert operator_client.post(f"{URL}/{key.id}/disable/").status_code == 200


def test_list_filters_and_order(operator_client):
    tenant = TenantFactory()
    agent = AgentFactory(tenant=tenant)
    now = timezone.now()
    active = ApiKeyFactory(agent=agent, created_at=now - timedelta(minutes=3))
    disabled = ApiKeyFactory(agent=agent, disabled_at=now, created_at=now - timedelta(minutes=2))
    expired = ApiKeyFactory(agent=agent, expires_at=now - timedelta(seconds=1), created_at=now - timedelta(minutes=1))
    disabled_and_expired = ApiKeyFactory(agent=agent, disabled_at=now, expires_at=now - timedelta(days=1),
                                         created_at=now)
    ApiKeyFactory()  # another tenant

    def ids(query):
        r = operator_client.get(f"{URL}?{query}")
        assert r.status_code == 200, r.json()
        return [item["id"] for item in r.json()["data"]["items"]], r.json()

    got, body = ids(f"tenant_id={tenant.id}")
    assert got == [disabled_and_expired.id, expired.id, disabled.id, active.id]
    assert body["tenant_id"] == tenant.id
    assert ids(f"tenant_id={tenant.id}&status=active")[0] == [active.id]
    assert ids(f"tenant_id={tenant.id}&status=disabled")[0] == [disabled_and_expired.id, disabled.id]
    assert ids(f"tenant_id={tenant.id}&status=expired")[0] == [expired.id]
    assert ids(f"agent_id={agent.id}&status=expired")[0] == [expired.id]
    statuses = [i["status"] for i in ids(f"tenant_id={tenant.id}")[1]["data"]["items"]]
    assert statuses == ["disabled", "expired", "disabled", "active"]
    # unknown tenant / agent: empty list, tenant_id null
    got, body = ids("tenant_id=tenant_000000000fff")
    assert got == [] and body["data"]["pagination"]["total"] == 0 and body["tenant_id"] is None
    assert ids("agent_id=nonsense")[0] == []
    other_agent = AgentFactory()
    assert ids(f"tenant_id={tenant.id}&agent_id={other_agent.id}")[0] == []
    # pagination and validation
    got, body = ids(f"tenant_id={tenant.id}&page=2&size=3")
    assert got == [active.id] and body["data"]["pagination"]["total"] == 4
    r = operator_client.get(f"{URL}?status=revoked")
    assert r.status_code == 400 and "status" in r.json()["data"]["errors"]
    r = operator_client.get(f"{URL}?page_size=101")
    assert r.status_code == 400 and "page_size" in r.json()["data"]["errors"]


def test_update_is_partial_and_bumps_updated_at_only_on_change(operator_client):
    key = ApiKeyFactory(metadata={"a": 1}, description="x", rate_limit_per_minute=5)
    before = operator_client.get(f"{URL}/{key.id}").json()["data"]
    r = operator_client.put(f"{URL}/{key.id}", {}, format="json")
    assert r.status_code == 200 and r.json()["data"] == before
    r = operator_client.patch(f"{URL}/{key.id}", {"description": "x", "tenant_id": "t", "agent_id": "a",
                                                 "api_key": "mmc_x"}, format="json")
    assert r.json()["data"]["updated_at"] == before["updated_at"]
    r = operator_client.patch(f"{URL}/{key.id}", {"metadata": None, "description": None,
                                                 "rate_limit_per_minute": None, "permissions": ["x", "x", "y"],
                                                 "name": "Renamed"}, format="json")
    data = r.json()["data"]
    assert data["metadata"] == {} and data["description"] is None and data["rate_limit_per_minute"] is None
    assert data["permissions"] == ["x", "y"] and data["name"] == "Renamed"
    assert data["updated_at"] > before["updated_at"]
    assert data["tenant_id"] == before["tenant_id"] and data["key_hint"] == before["key_hint"]
    for bad in ({"name": None}, {"permissions": None}, {"status": "expired"}, {"status": None},
                {"rate_limit_per_minute": 0}):
        r = operator_client.patch(f"{URL}/{key.id}", bad, format="json")
        assert r.status_code == 400, bad
        assert list(bad)[0] in r.json()["data"]["errors"]


def test_update_expiry_in_the_past_expires_now(operator_client):
    key = ApiKeyFactory()
    r = operator_client.patch(f"{URL}/{key.id}", {"expires_at": "2001-01-01T00:00:00Z"}, format="json")
    assert r.json()["data"]["status"] == "expired"
    r = operator_client.patch(f"{URL}/{key.id}", {"expires_at": None}, format="json")
    assert r.json()["data"]["status"] == "active"


def test_update_rename_conflict(operator_client):
    key = ApiKeyFactory(name="one")
    ApiKeyFactory(agent=AgentFactory(tenant=key.tenant), name="Two")
    r = operator_client.patch(f"{URL}/{key.id}", {"name": "TWO"}, format="json")
    assert (r.status_code, r.json()["error_code"]) == (409, "KEY_002")
    assert operator_client.patch(f"{URL}/{key.id}", {"name": "ONE"}, format="json").status_code == 200


def test_status_via_update_and_disable_enable_idempotent(operator_client):
    key = ApiKeyFactory()
    r = operator_client.post(f"{URL}/{key.id}/disable")
    data = r.json()["data"]
    assert data["status"] == "disabled" and data["disabled_at"]
    again = operator_client.post(f"{URL}/{key.id}/disable", {}, format="json").json()["data"]
    assert again["disabled_at"] == data["disabled_at"] and again["updated_at"] == data["updated_at"]
    r = operator_client.post(f"{URL}/{key.id}/enable")
    assert r.json()["data"]["status"] == "active" and r.json()["data"]["disabled_at"] is None
    r = operator_client.patch(f"{URL}/{key.id}", {"status": "disabled"}, format="json")
    assert r.json()["data"]["status"] == "disabled"
    r = operator_client.patch(f"{URL}/{key.id}", {"status": "active"}, format="json")
    assert r.json()["data"]["status"] == "active"


def test_enable_an_expired_key_stays_expired(operator_client):
    key = ApiKeyFactory(disabled_at=timezone.now(), expires_at=timezone.now() - timedelta(hours=1))
    assert operator_client.post(f"{URL}/{key.id}/enable").json()["data"]["status"] == "expired"


def test_rotate(operator_client):
    key = ApiKeyFactory(usage_count=7)
    r = operator_client.post(f"{URL}/{key.id}/rotate", {"grace_seconds": 60}, format="json")
    assert r.status_code == 200 and r["Cache-Control"] == "no-store"
    data = r.json()["data"]
    assert data["api_key"] != key.raw_key and data["api_key"].startswith("mmc_")
    assert data["id"] == key.id and data["usage_count"] == 7 and data["rotated_at"]
    assert data["previous_key_expires_at"] is not None and data["key_hint"] != key.key_hint
    assert operator_client.get(f"{URL}/{key.id}").json()["data"]["api_key"] == data["key_hint"]
    r = operator_client.post(f"{URL}/{key.id}/rotate", format="json")
    assert r.json()["data"]["previous_key_expires_at"] is None


@pytest.mark.parametrize("body", [{"grace_seconds": -1}, {"grace_seconds": 86401}, {"grace_seconds": "5"},
                                  {"grace_seconds": 1.5}, {"grace_seconds": None}])
def test_rotate_validation(operator_client, body):
    key = ApiKeyFactory()
    r = operator_client.post(f"{URL}/{key.id}/rotate", body, format="json")
    assert r.status_code == 400 and "grace_seconds" in r.json()["data"]["errors"]
    assert r.json()["tenant_id"] == key.tenant_id  # the key (path object) was resolved first (spec §1.3)


def test_update_validation_error_carries_the_keys_tenant(operator_client):
    key = ApiKeyFactory()
    r = operator_client.patch(f"{URL}/{key.id}", {"status": "expired", "rate_limit_per_minute": 0}, format="json")
    assert (r.status_code, r.json()["error_code"]) == (400, "VALIDATION_ERROR")
    assert set(r.json()["data"]["errors"]) == {"status", "rate_limit_per_minute"}
    assert r.json()["tenant_id"] == key.tenant_id


def test_rotate_refused_when_not_active(operator_client):
    disabled = ApiKeyFactory(disabled_at=timezone.now())
    expired = ApiKeyFactory(expires_at=timezone.now() - timedelta(seconds=1))
    for key in (disabled, expired):
        r = operator_client.post(f"{URL}/{key.id}/rotate", {"grace_seconds": 10}, format="json")
        assert (r.status_code, r.json()["error_code"]) == (409, "KEY_003")
        assert ApiKey.objects.get(pk=key.pk).key_hash == key.key_hash


def test_delete(operator_client):
    key = ApiKeyFactory()
    r = operator_client.delete(f"{URL}/{key.id}")
    data = r.json()["data"]
    assert list(data) == ["id", "api_key_id", "deleted_at"] and data["id"] == key.id
    assert r.json()["tenant_id"] == key.tenant_id
    assert operator_client.delete(f"{URL}/{key.id}").status_code == 404


def test_cascades_from_agent_and_tenant():
    key1, key2 = ApiKeyFactory(), ApiKeyFactory()
    key1.agent.delete()
    key2.tenant.delete()
    assert not ApiKey.objects.exists()


def test_management_routes_need_an_operator(api_client, api_key):
    assert api_client.get(URL).status_code == 401
    assert api_client.get(URL)["WWW-Authenticate"] == 'Bearer realm="maimconfig"'
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key.raw_key}")
    for method, url in (("get", URL), ("post", URL), ("get", f"{URL}/{api_key.id}"),
                        ("post", f"{URL}/{api_key.id}/disable"), ("delete", f"{URL}/{api_key.id}")):
        r = getattr(api_client, method)(url, {}, format="json") if method == "post" else getattr(api_client, method)(url)
        assert (r.status_code, r.json()["error_code"]) == (403, "PERMISSION_DENIED"), (method, url)
        assert r.json()["tenant_id"] is None


def test_open_mode(api_client, open_mode):
    agent = AgentFactory()
    assert create(api_client, agent_id=agent.id, name="k").status_code == 200


def _route_statements(call) -> list[str]:
    """The statements `call()` makes besides the request transaction's savepoints and the operator token."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        call()
    return [q["sql"] for q in context.captured_queries
            if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))
            and "core_operatortoken" not in q["sql"]]


def test_get_and_list_statements(operator_client):
    """`GET /api-keys/{id}`: one statement (the key row, no join). The list: the page alone when it tells
    the total and shows the tenant; a COUNT only for a full page or an empty page past the first; the
    tenant existence check only when no row shows it. Same answers as before (total, pages, tenant_id)."""
    tenant = TenantFactory()
    keys = [ApiKeyFactory(agent=AgentFactory(tenant=tenant)) for _ in range(3)]
    answers = []
    statements = _route_statements(lambda: answers.append(operator_client.get(f"{URL}/{keys[0].pk}")))
    assert len(statements) == 1 and "JOIN" not in statements[0].upper(), statements
    assert answers[0].json()["data"]["api_key_id"] == keys[0].pk

    def listing(query):
        answers.clear()
        found = _route_statements(lambda: answers.append(operator_client.get(URL, query)))
        return len(found), answers[0].json()

    count, body = listing({"tenant_id": tenant.pk})
    assert count == 1 and body["tenant_id"] == tenant.pk
    assert (body["data"]["total"], body["data"]["pages"], len(body["data"]["items"])) == (3, 1, 3)
    count, body = listing({"tenant_id": tenant.pk, "page_size": 2})  # a full page: COUNT
    assert count == 2 and body["data"]["pagination"] == {"page": 1, "page_size": 2, "total": 3, "total_pages": 2,
                                                           "has_next": True, "has_prev": False}
    count, body = listing({"tenant_id": tenant.pk, "page_size": 2, "page": 2})  # the last, short page
    assert count == 1 and body["data"]["total"] == 3 and len(body["data"]["items"]) == 1
    count, body = listing({"tenant_id": tenant.pk, "page": 5})  # past the end: COUNT, and the tenant check
    assert count == 3 and body["data"]["total"] == 3 and body["data"]["items"] == [] and body["tenant_id"] == tenant.pk
    count, body = listing({"tenant_id": "tenant_000000000000"})
    assert count == 2 and body["tenant_id"] is None and body["data"]["total"] == 0
    count, body = listing({"status": "disabled"})
    assert count == 1 and body["tenant_id"] is None and body["data"]["total"] == 0
