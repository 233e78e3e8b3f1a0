"""The /auth verdict endpoints (spec §6): every verdict, every validation error, counting, limits."""

import base64
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import Agent
from apikeys import ratelimit, redisstate
from apikeys.models import ApiKey
from apikeys.tests.factories import ApiKeyFactory
from apikeys.usage import shown
from tenants.models import Tenant
from apikeys.tests.helpers import set_fields

pytestmark = pytest.mark.django_db

VALIDATE = "/api/v2/auth/validate-api-key"
CHECK = "/api/v2/auth/check-permission"
PARSE = "/api/v2/auth/parse-api-key"
VALIDATE_FIELDS = ["valid", "api_key_id", "tenant_id", "agent_id", "permissions", "required_permission",
                   "has_permission", "status", "expires_at", "usage_count", "last_used_at", "rate_limit",
                   "retry_after", "metadata", "using_previous_secret"]
CHECK_FIELDS = ["has_permission", "permission", "all_permissions", "tenant_id", "agent_id", "api_key_id",
                "api_key_status"]


def shown_usage(key) -> int:
    """The key's usage_count as the API shows it: stored + pending in Redis (spec §1.15)."""
    return shown(key.pk)[0]


def validate(client, api_key, **extra):
    return client.post(VALIDATE, {"api_key": api_key, **extra}, format="json")


def check(client, api_key, permission):
    return client.post(CHECK, {"api_key": api_key, "permission": permission}, format="json")


def unknown_key(key):
    raw = base64.b64encode(f"{key.tenant_id}_{key.agent_id}_{'0' * 32}_v1".encode()).decode()
    return "mmc_" + raw


# --- parse ------------------------------------------------------------------------------------------

def test_parse_valid_and_invalid(api_client, api_key):
    body = api_client.post(PARSE, {"api_key": api_key.raw_key}, format="json").json()
    assert body["success"] is True and body["tenant_id"] is None and body["error_code"] is None
    assert body["data"]["tenant_id"] == api_key.tenant_id and body["data"]["format"] == "current"
    for value in ("mmc_!!!", "x" * 600, "", "   "):
        r = api_client.post(PARSE, {"api_key": value}, format="json")
        assert r.status_code == 200
        body = r.json()
        assert (body["success"], body["error_code"]) == (False, "AUTH_001")
        assert body["data"] == {"format_valid": False, "format": None, "tenant_id": None, "agent_id": None,
                                "random_hash": None, "version": None}


def test_parse_does_not_touch_the_database(api_client, api_key, django_assert_num_queries):
    with django_assert_num_queries(0):
        api_client.post(PARSE, {"api_key": api_key.raw_key}, format="json")


@pytest.mark.parametrize("url", [PARSE, VALIDATE, CHECK])
@pytest.mark.parametrize("body, path", [({}, "api_key"), ({"api_key": None}, "api_key"),
                                        ({"api_key": 5}, "api_key"), ({"api_key": ["x"]}, "api_key")])
def test_malformed_requests_are_400(api_client, url, body, path):
    if url == CHECK:
        body = {**body, "permission": "chat"}
    r = api_client.post(url, body, format="json")
    assert (r.status_code, r.json()["error_code"]) == (400, "VALIDATION_ERROR")
    assert path in r.json()["data"]["errors"]


@pytest.mark.parametrize("body, path", [
    ({"required_permission": 5}, "required_permission"),
    ({"check_rate_limit": "yes"}, "check_rate_limit"),
    ({"check_rate_limit": 1}, "check_rate_limit"),
    ({"check_rate_limit": 1.0}, "check_rate_limit"),  # the hot path once let floats through (0.0 counted)
    ({"check_rate_limit": 0.0}, "check_rate_limit"),
])
def test_validate_field_types(api_client, api_key, body, path):
    r = validate(api_client, api_key.raw_key, **body)
    assert r.status_code == 400 and path in r.json()["data"]["errors"]


