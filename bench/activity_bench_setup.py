"""Fixture data for bench/run_activity_bench.sh: an operator token, a tenant, N agents and their keys.

Run with the bench's environment (DATABASE_URL, SECRET_KEY, …) after `manage.py migrate`:
`activity_bench_setup.py N`. Prints the operator token on the first line, then one line per agent:
`<tenant id> <agent id> <agent key>`. Idempotent on the operator; the tenant, agents and keys are new on
every run.
"""

import os
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maimconfig.settings.base")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from core.services import operator_token_issue  # noqa: E402

from agents.models import Agent  # noqa: E402
from apikeys.services import apikey_create  # noqa: E402
from core.ids import unique_id  # noqa: E402
from core.models import casefold_name  # noqa: E402
from tenants.services import tenant_create  # noqa: E402


def main() -> None:
    user, _ = get_user_model().objects.get_or_create(username="bench-activity",
                                                     defaults={"is_staff": True, "is_active": True})
    _, token = operator_token_issue(user=user)
    tenant = tenant_create(tenant_name=f"bench-{secrets.token_hex(4)}", tenant_type="enterprise")
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    print(token)
    for index in range(count):
        name = f"bench agent {index}"
        agent = Agent.objects.create(id=unique_id(Agent, "agent_"), tenant=tenant, name=name,
                                     name_key=casefold_name(name), config={}, tags=[])
        _, raw_key = apikey_create(agent_id=agent.id, name=f"bench key {index}", permissions=[])
        print(tenant.id, agent.id, raw_key)


if __name__ == "__main__":
    main()
