"""The read cache (readcache/): operator reads answered by the fast lane from Redis, populated by Django.

Through the real ASGI application (`core.testing.asgi_request`): a spy on the registered prefix handler
tells whether the fast lane answered; Django's own answer to the same request comes with the handler taken
out. Redis-only (the read cache does not exist without it).
"""

import pytest
from prometheus_client import REGISTRY

from core.testing import asgi_request, statements_in_every_thread
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)


def get(path, token, query="", headers=None):
    extra = {"Authorization": f"Token {token}"} if token else {}
    extra.update(headers or {})
    return asgi_request("GET", path, query=query, headers=extra)


def comparable(response):
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "content-length")}
    body = response.json()
    if isinstance(body, dict):
        for name in ("timestamp", "request_id", "execution_time"):
            body.pop(name, None)
    return response.status_code, headers, body


def metrics(view):
    labels = {"view": view, "method": "GET"}
    return tuple(REGISTRY.get_sample_value(name, lab) or 0.0 for name, lab in (
        ("django_http_responses_total_by_status_view_method_total", {"status": "200", **labels}),
        ("django_http_requests_latency_seconds_by_view_method_count", labels),
        ("django_http_requests_total_by_view_transport_method_total", {"transport": "http", **labels}),
        ("django_http_responses_total_by_status_total", {"status": "200"}),
        ("django_http_requests_total_by_method_total", {"method": "GET"}),
    ))


def test_tenant_get_fast_equals_djangos(lane, operator_token):
    tenant = TenantFactory()
    path = f"/api/v2/tenants/{tenant.pk}"
    first = get(path, operator_token)
    assert first.status_code == 200
    before = metrics("tenants:tenant-detail")
    fast = get(path, operator_token, headers={"X-Request-ID": "rc-1"})
    fast_metrics = tuple(a - b for a, b in zip(metrics("tenants:tenant-detail"), before, strict=True))
    assert lane.outcomes == [False, True]
    with lane.django_only():
        before = metrics("tenants:tenant-detail")
        slow = get(path, operator_token, headers={"X-Request-ID": "rc-1"})
        slow_metrics = tuple(a - b for a, b in zip(metrics("tenants:tenant-detail"), before, strict=True))
    assert comparable(fast) == comparable(slow)
    assert fast.headers["x-request-id"] == fast.json()["request_id"] == "rc-1"
    assert fast.headers["content-length"] == str(len(fast.content))
    assert list(fast.headers) == list(slow.headers)
    assert fast_metrics == slow_metrics == (1, 1, 1, 1, 1)


# --- every cached route: the fast answer is Django's --------------------------------------------------------

def _setup_tenant():
    return TenantFactory(), {}


def _route_cases():
    from activity.services import activity_heartbeat
    from apikeys.tests.factories import ApiKeyFactory

    def tenant():
        t = TenantFactory()
        return f"/api/v2/tenants/{t.pk}", "", "tenants:tenant-detail"

    def keys():
        key = ApiKeyFactory()
        ApiKeyFactory(agent=key.agent)
        return "/api/v2/api-keys", f"tenant_id={key.tenant_id}", "apikeys:apikey-list"

    def key():
        k = ApiKeyFactory()
        return f"/api/v2/api-keys/{k.pk}", "", "apikeys:apikey-detail"

    def activity():
        k = ApiKeyFactory()
        activity_heartbeat(tenant_id=k.tenant_id, agent_id=k.agent_id, ttl_seconds=300)
        return "/api/v2/agent-activity", f"tenant_id={k.tenant_id}", "activity:agent-activity"

    def models():
        return "/api/v2/system/models", "", "catalogue:system-models"

    def bot_defaults():
        return "/api/v2/system/bot-defaults", "", "catalogue:system-bot-defaults"

    return {"tenant": tenant, "keys": keys, "key": key, "activity": activity, "models": models,
            "bot_defaults": bot_defaults}


ROUTES = _route_cases()
HEADER_CASES = {
    "plain": {},
    "request id + chinese": {"X-Request-ID": "rc-2", "Accept-Language": "zh-Hans"},
    "accept json": {"Accept": "application/json"},
}