@pytest.mark.parametrize("body", [{"api_key": "mmc_x"}, {"api_key": "mmc_x", "permission": ""},
                                  {"api_key": "mmc_x", "permission": "p" * 65},
                                  {"api_key": "mmc_x", "permission": None}])
def test_check_permission_validation(api_client, body):
    r = api_client.post(CHECK, body, format="json")
    assert r.status_code == 400 and "permission" in r.json()["data"]["errors"]


def test_malformed_json_and_wrong_method(api_client):
    r = api_client.generic("POST", VALIDATE, "{nope", content_type="application/json")
    assert r.status_code == 400 and "non_field_errors" in r.json()["data"]["errors"]
    assert api_client.get(VALIDATE).status_code == 405


# --- validate: every verdict ------------------------------------------------------------------------

def test_valid_verdict_counts_one_use(api_client):
    key = ApiKeyFactory(metadata={"deployment": "qq"}, permissions=["chat", "config"])
    r = validate(api_client, key.raw_key, required_permission="chat")
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True and body["error_code"] is None and body["error"] is None
    assert body["tenant_id"] == key.tenant_id and body["message"] == "API key is valid"
    data = body["data"]
    assert list(data) == VALIDATE_FIELDS
    assert data["valid"] is True and data["has_permission"] is True and data["status"] == "active"
    assert data["usage_count"] == 1 and data["last_used_at"] and data["metadata"] == {"deployment": "qq"}
    assert data["rate_limit"] is None and data["retry_after"] is None and data["using_previous_secret"] is False
    assert data["permissions"] == ["chat", "config"] and data["required_permission"] == "chat"
    row = ApiKey.objects.get(pk=key.pk)
    assert shown(key.pk)[0] == 1 and shown(key.pk)[1] is not None and row.updated_at == key.updated_at
    assert validate(api_client, key.raw_key).json()["data"]["usage_count"] == 2
    assert validate(api_client, "  " + key.raw_key + " ").json()["data"]["valid"] is True


def test_no_count_when_check_rate_limit_false_and_null_means_true(api_client, api_key):
    r = validate(api_client, api_key.raw_key, check_rate_limit=False)
    assert r.json()["success"] is True and r.json()["data"]["usage_count"] == 0
    r = validate(api_client, api_key.raw_key, check_rate_limit=None)
    assert r.json()["data"]["usage_count"] == 1
    assert shown_usage(api_key) == 1


def assert_negative(r, code, *, tenant_id):
    assert r.status_code == 200
    body = r.json()
    assert (body["success"], body["error_code"]) == (False, code)
    assert body["error"] and body["message"]
    assert body["tenant_id"] == tenant_id
    return body["data"]


@pytest.mark.parametrize("value", ["mmc_!!!", "garbage", "x" * 513])
def test_auth_001(api_client, value):
    data = assert_negative(validate(api_client, value, required_permission="chat"), "AUTH_001", tenant_id=None)
    assert list(data) == VALIDATE_FIELDS
    assert data == {f: None for f in VALIDATE_FIELDS} | {"valid": False, "required_permission": "chat"}


def test_auth_005_unknown_deleted_and_mismatched_ids(api_client):
    key = ApiKeyFactory()
    data = assert_negative(validate(api_client, unknown_key(key)), "AUTH_005", tenant_id=None)
    assert data == {f: None for f in VALIDATE_FIELDS} | {"valid": False}
    # the same hash but the ids encoded in the key differ from the row's
    other = ApiKeyFactory()
    set_fields(ApiKey, other.pk, key_hash="0" * 64)
    set_fields(ApiKey, key.pk, tenant_id=other.tenant_id, agent_id=other.agent_id)
    assert_negative(validate(api_client, key.raw_key), "AUTH_005", tenant_id=None)
    ApiKey.objects.filter(pk=key.pk).delete()
    assert_negative(validate(api_client, key.raw_key), "AUTH_005", tenant_id=None)


