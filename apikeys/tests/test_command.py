import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.tests.factories import AgentFactory
from apikeys.keys import hash_key
from apikeys.models import ApiKey
from tenants.models import Tenant
from apikeys.tests.helpers import set_fields

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("issue_api_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_issue_prints_the_key_once():
    agent = AgentFactory()
    out, err = run("--tenant", agent.tenant_id, "--agent", agent.id, "--name", "cli",
                   "--permissions", "chat,config,chat", "--expires-in", "30d")
    raw = out.strip()
    assert raw.startswith("mmc_") and len(raw) == 104 and raw not in err
    key = ApiKey.objects.get(name="cli")
    assert key.key_hash == hash_key(raw) and key.permissions == ["chat", "config"]
    assert 29 <= (key.expires_at - key.created_at).days <= 30


def test_issue_json():
    agent = AgentFactory()
    out, _ = run("--tenant", agent.tenant_id, "--agent", agent.id, "--name", "cli", "--json")
    data = json.loads(out)
    assert data["api_key"].startswith("mmc_") and data["name"] == "cli" and data["status"] == "active"


@pytest.mark.parametrize("extra, message", [
    (["--expires-in", "soon"], "--expires-in"),
    (["--expires-in", "0d"], "--expires-in"),
    (["--permissions", "p" * 65], "Invalid permission"),
    (["--rate-limit", "0"], "--rate-limit"),
])
def test_bad_arguments(extra, message):
    agent = AgentFactory()
    with pytest.raises(CommandError, match=message):
        run("--tenant", agent.tenant_id, "--agent", agent.id, "--name", "cli", *extra)
    assert not ApiKey.objects.exists()


def test_service_refusals_are_clear_errors():
    agent = AgentFactory()
    other = AgentFactory()
    with pytest.raises(CommandError, match="TENANT_003"):
        run("--tenant", "tenant_ffffffffffff", "--agent", agent.id, "--name", "x")
    with pytest.raises(CommandError, match="AGENT_004"):
        run("--tenant", agent.tenant_id, "--agent", other.id, "--name", "x")
    run("--tenant", agent.tenant_id, "--agent", agent.id, "--name", "x")
    with pytest.raises(CommandError, match="KEY_002"):
        run("--tenant", agent.tenant_id, "--agent", agent.id, "--name", "X")
    set_fields(Tenant, agent.tenant_id, status="inactive")
    with pytest.raises(CommandError, match="TENANT_008"):
        run("--tenant", agent.tenant_id, "--agent", agent.id, "--name", "y")


def test_missing_arguments_exit_non_zero():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "manage.py", "issue_api_key", "--name", "x"], capture_output=True,
                            text=True, env={**__import__("os").environ, "DEBUG": "1"})
    assert result.returncode != 0 and "--tenant" in result.stderr and not result.stdout
