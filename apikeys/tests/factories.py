"""Factories of the apikeys tests. A created key keeps its raw secret on `obj.raw_key` (tests only)."""

import factory

from agents.tests.factories import AgentFactory
from apikeys.keys import generate_key, hash_key, key_hint
from apikeys.models import ApiKey
from core.models import casefold_name


class ApiKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiKey

    id = factory.Sequence(lambda n: f"key_{n:012x}")
    agent = factory.SubFactory(AgentFactory)
    tenant = factory.LazyAttribute(lambda o: o.agent.tenant)
    name = factory.Sequence(lambda n: f"Key {n}")
    name_key = factory.LazyAttribute(lambda o: casefold_name(o.name))
    permissions = factory.LazyFunction(lambda: ["chat", "config"])
    metadata = factory.LazyFunction(dict)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        agent = kwargs["agent"]
        raw_key, random_part = generate_key(agent.tenant_id, agent.id)
        kwargs.setdefault("key_hash", hash_key(raw_key))
        kwargs.setdefault("key_hint", key_hint(random_part))
        obj = super()._create(model_class, *args, **kwargs)
        obj.raw_key = raw_key
        return obj