def test_auth_004_disabled(api_client):
    key = ApiKeyFactory(disabled_at=timezone.now(), expires_at=timezone.now() - timedelta(days=1))
    data = assert_negative(validate(api_client, key.raw_key, required_permission="nope"), "AUTH_004",
                           tenant_id=key.tenant_id)
    assert data["status"] == "disabled" and data["has_permission"] is False and data["valid"] is False
    assert data["metadata"] is None and data["api_key_id"] == key.id and data["usage_count"] == 0
    assert shown_usage(key) == 0


def test_auth_002_expired(api_client):
    key = ApiKeyFactory(expires_at=timezone.now() - timedelta(seconds=1))
    data = assert_negative(validate(api_client, key.raw_key), "AUTH_002", tenant_id=key.tenant_id)
    assert data["status"] == "expired" and data["has_permission"] is True and data["expires_at"]


def test_auth_006_tenant_not_active(api_client):
    key = ApiKeyFactory()
    set_fields(Tenant, key.tenant_id, status="suspended")
    set_fields(Agent, key.agent_id, status="archived")
    data = assert_negative(validate(api_client, key.raw_key), "AUTH_006", tenant_id=key.tenant_id)
    assert data["status"] == "active"


def test_auth_007_agent_not_active(api_client):
    key = ApiKeyFactory()
    set_fields(Agent, key.agent_id, status="inactive")
    assert_negative(validate(api_client, key.raw_key), "AUTH_007", tenant_id=key.tenant_id)


def test_auth_003_missing_permission_is_exact_and_case_sensitive(api_client):
    key = ApiKeyFactory(permissions=["chat", "config_read"], rate_limit_per_minute=5)
    r = validate(api_client, key.raw_key, required_permission="Chat")
    data = assert_negative(r, "AUTH_003", tenant_id=key.tenant_id)
    assert r.json()["error"] == "The API key does not have the permission 'Chat'."
    assert data["has_permission"] is False and data["status"] == "active" and data["metadata"] is None
    assert data["rate_limit"] == {"limit": 5, "remaining": 5, "reset_seconds": data["rate_limit"]["reset_seconds"]}
    assert_negative(validate(api_client, key.raw_key, required_permission="config"), "AUTH_003",
                    tenant_id=key.tenant_id)
    assert shown_usage(key) == 0


def test_authorization_header_is_ignored(api_client, api_key):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer mmc_definitely-invalid")
    assert validate(api_client, api_key.raw_key).json()["success"] is True
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-operator-token")
    assert check(api_client, api_key.raw_key, "chat").json()["success"] is True


# --- rate limit -------------------------------------------------------------------------------------

def test_rate_limit_fixed_window(api_client, frozen_clock):
    key = ApiKeyFactory(rate_limit_per_minute=3)
    frozen_clock.advance(seconds=-5)  # 10 s into a minute
    remaining = [validate(api_client, key.raw_key).json()["data"]["rate_limit"]["remaining"] for _ in range(3)]
    assert remaining == [2, 1, 0]
    r = validate(api_client, key.raw_key)
    data = assert_negative(r, "AUTH_008", tenant_id=key.tenant_id)
    assert data["retry_after"] == 50 and data["rate_limit"] == {"limit": 3, "remaining": 0, "reset_seconds": 50}
    assert data["usage_count"] == 3 and data["metadata"] is None and data["has_permission"] is True
    # a read-only check is neither limited nor counted
    r = validate(api_client, key.raw_key, check_rate_limit=False)
    assert r.json()["success"] is True and r.json()["data"]["rate_limit"]["remaining"] == 0
    # check-permission never consults the limit
    assert check(api_client, key.raw_key, "chat").json()["success"] is True
    assert shown_usage(key) == 3
    frozen_clock.advance(seconds=50)  # the next window starts
    data = validate(api_client, key.raw_key).json()["data"]
    assert data["valid"] is True and data["rate_limit"] == {"limit": 3, "remaining": 2, "reset_seconds": 60}
    assert shown_usage(key) == 4


def test_refused_requests_do_not_take_units():
    base = 1_800_000_000.0
    states = [ratelimit.consume("key_x", 2, now=base + 1) for _ in range(5)]
    assert [s.allowed for s in states] == [True, True, False, False, False]
    assert ratelimit.peek("key_x", 2, now=base + 1).count == 2


