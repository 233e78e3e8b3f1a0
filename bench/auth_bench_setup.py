"""Creates the benchmark's tenant, agent and API key; prints `KEY_ID RAW_KEY` (run via manage.py shell)."""

from agents.models import Agent
from apikeys.models import ApiKey
from apikeys.services import apikey_create
from core.ids import unique_id
from core.models import casefold_name
from tenants.models import Tenant
from tenants.services import tenant_create

tenant = Tenant.objects.filter(name_key="auth bench").first() or tenant_create(tenant_name="Auth Bench",
                                                                                tenant_type="enterprise")
agent = Agent.objects.filter(tenant=tenant, name_key="bench bot").first() or Agent.objects.create(
    id=unique_id(Agent, "agent_"), tenant=tenant, name="Bench Bot", name_key=casefold_name("Bench Bot"))
ApiKey.objects.filter(tenant=tenant).delete()
key, raw = apikey_create(agent_id=agent.id, name="bench", permissions=["chat", "config"])
print(key.id, raw)