@pytest.mark.parametrize("headers", list(HEADER_CASES))
@pytest.mark.parametrize("route", list(ROUTES))
def test_every_route_fast_equals_djangos(lane, operator_token, route, headers):
    path, query, view = ROUTES[route]()
    extra = HEADER_CASES[headers]
    assert get(path, operator_token, query, extra).status_code == 200
    before = metrics(view)
    fast = get(path, operator_token, query, extra)
    fast_metrics = tuple(a - b for a, b in zip(metrics(view), before, strict=True))
    assert lane.outcomes == [False, True]
    with lane.django_only():
        before = metrics(view)
        slow = get(path, operator_token, query, extra)
        slow_metrics = tuple(a - b for a, b in zip(metrics(view), before, strict=True))
    assert comparable(fast) == comparable(slow)
    assert list(fast.headers) == list(slow.headers)
    assert fast.headers["content-length"] == str(len(fast.content))
    assert fast.headers["x-request-id"] == fast.json()["request_id"]
    if "X-Request-ID" in extra:
        assert fast.json()["request_id"] == "rc-2"
    assert fast_metrics == slow_metrics == (1, 1, 1, 1, 1)


def test_a_hit_makes_no_database_query(lane, operator_token):
    path, query, _ = ROUTES["keys"]()
    get(path, operator_token, query)
    with statements_in_every_thread() as seen:
        assert get(path, operator_token, query).status_code == 200
    assert lane.outcomes == [False, True]
    assert seen == []


# --- invalidation: after each kind of write, the next read is fresh -----------------------------------------

def _warm(lane, path, token, query=""):
    get(path, token, query)
    answer = get(path, token, query)
    assert lane.outcomes[-1] is True, "the answer is cached"
    return answer.json()["data"]


def _fresh(lane, path, token, query=""):
    answer = get(path, token, query)
    assert lane.outcomes[-1] is False, "the fast lane declined the stale entry"
    return answer


def test_tenant_update_through_the_api_and_the_service(lane, operator_token):
    from tenants import services

    tenant = TenantFactory()
    path = f"/api/v2/tenants/{tenant.pk}"
    _warm(lane, path, operator_token)
    patch = asgi_request("PATCH", path, json_body={"description": "changed"},
                         headers={"Authorization": f"Token {operator_token}"})
    assert patch.status_code == 200
    assert _fresh(lane, path, operator_token).json()["data"]["description"] == "changed"
    _warm(lane, path, operator_token)
    tenant.refresh_from_db()
    services.tenant_update(tenant=tenant, data={"description": "by the service"})  # the admin's path
    assert _fresh(lane, path, operator_token).json()["data"]["description"] == "by the service"


def test_tenant_delete_cascades_to_its_keys(lane, operator_token):
    from apikeys.tests.factories import ApiKeyFactory
    from tenants import services

    key = ApiKeyFactory()
    _warm(lane, f"/api/v2/api-keys/{key.pk}", operator_token)
    _warm(lane, "/api/v2/api-keys", operator_token, f"tenant_id={key.tenant_id}")
    services.tenant_delete(tenant=key.tenant)
    assert _fresh(lane, f"/api/v2/api-keys/{key.pk}", operator_token).status_code == 404
    answer = _fresh(lane, "/api/v2/api-keys", operator_token, f"tenant_id={key.tenant_id}")
    assert answer.json()["data"]["items"] == []


def test_key_writes_and_new_keys(lane, operator_token):
    from apikeys.tests.factories import ApiKeyFactory

    key = ApiKeyFactory()
    query = f"tenant_id={key.tenant_id}"
    _warm(lane, f"/api/v2/api-keys/{key.pk}", operator_token)
    _warm(lane, "/api/v2/api-keys", operator_token, query)
    disabled = asgi_request("POST", f"/api/v2/api-keys/{key.pk}/disable",
                            headers={"Authorization": f"Token {operator_token}", "Content-Type": "application/json"})
    assert disabled.status_code == 200
    assert _fresh(lane, f"/api/v2/api-keys/{key.pk}", operator_token).json()["data"]["status"] == "disabled"
    assert _fresh(lane, "/api/v2/api-keys", operator_token, query).json()["data"]["items"][0]["status"] == "disabled"
    _warm(lane, "/api/v2/api-keys", operator_token, query)
    ApiKeyFactory(agent=key.agent)
    assert len(_fresh(lane, "/api/v2/api-keys", operator_token, query).json()["data"]["items"]) == 2


