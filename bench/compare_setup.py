"""Fixture of `make bench-compare` (run via `manage.py shell -c`): an operator token, a tenant, an agent, an
agent key (permissions chat, config, plugins), and a tenant-default and an agent-override plugin setting
(the script's sanity pass then heartbeats once, so the activity list shows one row). The tenant and agent
are reused across runs; the key and the token are new on every run.
Prints `TOKEN TENANT_ID AGENT_ID KEY_ID RAW_KEY` on its last line."""

from django.contrib.auth import get_user_model
from django.db import transaction

from agents.models import Agent
from apikeys.models import ApiKey
from apikeys.services import apikey_create
from core.ids import unique_id
from core.models import casefold_name
from core.services import operator_token_issue
from plugins.services import plugin_setting_upsert
from tenants.models import Tenant
from tenants.services import tenant_create

user, _ = get_user_model().objects.get_or_create(username="bench-compare",
                                                 defaults={"is_staff": True, "is_active": True})
_, token = operator_token_issue(user=user)
tenant = Tenant.objects.filter(name_key="compare bench").first() or tenant_create(
    tenant_name="Compare Bench", tenant_type="personal")
agent = Agent.objects.filter(tenant=tenant, name_key="bench bot").first() or Agent.objects.create(
    id=unique_id(Agent, "agent_"), tenant=tenant, name="Bench Bot", name_key=casefold_name("Bench Bot"),
    config={}, tags=[])
ApiKey.objects.filter(tenant=tenant).delete()
key, raw = apikey_create(agent_id=agent.id, name="bench", permissions=["chat", "config", "plugins"])
with transaction.atomic():
    plugin_setting_upsert(tenant_id=tenant.pk, plugin_name="bench", enabled=True, config={"a": 1})
with transaction.atomic():
    plugin_setting_upsert(tenant_id=tenant.pk, agent_id=agent.pk, plugin_name="bench", enabled=False,
                          config={"a": 2})
print(token, tenant.pk, agent.pk, key.id, raw)