# --- rotation grace -----------------------------------------------------------------------------------

def test_rotation_grace_period(api_client, operator_client):
    key = ApiKeyFactory()
    r = operator_client.post(f"/api/v2/api-keys/{key.id}/rotate", {"grace_seconds": 30}, format="json")
    new_raw = r.json()["data"]["api_key"]
    old = validate(api_client, key.raw_key).json()
    assert old["success"] is True and old["data"]["using_previous_secret"] is True
    assert old["data"]["api_key_id"] == key.id
    new = validate(api_client, new_raw).json()
    assert new["success"] is True and new["data"]["using_previous_secret"] is False
    # the previous secret is subject to the key's status
    operator_client.post(f"/api/v2/api-keys/{key.id}/disable")
    assert validate(api_client, key.raw_key).json()["error_code"] == "AUTH_004"
    operator_client.post(f"/api/v2/api-keys/{key.id}/enable")
    # ...and dies when the grace period is over (controlled clock)
    later = timezone.now() + timedelta(seconds=31)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert validate(api_client, key.raw_key).json()["error_code"] == "AUTH_005"
        assert validate(api_client, new_raw).json()["success"] is True
        detail = operator_client.get(f"/api/v2/api-keys/{key.id}").json()["data"]
        assert detail["previous_key_expires_at"] is None


def test_rotation_without_grace_and_double_rotation(api_client, operator_client):
    key = ApiKeyFactory()
    url = f"/api/v2/api-keys/{key.id}/rotate"
    second = operator_client.post(url, {"grace_seconds": 0}, format="json").json()["data"]["api_key"]
    assert validate(api_client, key.raw_key).json()["error_code"] == "AUTH_005"
    third = operator_client.post(url, {"grace_seconds": 600}, format="json").json()["data"]["api_key"]
    assert validate(api_client, second).json()["data"]["using_previous_secret"] is True
    operator_client.post(url, {"grace_seconds": 600}, format="json")
    # a secret already in grace is dropped at the next rotation
    assert validate(api_client, second).json()["error_code"] == "AUTH_005"
    assert validate(api_client, third).json()["data"]["using_previous_secret"] is True


# --- revocation ---------------------------------------------------------------------------------------

def test_revocation_is_immediate(api_client, operator_client):
    key = ApiKeyFactory()
    assert validate(api_client, key.raw_key).json()["success"] is True
    operator_client.patch(f"/api/v2/api-keys/{key.id}", {"expires_at": "2000-01-01T00:00:00Z"}, format="json")
    assert validate(api_client, key.raw_key).json()["error_code"] == "AUTH_002"
    operator_client.patch(f"/api/v2/api-keys/{key.id}", {"expires_at": None}, format="json")
    operator_client.delete(f"/api/v2/api-keys/{key.id}")
    assert validate(api_client, key.raw_key).json()["error_code"] == "AUTH_005"


def test_tenant_or_agent_deleted_means_unknown(api_client):
    key1, key2 = ApiKeyFactory(), ApiKeyFactory()
    key1.agent.delete()
    key2.tenant.delete()
    assert validate(api_client, key1.raw_key).json()["error_code"] == "AUTH_005"
    assert validate(api_client, key2.raw_key).json()["error_code"] == "AUTH_005"


# --- check-permission ------------------------------------------------------------------------------------

