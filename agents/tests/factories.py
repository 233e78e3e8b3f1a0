import factory

from agents.models import Agent
from core.models import casefold_name
from tenants.tests.factories import TenantFactory


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    id = factory.Sequence(lambda n: f"agent_{n:012x}")
    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Agent {n}")
    name_key = factory.LazyAttribute(lambda o: casefold_name(o.name))
    status = Agent.Status.ACTIVE
    config = factory.LazyFunction(dict)
    tags = factory.LazyFunction(list)
