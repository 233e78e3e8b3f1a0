"""Seed a scratch database for the schemathesis run (`make fuzz`): an operator token and an agent key, printed
as one JSON line. Run with the same environment as the server (DATABASE_URL, SECRET_KEY)."""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maimconfig.settings.base")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from agents.services import agent_create  # noqa: E402
from apikeys.services import apikey_create  # noqa: E402
from core.services import operator_token_issue  # noqa: E402
from tenants.services import tenant_create  # noqa: E402


def main() -> None:
    call_command("migrate", "--noinput", verbosity=0)
    user = get_user_model().objects.create_user(username="fuzz-operator", password=None, is_staff=True)
    _, token = operator_token_issue(user=user)
    tenant = tenant_create(tenant_name="Fuzz tenant", tenant_type="enterprise")
    agent = agent_create(tenant_id=tenant.id, name="Fuzz agent")
    _, key = apikey_create(agent_id=agent.id, name="fuzz key", permissions=["chat", "config", "plugins"])
    print(json.dumps({"operator_token": token, "agent_key": key, "tenant_id": tenant.id, "agent_id": agent.id}))


if __name__ == "__main__":
    main()
