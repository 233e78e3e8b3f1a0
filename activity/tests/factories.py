from datetime import timedelta

import factory
from django.utils import timezone

from activity.models import AgentActivity, UsageLog
from agents.tests.factories import AgentFactory


class AgentActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentActivity

    agent = factory.SubFactory(AgentFactory)
    tenant = factory.LazyAttribute(lambda o: o.agent.tenant)
    last_seen_at = factory.LazyFunction(lambda: timezone.now())
    ttl_seconds = 300
    expires_at = factory.LazyAttribute(lambda o: o.last_seen_at + timedelta(seconds=o.ttl_seconds))


class UsageLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageLog

    agent = factory.SubFactory(AgentFactory)
    tenant = factory.LazyAttribute(lambda o: o.agent.tenant if o.agent else None)
    action = "message_sent"
    timestamp = factory.LazyFunction(lambda: timezone.now())
