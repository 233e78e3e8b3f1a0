"""The fuzz corpus of issue 12 as regular tests: hostile bodies (the cases that once gave a 500, and their
neighbours) sent to every writing route with both credential kinds. Nothing may answer 5xx or non-JSON, and
nothing may be stored by a refused request. `make fuzz` (schemathesis against a live server) explores more;
this corpus keeps the known cases pinned, on SQLite and on MariaDB."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from activity.models import UsageLog
from apikeys.tests.factories import ApiKeyFactory
from plugins.models import PluginSetting
from tenants.models import Tenant

# Committed transactions, as in production: the non-atomic views (heartbeats) run in autocommit, so an error
# there must not poison the next request of the same test the way it would inside one test transaction.
pytestmark = pytest.mark.django_db(transaction=True)

DEEP_ARRAY = "[" * 3000 + "]" * 3000
DEEP_32 = '{"a":' * 32 + "1" + "}" * 32

BODIES = {
    "deep_array": DEEP_ARRAY,
    "deep_object_field": '{"tenant_name": "x", "tenant_type": "personal", "tenant_config": ' + DEEP_32 + ', '
                         '"details": ' + DEEP_32 + ', "metadata": ' + DEEP_32 + ', "config": ' + DEEP_32 + "}",
    "lone_surrogate_value": '{"name": "\\ud800", "action": "\\udfff", "message": "\\ud800", "details": {"x": "\\ud800"}}',
    "lone_surrogate_key": '{"\\ud800": 1, "metadata": {"\\udc00": 1}}',
    "nan": '{"rate_limit_per_minute": NaN, "ttl_seconds": Infinity}',
    "huge_numbers": '{"rate_limit_per_minute": 1e999, "ttl_seconds": 99999999999999999999999, "page": -1}',
    "folding_name": '{"tenant_name": "' + "ß" * 60 + '", "name": "' + "ﬃ" * 100 + '", "tenant_type": "personal"}',
    "null_bytes": '{"tenant_name": "a\\u0000b", "action": "\\u0000", "user_id": "\\u0000"}',
    "not_an_object": "[1, 2, 3]",
    "scalar": '"just a string"',
    "null": "null",
    "truncated": '{"tenant_name": ',
    "wrong_types": '{"tenant_name": 1, "tenant_type": [], "name": {}, "permissions": "chat", "config": 1}',
}

ROUTES = [
    ("post", "/api/v2/tenants"),
    ("post", "/api/v2/agents"),
    ("post", "/api/v2/api-keys"),
    ("put", "/api/v2/agent-activity"),
    ("post", "/api/v2/plugin-settings"),
    ("post", "/api/v1/plugins/settings"),
    ("post", "/api/v1/usage/log"),
    ("post", "/api/v2/usage-logs"),
    ("post", "/api/v2/auth/validate-api-key"),
    ("post", "/api/v2/auth/parse-api-key"),
    ("post", "/api/v2/auth/check-permission"),
]


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clients(operator_token):
    key = ApiKeyFactory(permissions=["chat", "config", "plugins"])
    operator = APIClient()
    operator.credentials(HTTP_AUTHORIZATION=f"Token {operator_token}")
    agent = APIClient()
    agent.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    return {"operator": operator, "agent_key": agent, "key": key}


@pytest.mark.parametrize("body_name", sorted(BODIES))
@pytest.mark.parametrize("credential", ["operator", "agent_key"])
def test_hostile_bodies_never_give_a_5xx_nor_store_anything(clients, credential, body_name):
    client, key = clients[credential], clients["key"]
    tenants, logs, settings_ = Tenant.objects.count(), UsageLog.objects.count(), PluginSetting.objects.count()
    for method, path in [*ROUTES, ("put", f"/api/v2/agents/{key.agent_id}/config"),
                         ("patch", f"/api/v2/api-keys/{key.id}")]:
        response = client.generic(method.upper(), path, BODIES[body_name].encode("utf-8"),
                                  content_type="application/json")
        assert response.status_code < 500, (method, path, response.content[:300])
        assert response["Content-Type"].startswith("application/json"), (method, path)
    if body_name == "folding_name":  # valid names (they used to overflow on MariaDB): stored, not refused
        return
    assert Tenant.objects.count() == tenants
    assert UsageLog.objects.count() == logs
    assert PluginSetting.objects.count() == settings_
