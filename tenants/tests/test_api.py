"""Tenant routes (spec §3) through the HTTP API."""

import pytest

from tenants.models import Tenant
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

URL = "/api/v2/tenants"


def create(client, **fields):
    payload = {"tenant_name": "Acme Robotics", "tenant_type": "enterprise", **fields}
    return client.post(URL, payload, format="json")


def test_create_returns_200_and_the_tenant(operator_client):
    response = create(operator_client, contact_email="ops@acme.example", tenant_config={},
                      description="  Robots  ", owner_id="u-1")
    assert response.status_code == 200
    body = response.json()
    data = body["data"]
    assert data["id"] == data["tenant_id"] == body["tenant_id"]
    assert data["id"].startswith("tenant_") and len(data["id"]) == 19
    assert data["tenant_config"] == {}
    assert data["description"] == "Robots"
    assert data["status"] == "active"
    assert data["created_at"] == data["updated_at"]
    assert data["created_at"].endswith("Z") and len(data["created_at"]) == 27
    assert Tenant.objects.get(pk=data["id"]).tenant_name == "Acme Robotics"


def test_create_ignores_status_and_read_only_fields(operator_client):
    data = create(operator_client, status="suspended", id="tenant_000000000000", created_at="2000-01-01").json()["data"]
    assert data["status"] == "active"
    assert data["id"] != "tenant_000000000000"


