"""Database invariants of plugin settings (on SQLite and MariaDB alike)."""

import pytest
from django.db import IntegrityError, transaction

from agents.tests.factories import AgentFactory
from plugins.models import PluginSetting
from plugins.tests.factories import PluginSettingFactory

pytestmark = pytest.mark.django_db


def test_two_tenant_defaults_of_one_plugin_are_refused_by_the_database():
    first = PluginSettingFactory(plugin_name="p")
    with pytest.raises(IntegrityError), transaction.atomic():
        PluginSetting.objects.create(id="ps_00000000dup1", tenant=first.tenant, agent=None, agent_scope="",
                                     plugin_name="p")


def test_two_overrides_of_one_agent_are_refused_but_other_scopes_are_not():
    agent = AgentFactory()
    PluginSettingFactory(agent=agent, plugin_name="p")
    with pytest.raises(IntegrityError), transaction.atomic():
        PluginSetting.objects.create(id="ps_00000000dup2", tenant=agent.tenant, agent=agent, agent_scope=agent.id,
                                     plugin_name="p")
    PluginSettingFactory(tenant=agent.tenant, plugin_name="p")  # the default may coexist
    PluginSettingFactory(agent=AgentFactory(tenant=agent.tenant), plugin_name="p")
    PluginSettingFactory(tenant=agent.tenant, plugin_name="P")  # case-sensitive names
    assert PluginSetting.objects.count() == 4


def test_agent_scope_must_follow_the_agent():
    agent = AgentFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        PluginSetting.objects.create(id="ps_00000000bad1", tenant=agent.tenant, agent=agent, agent_scope="",
                                     plugin_name="p")
    with pytest.raises(IntegrityError), transaction.atomic():
        PluginSetting.objects.create(id="ps_00000000bad2", tenant=agent.tenant, agent=None, agent_scope=agent.id,
                                     plugin_name="p")


def test_str_and_scope():
    setting = PluginSettingFactory(plugin_name="p")
    assert setting.scope == "tenant" and "p" in str(setting)
