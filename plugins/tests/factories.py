import factory

from agents.tests.factories import AgentFactory
from plugins.models import PluginSetting
from tenants.tests.factories import TenantFactory


class PluginSettingFactory(factory.django.DjangoModelFactory):
    """A tenant default; pass `agent=` for an override (tenant and agent_scope follow it)."""

    class Meta:
        model = PluginSetting

    id = factory.Sequence(lambda n: f"ps_{n:012x}")
    agent = None
    tenant = factory.LazyAttribute(lambda o: o.agent.tenant if o.agent else TenantFactory())
    agent_scope = factory.LazyAttribute(lambda o: o.agent.pk if o.agent else "")
    plugin_name = factory.Sequence(lambda n: f"plugin_{n}")
    enabled = True
    config = factory.LazyFunction(dict)


__all__ = ["AgentFactory", "PluginSettingFactory", "TenantFactory"]
