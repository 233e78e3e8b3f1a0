"""Rotation from the console (button and bulk action, with grace) and the permissions picker."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils import timezone

from agents.tests.factories import AgentFactory
from apikeys.keys import hash_key
from apikeys.models import ApiKey
from apikeys.tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:apikeys_apikey_changelist")


def _secrets(response) -> list[str]:
    return re.findall(r'class="secret"[^>]*>(mmc_[^<]+)<', response.content.decode())


def test_rotate_button_with_grace_shows_the_new_secret_once(admin_client):
    key = ApiKeyFactory(name="bot key")
    old_hash = key.key_hash
    change = admin_client.get(reverse("admin:apikeys_apikey_change", args=[quote(key.pk)])).content.decode()
    rotate_url = reverse("admin:apikeys_apikey_rotate", args=[quote(key.pk)])
    assert f'href="{rotate_url}"' in change
    confirm = admin_client.get(rotate_url)
    assert confirm.status_code == 200 and ApiKey.objects.get(pk=key.pk).key_hash == old_hash  # GET changes nothing
    response = admin_client.post(rotate_url, {"grace_seconds": "3600"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] and response["Referrer-Policy"] == "no-referrer"
    [secret] = _secrets(response)
    key.refresh_from_db()
    assert hash_key(secret) == key.key_hash and key.previous_key_hash == old_hash
    assert timedelta(minutes=59) < key.previous_key_expires_at - timezone.now() <= timedelta(hours=1)
    assert all(secret not in morsel.value for morsel in response.cookies.values())
    assert secret not in admin_client.get(reverse("admin:apikeys_apikey_change", args=[quote(key.pk)])).content.decode()


def test_rotate_without_grace_and_refusal_of_a_disabled_key(admin_client):
    key = ApiKeyFactory()
    admin_client.post(reverse("admin:apikeys_apikey_rotate", args=[quote(key.pk)]), {"grace_seconds": "0"})
    key.refresh_from_db()
    assert key.previous_key_hash is None and key.rotated_at is not None
    disabled = ApiKeyFactory(disabled_at=timezone.now())
    response = admin_client.post(reverse("admin:apikeys_apikey_rotate", args=[quote(disabled.pk)]),
                                 {"grace_seconds": "300"})
    assert response.status_code == 200 and not _secrets(response)
    assert "Only an active key can be rotated" in response.content.decode()
    assert ApiKey.objects.get(pk=disabled.pk).key_hash == disabled.key_hash


def test_bulk_rotation_confirms_then_shows_every_secret(admin_client):
    keys = [ApiKeyFactory(), ApiKeyFactory()]
    disabled = ApiKeyFactory(disabled_at=timezone.now())
    selected = [k.pk for k in (*keys, disabled)]
    confirm = admin_client.post(CHANGELIST, {"action": "rotate_keys", "_selected_action": selected})
    assert confirm.status_code == 200 and 'name="apply"' in confirm.content.decode()
    assert all(ApiKey.objects.get(pk=k.pk).key_hash == k.key_hash for k in keys)
    response = admin_client.post(CHANGELIST, {"action": "rotate_keys", "_selected_action": selected,
                                              "apply": "1", "grace_seconds": "300"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    secrets = _secrets(response)
    assert len(secrets) == 2
    assert {hash_key(s) for s in secrets} == {ApiKey.objects.get(pk=k.pk).key_hash for k in keys}
    assert ApiKey.objects.get(pk=disabled.pk).key_hash == disabled.key_hash


def test_permissions_picked_from_known_ones_plus_free_entries(admin_client):
    agent = AgentFactory()
    form = admin_client.get(reverse("admin:apikeys_apikey_add")).content.decode()
    for name in ("chat", "config", "plugins"):
        assert f'name="permissions_0" value="{name}"' in form
    response = admin_client.post(reverse("admin:apikeys_apikey_add"), {
        "agent": agent.pk, "name": "picked", "description": "", "permissions_0": ["chat", "plugins"],
        "permissions_1": "reports, 读取配置", "expires_at_0": "", "expires_at_1": "", "rate_limit_per_minute": "",
        "metadata": "{}",
    })
    assert response.status_code == 200, response.content.decode()[:1500]
    key = ApiKey.objects.get(name="picked")
    assert key.permissions == ["chat", "plugins", "reports", "读取配置"]
    change = admin_client.get(reverse("admin:apikeys_apikey_change", args=[quote(key.pk)])).content.decode()
    assert re.search(r'value="chat"[^>]*checked', change) and re.search(r'value="plugins"[^>]*checked', change)
    assert not re.search(r'value="config"[^>]*checked', change)
    assert 'value="reports, 读取配置"' in change