@pytest.mark.parametrize("fast_validate", [False, True], ids=["django validate", "fast validate"])
def test_key_use_counted_by_validate(lane, operator_token, fast_validate):
    from apikeys.tests.factories import ApiKeyFactory

    key = ApiKeyFactory()
    query = f"tenant_id={key.tenant_id}"
    if fast_validate:  # warm the key state, so that the next validation is the validate fast lane's
        asgi_request("POST", "/api/v2/auth/validate-api-key", json_body={"api_key": key.raw_key})
    used = 1 if fast_validate else 0
    assert _warm(lane, f"/api/v2/api-keys/{key.pk}", operator_token)["usage_count"] == used
    assert _warm(lane, "/api/v2/api-keys", operator_token, query)["items"][0]["usage_count"] == used
    assert asgi_request("POST", "/api/v2/auth/validate-api-key",
                        json_body={"api_key": key.raw_key}).json()["data"]["valid"] is True
    assert _fresh(lane, f"/api/v2/api-keys/{key.pk}", operator_token).json()["data"]["usage_count"] == used + 1
    items = _fresh(lane, "/api/v2/api-keys", operator_token, query).json()["data"]["items"]
    assert items[0]["usage_count"] == used + 1


@pytest.mark.parametrize("by_agent_key", [False, True], ids=["operator heartbeat (Django)", "agent-key heartbeat (fast)"])
def test_heartbeat_refreshes_the_activity_list(lane, operator_token, by_agent_key):
    from apikeys.tests.factories import ApiKeyFactory

    key = ApiKeyFactory()
    query = f"tenant_id={key.tenant_id}"
    assert _warm(lane, "/api/v2/agent-activity", operator_token, query)["items"] == []
    if by_agent_key:
        asgi_request("PUT", "/api/v2/agent-activity", json_body={}, headers={"Authorization": f"Bearer {key.raw_key}"})
        answer = asgi_request("PUT", "/api/v2/agent-activity", json_body={"ttl_seconds": 120},
                              headers={"Authorization": f"Bearer {key.raw_key}"})
    else:
        answer = asgi_request("PUT", "/api/v2/agent-activity",
                              json_body={"tenant_id": key.tenant_id, "agent_id": key.agent_id, "ttl_seconds": 120},
                              headers={"Authorization": f"Token {operator_token}"})
    assert answer.status_code == 200
    items = _fresh(lane, "/api/v2/agent-activity", operator_token, query).json()["data"]["items"]
    assert [(i["agent_id"], i["ttl_seconds"]) for i in items] == [(key.agent_id, 120)]
    _warm(lane, "/api/v2/agent-activity", operator_token, query)
    gone = asgi_request("DELETE", "/api/v2/agent-activity", query=f"agent_id={key.agent_id}",
                        headers={"Authorization": f"Token {operator_token}", "Content-Type": "application/json"})
    assert gone.status_code == 200
    assert _fresh(lane, "/api/v2/agent-activity", operator_token, query).json()["data"]["items"] == []


# --- operators: token deletion, expiry, deactivation, de-staffing -------------------------------------------

def test_deleted_token_is_refused_at_once(lane, operator, operator_token):
    from core.models import OperatorToken

    tenant = TenantFactory()
    path = f"/api/v2/tenants/{tenant.pk}"
    _warm(lane, path, operator_token)
    OperatorToken.objects.filter(user=operator).delete()
    assert _fresh(lane, path, operator_token).status_code == 401


@pytest.mark.parametrize("change,status", [("is_active", 401), ("is_staff", 403)])
def test_deactivated_or_destaffed_user_is_refused_at_once(lane, operator, operator_token, change, status):
    tenant = TenantFactory()
    path = f"/api/v2/tenants/{tenant.pk}"
    _warm(lane, path, operator_token)
    setattr(operator, change, False)
    operator.save()
    assert _fresh(lane, path, operator_token).status_code == status


