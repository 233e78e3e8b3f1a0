"""Fixture data for `make bench-chat` (run with the bench's environment after `manage.py migrate`):
`chat_bench_setup.py UPSTREAM_URL TENANTS AGENTS_PER_TENANT`. Each agent's replyer is a model of a provider
at UPSTREAM_URL; each agent gets one key holding `chat`. Prints one line per agent:
`<tenant id> <agent id> <agent key>`. New tenants, agents and keys on every run."""

import os
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maimconfig.settings.base")

import django  # noqa: E402

django.setup()

from agents.configdoc import to_storage  # noqa: E402
from agents.models import Agent  # noqa: E402
from apikeys.services import apikey_create  # noqa: E402
from core.ids import unique_id  # noqa: E402
from core.models import casefold_name  # noqa: E402
from tenants.services import tenant_create  # noqa: E402

upstream, tenants, per_tenant = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
doc = {"config_overrides": {"model": {
    "api_providers": [{"name": "Slow", "base_url": upstream, "api_key": "sk-bench", "client_type": "openai",
                       "timeout": 30}],
    "models": [{"name": "slow", "model_identifier": "slow-1", "api_provider": "Slow"}],
    "model_task_config": {"replyer": {"model_list": ["slow"], "max_tokens": 64}}}}}
run = secrets.token_hex(3)
for t in range(tenants):
    tenant = tenant_create(tenant_name=f"Chat bench {run} {t}", tenant_type="enterprise")
    for a in range(per_tenant):
        name = f"Bot {a}"
        agent = Agent.objects.create(id=unique_id(Agent, "agent_"), tenant=tenant, name=name,
                                     name_key=casefold_name(name), config=to_storage(doc))
        _, raw = apikey_create(agent_id=agent.id, name=f"bench {a}", permissions=["chat", "config"])
        print(tenant.id, agent.id, raw)