def test_check_permission_verdicts(api_client):
    key = ApiKeyFactory(permissions=["chat"], rate_limit_per_minute=1)
    body = check(api_client, key.raw_key, "chat").json()
    assert body["success"] is True and body["tenant_id"] == key.tenant_id
    assert list(body["data"]) == CHECK_FIELDS
    assert body["data"] == {"has_permission": True, "permission": "chat", "all_permissions": ["chat"],
                            "tenant_id": key.tenant_id, "agent_id": key.agent_id, "api_key_id": key.id,
                            "api_key_status": "active"}
    for _ in range(3):  # never limited
        assert check(api_client, key.raw_key, "chat").json()["success"] is True
    body = check(api_client, key.raw_key, "config").json()
    assert body["error_code"] == "AUTH_003" and body["data"]["has_permission"] is False
    assert body["tenant_id"] == key.tenant_id
    set_fields(ApiKey, key.pk, expires_at=timezone.now() - timedelta(seconds=1))
    body = check(api_client, key.raw_key, "chat").json()
    assert body["error_code"] == "AUTH_002" and body["data"]["api_key_status"] == "expired"
    assert body["data"]["has_permission"] is True
    set_fields(ApiKey, key.pk, disabled_at=timezone.now())
    assert check(api_client, key.raw_key, "chat").json()["error_code"] == "AUTH_004"
    body = check(api_client, "nope", "chat").json()
    assert body["error_code"] == "AUTH_001" and body["tenant_id"] is None
    assert body["data"] == {f: None for f in CHECK_FIELDS} | {"permission": "chat"}
    body = check(api_client, unknown_key(key), "chat").json()
    assert body["error_code"] == "AUTH_005" and body["data"]["api_key_id"] is None
    assert shown_usage(key) == 0


def test_check_permission_tenant_and_agent_status(api_client):
    key = ApiKeyFactory()
    set_fields(Agent, key.agent_id, status="archived")
    assert check(api_client, key.raw_key, "chat").json()["error_code"] == "AUTH_007"
    set_fields(Tenant, key.tenant_id, status="inactive")
    assert check(api_client, key.raw_key, "chat").json()["error_code"] == "AUTH_006"


# --- cost of the hot path --------------------------------------------------------------------------------

def _statements(ctx) -> list[str]:
    return [q["sql"].split()[0].upper() for q in ctx.captured_queries]


def test_validation_cost_in_statements(api_client, api_key):
    """Without Redis: one SELECT (key, tenant and agent in one statement) and one UPDATE. With Redis: the
    first validation of a key reads it once, every later one makes no database query at all."""
    with CaptureQueriesContext(connection) as ctx:
        assert validate(api_client, api_key.raw_key).json()["success"] is True
    assert "JOIN" in ctx.captured_queries[0]["sql"].upper()  # tenant and agent in the same statement
    if not redisstate.enabled():
        assert _statements(ctx) == ["SELECT", "UPDATE"], ctx.captured_queries
        return
    assert _statements(ctx) == ["SELECT"], ctx.captured_queries
    with CaptureQueriesContext(connection) as ctx:
        data = validate(api_client, api_key.raw_key).json()["data"]
    assert ctx.captured_queries == [] and data["valid"] is True and data["usage_count"] == 2


def test_negative_verdicts_and_check_permission_cost(api_client, api_key, django_assert_num_queries):
    warm = 0 if redisstate.enabled() else 1  # the key-state cache answers from the second lookup on
    with django_assert_num_queries(1):
        validate(api_client, api_key.raw_key, check_rate_limit=False)
    with django_assert_num_queries(warm):
        check(api_client, api_key.raw_key, "chat")
    with django_assert_num_queries(warm):
        assert validate(api_client, api_key.raw_key, required_permission="missing").json()["error_code"] == "AUTH_003"
    with django_assert_num_queries(0):
        validate(api_client, "mmc_!!!")


# --- throttle ------------------------------------------------------------------------------------------------

def test_auth_routes_are_throttled_per_ip(api_client, settings):
    settings.MAIMCONFIG_AUTH_THROTTLE_RATE = "3/min"
    for _ in range(3):
        assert api_client.post(PARSE, {"api_key": "x"}, format="json").status_code == 200
    r = api_client.post(VALIDATE, {"api_key": "x"}, format="json")
    assert (r.status_code, r.json()["error_code"]) == (429, "RATE_LIMITED")
    assert int(r["Retry-After"]) >= 1 and r.json()["data"] == {"retry_after": int(r["Retry-After"])}
    other_ip = api_client.post(PARSE, {"api_key": "x"}, format="json", REMOTE_ADDR="10.1.2.3")
    assert other_ip.status_code == 200