def _entry_meta(path, token, query=""):
    import json

    from apikeys import redisstate
    from readcache import store

    name = store.entry_hash(method="GET", path=path, query=query, host="testserver", secure=False,
                            authorization=f"Token {token}", accept=None, accept_language=None)
    key = redisstate.prefix() + "rc:e:" + name
    raw = redisstate.client().get(key)
    return key, raw, json.loads(raw[:raw.index(b"\n")])


def _us(value):
    from readcache.middleware import _us

    return _us(value)


def test_valid_until_is_the_tokens_expiry_or_its_next_touch(lane, operator, operator_token):
    from datetime import timedelta

    from django.utils import timezone

    from core.authentication import LAST_USED_RESOLUTION
    from core.models import OperatorToken

    tenant = TenantFactory()
    path = f"/api/v2/tenants/{tenant.pk}"
    _warm(lane, path, operator_token)
    row = OperatorToken.objects.get(user=operator)
    assert _entry_meta(path, operator_token)[2][0] == _us(row.last_used_at + LAST_USED_RESOLUTION)
    expires = timezone.now() + timedelta(seconds=20)
    row.expires_at = expires
    row.save()  # the admin's edit: bumps the operators' generation
    _fresh(lane, path, operator_token)
    assert _entry_meta(path, operator_token)[2][0] == _us(expires)


def test_an_entry_past_its_valid_until_is_declined(lane, operator_token):
    import json

    from apikeys import redisstate

    tenant = TenantFactory()
    path = f"/api/v2/tenants/{tenant.pk}"
    _warm(lane, path, operator_token)
    key, raw, meta = _entry_meta(path, operator_token)
    meta[0] = _us(__import__("django.utils.timezone").utils.timezone.now()) - 1_000_000
    redisstate.client().set(key, json.dumps(meta).encode() + raw[raw.index(b"\n"):])
    assert _fresh(lane, path, operator_token).status_code == 200


def test_activity_list_holds_until_its_first_row_goes_offline(lane, operator_token):
    from activity.services import activity_heartbeat
    from apikeys.tests.factories import ApiKeyFactory

    key = ApiKeyFactory()
    other = ApiKeyFactory(agent__tenant=key.tenant)
    activity_heartbeat(tenant_id=key.tenant_id, agent_id=key.agent_id, ttl_seconds=300)
    soon = activity_heartbeat(tenant_id=key.tenant_id, agent_id=other.agent_id, ttl_seconds=30)
    query = f"tenant_id={key.tenant_id}"
    assert len(_warm(lane, "/api/v2/agent-activity", operator_token, query)["items"]) == 2
    assert _entry_meta("/api/v2/agent-activity", operator_token, query)[2][0] == _us(soon.expires_at)


def test_key_holds_until_it_expires(lane, operator_token):
    from datetime import timedelta

    from django.utils import timezone

    from apikeys.tests.factories import ApiKeyFactory

    expires = timezone.now() + timedelta(seconds=25)
    key = ApiKeyFactory(expires_at=expires)
    ApiKeyFactory(agent=key.agent)
    _warm(lane, f"/api/v2/api-keys/{key.pk}", operator_token)
    assert _entry_meta(f"/api/v2/api-keys/{key.pk}", operator_token)[2][0] == _us(expires)
    query = f"tenant_id={key.tenant_id}"
    _warm(lane, "/api/v2/api-keys", operator_token, query)
    assert _entry_meta("/api/v2/api-keys", operator_token, query)[2][0] == _us(expires)


# --- isolation ------------------------------------------------------------------------------------------------

def test_another_credential_never_gets_the_entry(lane, operator_token, django_user_model):
    from apikeys.tests.factories import ApiKeyFactory
    from core.services import operator_token_issue

    key = ApiKeyFactory()
    path = f"/api/v2/tenants/{key.tenant_id}"
    other_user = django_user_model.objects.create_user(username="other", password="pw-other-1", is_staff=True)
    _, other_token = operator_token_issue(user=other_user)  # (a new token bumps every operator entry)
    _warm(lane, path, operator_token)
    assert _fresh(lane, path, other_token).status_code == 200
    assert get(path, None).status_code == 401
    assert lane.outcomes[-1] is False
    agent = asgi_request("GET", path, headers={"Authorization": f"Bearer {key.raw_key}"})
    assert lane.outcomes[-1] is False and agent.status_code == 403
    assert _fresh(lane, path, "mmc_not-a-token").status_code in (401, 403)
    assert get(path, operator_token).status_code == 200 and lane.outcomes[-1] is True


