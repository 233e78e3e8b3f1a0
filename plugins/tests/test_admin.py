"""Admin smoke tests: list with filters; add and change go through the services."""

import pytest
from django.contrib.admin.utils import quote

from agents.tests.factories import AgentFactory
from plugins.models import PluginSetting
from plugins.tests.factories import PluginSettingFactory
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db

BASE = "/admin/plugins/pluginsetting/"


def test_changelist_filters_and_search(admin_client):
    setting = PluginSettingFactory(plugin_name="weather")
    assert admin_client.get(BASE).status_code == 200
    for query in ("?q=weather", "?enabled__exact=1", f"?tenant__id__exact={setting.tenant_id}",
                  "?plugin_name=weather"):
        response = admin_client.get(BASE + query)
        assert response.status_code == 200
        assert b"weather" in response.content


def test_add_through_service_and_upsert(admin_client):
    agent = AgentFactory()
    form = {"tenant": agent.tenant_id, "agent": agent.id, "plugin_name": "weather", "enabled": "on",
            "config": '{"units": "metric"}'}
    response = admin_client.post(BASE + "add/", form)
    assert response.status_code == 302, response.content[:2000]
    row = PluginSetting.objects.get()
    assert row.id.startswith("ps_") and row.agent_scope == agent.id and row.config == {"units": "metric"}
    # Adding the same triple again updates the row instead of duplicating it.
    response = admin_client.post(BASE + "add/", {**form, "config": '{"units": "imperial"}'})
    assert response.status_code == 302
    assert PluginSetting.objects.get().config == {"units": "imperial"}


def test_add_validation(admin_client):
    agent = AgentFactory()
    form = {"tenant": TenantFactory().id, "agent": agent.id, "plugin_name": "bad/name", "config": "[1]"}
    response = admin_client.post(BASE + "add/", form)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"agent", "plugin_name", "config"}
    assert not PluginSetting.objects.exists()


def test_change_and_delete(admin_client):
    setting = PluginSettingFactory(config={"a": 1})
    response = admin_client.get(f"{BASE}{quote(setting.id)}/change/")
    assert response.status_code == 200
    response = admin_client.post(f"{BASE}{quote(setting.id)}/change/", {"config": '{"b": 2}'})
    assert response.status_code == 302, response.content[:2000]
    setting.refresh_from_db()
    assert setting.config == {"b": 2} and setting.enabled is False
    response = admin_client.post(f"{BASE}{quote(setting.id)}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not PluginSetting.objects.exists()


def test_change_page_of_an_id_the_admin_would_unquote(admin_client):
    # Admin URLs quote ids ("_25" would decode to "%"): ps_25… must be reachable through quote().
    setting = PluginSettingFactory()
    PluginSetting.objects.filter(pk=setting.pk).update(id="ps_25aa3abdb06e")
    assert admin_client.get(f"{BASE}{quote('ps_25aa3abdb06e')}/change/").status_code == 200
