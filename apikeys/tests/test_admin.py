"""Admin smoke tests: changelist, filters, search, add (secret shown once), change, bulk actions."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from agents.tests.factories import AgentFactory
from apikeys.models import ApiKey
from apikeys.tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:apikeys_apikey_changelist")


def test_changelist_filters_and_search(admin_client):
    active = ApiKeyFactory(name="alpha")
    disabled = ApiKeyFactory(name="beta", disabled_at=timezone.now())
    expired = ApiKeyFactory(name="gamma", expires_at=timezone.now() - timedelta(minutes=1))
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    for key in (active, disabled, expired):
        assert key.name in html and key.key_hint in html
        assert key.key_hash not in html
    for query, expected in (("status=active", {active}), ("status=disabled", {disabled}),
                            ("status=expired", {expired}), ("expired=yes", {expired}),
                            ("expired=no", {active, disabled}), (f"q={disabled.agent_id}", {disabled}),
                            ("q=gam", {expired}), (f"tenant__id__exact={active.tenant_id}", {active}),
                            (f"q={active.tenant_id}", {active})):
        response = admin_client.get(f"{CHANGELIST}?{query}")
        assert response.status_code == 200, query
        assert set(response.context["cl"].result_list) == expected, query


def test_add_shows_the_secret_once_and_stores_only_the_hash(admin_client):
    agent = AgentFactory()
    response = admin_client.post(reverse("admin:apikeys_apikey_add"), {
        "agent": agent.pk, "name": "from-admin", "description": "", "permissions": "chat, config, chat",
        "expires_at_0": "", "expires_at_1": "", "rate_limit_per_minute": "", "metadata": "{}",
    })
    # The answer of the POST is the one-time page (core.secret_page): no redirect, no message, no-store.
    assert response.status_code == 200, response.content.decode()[:2000]
    assert "no-store" in response["Cache-Control"]
    key = ApiKey.objects.get(name="from-admin")
    assert key.tenant_id == agent.tenant_id and key.permissions == ["chat", "config"]
    assert not [str(m) for m in get_messages(response.wsgi_request)]
    secret = re.search(r'class="secret"[^>]*>(mmc_[^<]+)<', response.content.decode()).group(1)
    from apikeys.keys import hash_key

    assert hash_key(secret) == key.key_hash
    assert all(secret not in morsel.value for morsel in response.cookies.values())
    change_url = reverse("admin:apikeys_apikey_change", args=[quote(key.pk)])
    page = admin_client.get(change_url).content.decode()
    assert secret not in page and key.key_hash not in page
    assert secret not in admin_client.get(CHANGELIST).content.decode()


def test_add_refused_by_the_service_shows_an_error(admin_client):
    existing = ApiKeyFactory(name="dup")
    response = admin_client.post(reverse("admin:apikeys_apikey_add"), {
        "agent": existing.agent_id, "name": "DUP", "permissions": "", "metadata": "{}",
        "expires_at_0": "", "expires_at_1": "", "rate_limit_per_minute": "",
    })
    assert ApiKey.objects.filter(name_key="dup").count() == 1
    # The form comes back with what was typed and the refusal on the field it names; nothing is saved.
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.data["name"] == "DUP"
    assert any("already exists" in e for e in form.errors.get("name", []) + form.non_field_errors())
    assert b'value="DUP"' in response.content
    assert not [str(m) for m in response.context["messages"] if "was added" in str(m)]


def test_add_rejects_bad_permissions(admin_client):
    agent = AgentFactory()
    response = admin_client.post(reverse("admin:apikeys_apikey_add"), {
        "agent": agent.pk, "name": "x", "permissions": "chat, bad\x07perm", "metadata": "{}",
        "expires_at_0": "", "expires_at_1": "", "rate_limit_per_minute": "",
    })
    assert response.status_code == 200 and not ApiKey.objects.exists()


def test_change_goes_through_the_service(admin_client):
    key = ApiKeyFactory(name="old", permissions=["chat"])
    url = reverse("admin:apikeys_apikey_change", args=[quote(key.pk)])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"name": "new", "description": "", "permissions": "chat, plugins",
                                       "expires_at_0": "", "expires_at_1": "", "rate_limit_per_minute": "10",
                                       "metadata": '{"a": 1}'})
    assert response.status_code == 302
    key.refresh_from_db()
    assert (key.name, key.name_key, key.permissions, key.rate_limit_per_minute, key.metadata) == (
        "new", "new", ["chat", "plugins"], 10, {"a": 1})
    assert key.updated_at > key.created_at


def test_bulk_disable_enable_delete(admin_client):
    keys = [ApiKeyFactory(), ApiKeyFactory()]
    ids = [k.pk for k in keys]
    admin_client.post(CHANGELIST, {"action": "disable_keys", "_selected_action": ids})
    assert all(k.status == "disabled" for k in ApiKey.objects.all())
    admin_client.post(CHANGELIST, {"action": "enable_keys", "_selected_action": ids})
    assert all(k.status == "active" for k in ApiKey.objects.all())
    admin_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert not ApiKey.objects.exists()