@pytest.mark.parametrize("header", ["Cookie", "Origin", "Sec-Fetch-Site"])
def test_browser_requests_are_djangos(lane, operator_token, header):
    tenant = TenantFactory()
    path = f"/api/v2/tenants/{tenant.pk}"
    _warm(lane, path, operator_token)
    get(path, operator_token, headers={header: "x=1" if header == "Cookie" else "http://testserver"})
    assert lane.outcomes[-1] is False


# --- race: a write that commits between Django's read and its store ----------------------------------------

def test_a_write_committing_after_the_read_leaves_a_stale_stamp(lane, operator_token, monkeypatch):
    from core.testing import run_concurrently
    from tenants import selectors, services
    from tenants.models import Tenant

    tenant = TenantFactory(description="old")
    path = f"/api/v2/tenants/{tenant.pk}"
    original = selectors.tenant_get
    raced = []

    def read_then_write(**kwargs):
        found = original(**kwargs)  # the old row is read…
        if not raced:
            raced.append(True)

            def write(_):  # …then another request's update commits (and bumps) before this answer is stored
                services.tenant_update(tenant=Tenant.objects.get(pk=tenant.pk), data={"description": "new"})

            run_concurrently(1, write)
        return found

    monkeypatch.setattr(selectors, "tenant_get", read_then_write)
    assert get(path, operator_token).json()["data"]["description"] == "old"
    assert _fresh(lane, path, operator_token).json()["data"]["description"] == "new"


# --- GET /api/v1/plugins/settings with an agent key: verified and counted on every hit ----------------------

PLUGINS = "/api/v1/plugins/settings"


def _plugin_key(**kwargs):
    from apikeys.tests.factories import ApiKeyFactory
    from plugins import services

    key = ApiKeyFactory(permissions=["plugins"], **kwargs)
    services.plugin_setting_upsert(tenant_id=key.tenant_id, plugin_name="bench", enabled=True, config={"a": 1})
    services.plugin_setting_upsert(tenant_id=key.tenant_id, agent_id=key.agent_id, plugin_name="bench",
                                   config={"a": 2})
    return key


def key_get(key, query="", headers=None):
    return asgi_request("GET", PLUGINS, query=query, headers={"Authorization": f"Bearer {key.raw_key}", **(headers or {})})


def _plugin_metrics():
    labels = {"view": "plugins_v1:plugin-settings", "method": "GET"}
    return tuple(REGISTRY.get_sample_value(name, lab) or 0.0 for name, lab in (
        ("maimconfig_key_verifications_total", {"outcome": "valid", "route": "request"}),
        ("django_http_responses_total_by_status_view_method_total", {"status": "200", **labels}),
        ("django_http_requests_latency_seconds_by_view_method_count", labels),
    ))


@pytest.mark.parametrize("limited", [False, True], ids=["unlimited", "limited key"])
@pytest.mark.parametrize("scoped", [False, True], ids=["no query", "tenant and agent in the query"])
def test_plugins_v1_with_an_agent_key_fast_equals_djangos(lane, limited, scoped):
    from apikeys import usage

    key = _plugin_key(rate_limit_per_minute=50 if limited else None)
    query = f"tenant_id={key.tenant_id}&agent_id={key.agent_id}" if scoped else ""
    assert key_get(key, query).status_code == 200
    before = _plugin_metrics()
    fast = key_get(key, query, {"X-Request-ID": "rc-3"})
    fast_metrics = tuple(a - b for a, b in zip(_plugin_metrics(), before, strict=True))
    assert lane.outcomes == [False, True]
    with lane.django_only():
        before = _plugin_metrics()
        slow = key_get(key, query, {"X-Request-ID": "rc-3"})
        slow_metrics = tuple(a - b for a, b in zip(_plugin_metrics(), before, strict=True))
    if limited:
        assert fast.headers.pop("x-ratelimit-remaining") == "48"
        assert slow.headers.pop("x-ratelimit-remaining") == "47"
        assert fast.headers["x-ratelimit-limit"] == "50"
    assert fast.status_code == slow.status_code == 200
    assert fast.content == slow.content and fast.json()[0]["config"] == {"a": 2}
    assert {k: v for k, v in fast.headers.items() if k != "x-ratelimit-reset"} == \
        {k: v for k, v in slow.headers.items() if k != "x-ratelimit-reset"}
    assert list(fast.headers) == list(slow.headers)
    assert fast.headers["x-request-id"] == "rc-3"
    assert fast_metrics == slow_metrics == (1, 1, 1)
    assert usage.shown(key.pk)[0] == 3  # every request counted once, fast or not


