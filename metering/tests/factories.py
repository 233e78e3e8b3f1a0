"""Factories of the metering tests."""

from datetime import datetime, timezone

import factory

from metering.models import UsageCounter


class UsageCounterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageCounter

    bucket = factory.LazyFunction(lambda: datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0))
    metric = "chat.requests"
    tenant_id = factory.Sequence(lambda n: f"tenant_{n:012x}")
    agent_id = ""
    api_key_id = ""
    dimension = ""
    value = 1