@pytest.mark.parametrize("payload, field", [
    ({"tenant_type": "enterprise"}, "tenant_name"),
    ({"tenant_name": "   ", "tenant_type": "enterprise"}, "tenant_name"),
    ({"tenant_name": "x" * 101, "tenant_type": "enterprise"}, "tenant_name"),
    ({"tenant_name": "a\x07b", "tenant_type": "enterprise"}, "tenant_name"),
    ({"tenant_name": 5, "tenant_type": "enterprise"}, "tenant_name"),
    ({"tenant_name": "A"}, "tenant_type"),
    ({"tenant_name": "A", "tenant_type": "galactic"}, "tenant_type"),
    ({"tenant_name": "A", "tenant_type": "personal", "contact_email": "not-an-email"}, "contact_email"),
    ({"tenant_name": "A", "tenant_type": "personal", "tenant_config": [1]}, "tenant_config"),
    ({"tenant_name": "A", "tenant_type": "personal", "tenant_config": {"x": "y" * 70000}}, "tenant_config"),
    ({"tenant_name": "A", "tenant_type": "personal", "description": "d" * 2001}, "description"),
    ({"tenant_name": "A", "tenant_type": "personal", "owner_id": "o" * 51}, "owner_id"),
])
def test_create_validation_errors_write_nothing(operator_client, payload, field):
    response = operator_client.post(URL, payload, format="json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert field in response.json()["data"]["errors"]
    assert Tenant.objects.count() == 0


def test_duplicate_name_is_case_insensitive(operator_client):
    create(operator_client, tenant_name="Acme")
    response = create(operator_client, tenant_name="  aCME ")
    assert response.status_code == 409
    assert response.json()["error_code"] == "TENANT_002"
    assert Tenant.objects.count() == 1


def test_accents_are_significant(operator_client):
    assert create(operator_client, tenant_name="café").status_code == 200
    assert create(operator_client, tenant_name="cafe").status_code == 200
    assert create(operator_client, tenant_name="CAFÉ").status_code == 409


def test_get_and_unknown_or_malformed_ids(operator_client):
    tenant = TenantFactory()
    body = operator_client.get(f"{URL}/{tenant.pk}").json()
    assert body["data"]["tenant_name"] == tenant.tenant_name and body["tenant_id"] == tenant.pk
    for bad in ["tenant_ffffffffffff", "not-an-id", "x" * 300]:
        response = operator_client.get(f"{URL}/{bad}")
        assert response.status_code == 404
        assert response.json()["error_code"] == "TENANT_003"
        assert response.json()["tenant_id"] is None


def test_list_filters_search_and_pagination(operator_client):
    TenantFactory(tenant_name="Alpha Robotics", tenant_type="personal")
    TenantFactory(tenant_name="Beta", status="suspended")
    TenantFactory(tenant_name="Gamma ROBOTICS")
    body = operator_client.get(f"{URL}?search=robotics").json()
    assert {t["tenant_name"] for t in body["data"]["items"]} == {"Alpha Robotics", "Gamma ROBOTICS"}
    assert operator_client.get(f"{URL}?status=suspended").json()["data"]["pagination"]["total"] == 1
    assert operator_client.get(f"{URL}?tenant_type=personal").json()["data"]["pagination"]["total"] == 1
    assert operator_client.get(f"{URL}?status=bogus").status_code == 400
    page = operator_client.get(f"{URL}?page=2&size=2").json()["data"]
    assert page["pagination"] == {"page": 2, "page_size": 2, "total": 3, "total_pages": 2,
                                  "has_next": False, "has_prev": True}
    assert len(page["items"]) == 1
    past = operator_client.get(f"{URL}?page=9").json()["data"]
    assert past["items"] == [] and past["pagination"]["total"] == 3


def test_list_is_newest_first_and_deterministic(operator_client):
    from django.utils import timezone

    now = timezone.now()
    for i in range(5):
        TenantFactory(id=f"tenant_{i:012x}", created_at=now)  # same instant: id breaks the tie
    items = operator_client.get(f"{URL}?page_size=5").json()["data"]["items"]
    assert [t["id"] for t in items] == [f"tenant_{i:012x}" for i in reversed(range(5))]


def test_list_query_count_is_constant(operator_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    TenantFactory.create_batch(30)
    counts = []
    for size in (1, 25):
        with CaptureQueriesContext(connection) as queries:
            assert len(operator_client.get(f"{URL}?page_size={size}").json()["data"]["items"]) == size
        counts.append([q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]])
    # token lookup + COUNT + one page query, whatever the page size
    assert len(counts[0]) == len(counts[1]) == 3


def test_patch_and_put_are_partial(operator_client):
    tenant_id = create(operator_client, description="first", contact_email="a@b.example").json()["data"]["id"]
    for method in ("patch", "put"):
        response = getattr(operator_client, method)(f"{URL}/{tenant_id}", {"owner_id": f"o-{method}"}, format="json")
        data = response.json()["data"]
        assert response.status_code == 200
        assert data["owner_id"] == f"o-{method}" and data["description"] == "first"


def test_null_clears_nullable_fields_and_is_refused_on_required_ones(operator_client):
    tenant_id = create(operator_client, description="d", contact_email="a@b.example",
                       tenant_config={"a": 1}).json()["data"]["id"]
    data = operator_client.patch(f"{URL}/{tenant_id}", {"description": None, "contact_email": None,
                                                        "tenant_config": None}, format="json").json()["data"]
    assert data["description"] is None and data["contact_email"] is None and data["tenant_config"] is None
    response = operator_client.patch(f"{URL}/{tenant_id}", {"tenant_name": None}, format="json")
    assert response.status_code == 400 and "tenant_name" in response.json()["data"]["errors"]


def test_empty_patch_is_a_noop_and_keeps_updated_at(operator_client):
    created = create(operator_client).json()["data"]
    data = operator_client.patch(f"{URL}/{created['id']}", {}, format="json").json()["data"]
    assert data["updated_at"] == created["updated_at"]
    changed = operator_client.patch(f"{URL}/{created['id']}", {"tenant_type": "personal"}, format="json").json()["data"]
    assert changed["updated_at"] > created["updated_at"]
    assert changed["tenant_type"] == "personal"


def test_rename_into_a_taken_name_is_409(operator_client):
    create(operator_client, tenant_name="One")
    two = create(operator_client, tenant_name="Two").json()["data"]["id"]
    response = operator_client.patch(f"{URL}/{two}", {"tenant_name": "ONE"}, format="json")
    assert response.status_code == 409 and response.json()["error_code"] == "TENANT_002"
    # renaming to a different spelling of its own name is allowed
    assert operator_client.patch(f"{URL}/{two}", {"tenant_name": "TWO"}, format="json").status_code == 200


def test_update_validation(operator_client):
    tenant_id = create(operator_client).json()["data"]["id"]
    response = operator_client.patch(f"{URL}/{tenant_id}", {"status": "gone", "tenant_type": 3}, format="json")
    assert response.status_code == 400
    assert set(response.json()["data"]["errors"]) == {"status", "tenant_type"}
    assert operator_client.patch(f"{URL}/tenant_ffffffffffff", {}, format="json").status_code == 404


def test_update_validation_error_names_the_resolved_tenant(operator_client):
    tenant_id = create(operator_client).json()["data"]["id"]
    body = operator_client.patch(f"{URL}/{tenant_id}", {"tenant_type": "bogus"}, format="json").json()
    assert body["error_code"] == "VALIDATION_ERROR" and body["tenant_id"] == tenant_id


def test_infinite_number_in_tenant_config_is_400_not_500(operator_client):
    response = operator_client.post(URL, '{"tenant_name": "inf", "tenant_type": "personal", '
                                         '"tenant_config": {"n": 1e999}}', content_type="application/json")
    assert response.status_code == 400, response.content
    assert list(response.json()["data"]["errors"]) == ["tenant_config"]
    assert not Tenant.objects.exists()


def test_type_only_change_in_tenant_config_is_stored(operator_client):
    created = create(operator_client, tenant_config={"flag": 1}).json()["data"]
    data = operator_client.patch(f"{URL}/{created['id']}", {"tenant_config": {"flag": True}},
                                 format="json").json()["data"]
    assert data["tenant_config"] == {"flag": True} and data["updated_at"] > created["updated_at"]
    assert Tenant.objects.get(pk=created["id"]).tenant_config["flag"] is True


def test_status_change_away_from_active_takes_agents_offline(operator_client):
    from activity.models import AgentActivity
    from activity.services import activity_upsert
    from agents.tests.factories import AgentFactory

    agent = AgentFactory()
    activity_upsert(agent=agent, ttl_seconds=300)
    response = operator_client.patch(f"{URL}/{agent.tenant_id}", {"status": "suspended"}, format="json")
    assert response.json()["data"]["status"] == "suspended"
    assert not AgentActivity.objects.filter(agent=agent).exists()


def test_delete_cascades(operator_client):
    from agents.models import Agent
    from agents.tests.factories import AgentFactory

    agent = AgentFactory()
    response = operator_client.delete(f"{URL}/{agent.tenant_id}")
    data = response.json()["data"]
    assert response.status_code == 200
    assert data["id"] == data["tenant_id"] == agent.tenant_id and data["deleted_at"].endswith("Z")
    assert not Agent.objects.filter(pk=agent.pk).exists()
    assert operator_client.delete(f"{URL}/{agent.tenant_id}").status_code == 404


def test_head_and_options(operator_client):
    assert operator_client.head(URL).status_code == 200
    response = operator_client.options(URL)
    assert response.status_code == 200 and "GET" in response["Allow"]


def _route_statements(call) -> list[str]:
    """The SQL statements `call()` makes besides the request transaction's savepoints and the operator
    token's lookup."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        call()
    return [q["sql"] for q in context.captured_queries
            if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))
            and "core_operatortoken" not in q["sql"]]


def test_get_is_one_statement_and_the_orm_answer(operator_client):
    """`GET /tenants/{id}` reads the tenant with one prepared statement; the answer is the serializer's
    answer for the ORM's instance (every field, JSON and date-times converted alike)."""
    from core.selectors import object_by_pk
    from tenants.serializers import TenantOutputSerializer

    tenant = TenantFactory(tenant_config={"a": [1, {"b": "二"}], "n": None}, description="d",
                           contact_email="x@example.com", owner_id="o")
    responses = []
    statements = _route_statements(lambda: responses.append(operator_client.get(f"/api/v2/tenants/{tenant.pk}")))
    assert len(statements) == 1 and "tenants_tenant" in statements[0], statements
    assert responses[0].json()["data"] == TenantOutputSerializer(Tenant.objects.get(pk=tenant.pk)).data
    loaded = object_by_pk(Tenant, tenant.pk)
    assert loaded._state.adding is False and loaded._state.db == "default"
    assert {f.attname: getattr(loaded, f.attname) for f in Tenant._meta.concrete_fields} == \
        {f.attname: getattr(Tenant.objects.get(pk=tenant.pk), f.attname) for f in Tenant._meta.concrete_fields}
    assert object_by_pk(Tenant, "tenant_000000000000") is None