def test_plugins_v1_fresh_after_a_plugin_write_and_refused_after_revocation(lane):
    from plugins import services

    key = _plugin_key()
    key_get(key)
    assert key_get(key).json()[0]["config"] == {"a": 2} and lane.outcomes[-1] is True
    services.plugin_setting_upsert(tenant_id=key.tenant_id, agent_id=key.agent_id, plugin_name="bench",
                                   config={"a": 3})
    assert key_get(key).json()[0]["config"] == {"a": 3} and lane.outcomes[-1] is False
    assert key_get(key).status_code == 200 and lane.outcomes[-1] is True
    key.permissions = ["chat"]
    key.save()
    assert key_get(key).status_code == 403 and lane.outcomes[-1] is False
    key.permissions = ["plugins"]
    key.save()
    key_get(key)
    assert key_get(key).status_code == 200 and lane.outcomes[-1] is True
    from apikeys import services as key_services

    key_services.apikey_disable(api_key=key)
    assert key_get(key).status_code == 401 and lane.outcomes[-1] is False


def test_plugins_v1_agent_key_of_another_tenant_never_gets_the_entry(lane):
    key = _plugin_key()
    other = _plugin_key()
    query = f"tenant_id={key.tenant_id}"
    key_get(key, query)
    assert key_get(key, query).status_code == 200 and lane.outcomes[-1] is True
    assert key_get(other, query).status_code == 403 and lane.outcomes[-1] is False


def test_plugins_v1_fresh_after_a_setting_or_its_agent_is_deleted(lane, operator_token):
    from plugins import services
    from plugins.models import PluginSetting

    key = _plugin_key()
    query = f"tenant_id={key.tenant_id}&agent_id={key.agent_id}"
    get(PLUGINS, operator_token, query)
    assert get(PLUGINS, operator_token, query).json()[0]["config"] == {"a": 2} and lane.outcomes[-1] is True
    override = PluginSetting.objects.get(tenant_id=key.tenant_id, agent_scope=key.agent_id)
    services.plugin_setting_delete(setting=override)  # the API's and the admin's path
    assert get(PLUGINS, operator_token, query).json()[0]["config"] == {"a": 1} and lane.outcomes[-1] is False
    services.plugin_setting_upsert(tenant_id=key.tenant_id, agent_id=key.agent_id, plugin_name="bench",
                                   config={"a": 4})
    other = f"tenant_id={key.tenant_id}"
    get(PLUGINS, operator_token, other)
    assert get(PLUGINS, operator_token, other).status_code == 200 and lane.outcomes[-1] is True
    key.agent.delete()  # cascades to its override (and its keys)
    assert get(PLUGINS, operator_token, other).json()[0]["config"] == {"a": 1} and lane.outcomes[-1] is False


# --- Redis trouble -----------------------------------------------------------------------------------------------

def test_declines_while_the_breaker_is_open_and_after_an_outage(lane, operator_token):
    import time

    from apikeys import keycache, redisstate

    tenant = TenantFactory()
    path = f"/api/v2/tenants/{tenant.pk}"
    _warm(lane, path, operator_token)
    redisstate.breaker.open_until = time.monotonic() + 60  # as after a Redis error in this process
    assert get(path, operator_token).status_code == 200 and lane.outcomes[-1] is False
    redisstate.breaker.reset()
    assert get(path, operator_token).status_code == 200 and lane.outcomes[-1] is True
    keycache.bump_global(redisstate.client())  # what a process does after an outage: every entry is stale
    assert _fresh(lane, path, operator_token).status_code == 200
