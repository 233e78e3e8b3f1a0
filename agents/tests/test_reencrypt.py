"""Changing the secrets key: old provider keys keep decrypting through the fallbacks, and
`reencrypt_provider_keys` moves them under the current key."""

import io

import pytest
from django.core.management import CommandError, call_command

from agents import services
from agents.configdoc import provider_api_key
from agents.models import Agent
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def _agent(name="Bot", keys=(("Mine", "sk-mine-123"),)):
    providers = [{"name": provider, "api_key": key} for provider, key in keys]
    return services.agent_create(tenant_id=TenantFactory().pk, name=name,
                                 config={"config_overrides": {"model": {"api_providers": providers}}})


def _run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("reencrypt_provider_keys", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _stored(agent):
    return Agent.objects.get(pk=agent.pk).config["config_overrides"]["model"]["api_providers"][0]["api_key"]


def test_secret_key_rotation_with_fallback_then_reencryption(settings):
    settings.SECRET_KEY = "old-secret-key"
    agent = _agent()
    before_updated = Agent.objects.get(pk=agent.pk).updated_at
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-secret-key", ["old-secret-key"]
    assert provider_api_key(Agent.objects.get(pk=agent.pk), "Mine") == "sk-mine-123"  # chat keeps working

    out, err = _run()
    assert out.strip() == "1 provider key(s) re-encrypted in 1 agent(s)." and err == ""
    settings.SECRET_KEY_FALLBACKS = []
    reloaded = Agent.objects.get(pk=agent.pk)
    assert provider_api_key(reloaded, "Mine") == "sk-mine-123"  # now under the new key alone
    assert reloaded.updated_at == before_updated
    assert _run()[0].startswith("0 provider key(s)")  # idempotent


def test_secrets_key_change_with_fallbacks(settings):
    settings.MAIMCONFIG_SECRETS_KEY = "first-operator-key"
    agent = _agent()
    settings.MAIMCONFIG_SECRETS_KEY = "second-operator-key"
    settings.MAIMCONFIG_SECRETS_KEY_FALLBACKS = ["first-operator-key"]
    _run()
    settings.MAIMCONFIG_SECRETS_KEY_FALLBACKS = []
    assert provider_api_key(Agent.objects.get(pk=agent.pk), "Mine") == "sk-mine-123"


def test_setting_a_secrets_key_keeps_what_was_stored_under_the_secret_key(settings):
    settings.MAIMCONFIG_SECRETS_KEY = ""
    agent = _agent()
    settings.MAIMCONFIG_SECRETS_KEY = "now-explicit"
    assert provider_api_key(Agent.objects.get(pk=agent.pk), "Mine") == "sk-mine-123"


def test_dry_run_writes_nothing(settings):
    settings.SECRET_KEY = "old-secret-key"
    agent = _agent()
    stored = _stored(agent)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-secret-key", ["old-secret-key"]
    out, _ = _run("--dry-run")
    assert out.strip() == "1 provider key(s) would be re-encrypted in 1 agent(s)."
    assert _stored(agent) == stored


def test_undecryptable_keys_are_reported_by_name_and_left_alone(settings):
    settings.SECRET_KEY = "lost-secret-key"
    lost = _agent("Lost", keys=(("Gone", "sk-gone-999"),))
    stored = _stored(lost)
    settings.SECRET_KEY = "old-secret-key"
    fine = _agent("Fine")
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-secret-key", ["old-secret-key"]

    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 provider key"):
        call_command("reencrypt_provider_keys", stdout=out, stderr=err)
    assert f"{lost.pk}: the key of provider 'Gone' cannot be decrypted" in err.getvalue()
    assert "sk-gone" not in out.getvalue() + err.getvalue()
    assert _stored(lost) == stored
    settings.SECRET_KEY_FALLBACKS = []
    assert provider_api_key(Agent.objects.get(pk=fine.pk), "Mine") == "sk-mine-123"  # the others were done
