"""Configuration versions (issue 17): every config write path makes version n+1; listing, reading,
rolling back (keys restored and still decrypting, AGENT_011 after a catalogue change), ETag/304."""

import json

import pytest

from agents import configdoc, services
from agents.models import Agent, AgentConfigVersion
from agents.tests.factories import AgentFactory
from audit.models import AuditEvent
from catalogue import selectors as catalogue
from core.errors import ErrorCode
from core.exceptions import ApplicationError

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant():
    from tenants.tests.factories import TenantFactory

    return TenantFactory()


def _providers(*entries):
    return {"config_overrides": {"model": {"api_providers": list(entries)}}}


def _create(tenant, **config):
    return services.agent_create(tenant_id=tenant.pk, name="helper", config=config or None)


def _numbers(agent):
    return list(AgentConfigVersion.objects.filter(agent=agent).values_list("number", flat=True))


def test_creation_is_version_1_with_the_document_and_its_diff(tenant):
    agent = _create(tenant, persona="Terse.")
    version = AgentConfigVersion.objects.get(agent=agent)
    assert (version.number, version.source, version.actor, agent.config_version) == (1, "create", "system", 1)
    assert version.document == {"persona": {"personality": "Terse."}}
    assert version.changes == {"persona.personality": [None, "Terse."]}


def test_every_service_write_path_makes_the_next_version(tenant):
    agent = _create(tenant, persona="Terse.")
    services.agent_config_write(agent=agent, document={"persona": "Chatty."})
    services.agent_config_write(agent=agent, document={"persona": "Chatty."})  # no change: no version
    services.agent_update(agent=agent, data={"config": {"bot_overrides": {"nickname": "Mai"}}})
    services.agent_update(agent=agent, data={"description": "no config change"})
    services.agent_update(agent=agent, data={"config": None})
    services.agent_config_rollback(agent=agent, version=3)
    agent.refresh_from_db()
    assert _numbers(agent) == [5, 4, 3, 2, 1]
    assert agent.config_version == 5
    sources = list(AgentConfigVersion.objects.filter(agent=agent).values_list("source", "restored_from"))
    assert sources == [("rollback", 3), ("update", None), ("update", None), ("update", None), ("create", None)]
    assert AgentConfigVersion.objects.get(agent=agent, number=4).document == {}
    assert agent.config == AgentConfigVersion.objects.get(agent=agent, number=3).document


def test_rollback_to_the_current_document_changes_nothing(tenant):
    agent = _create(tenant, persona="Terse.")
    assert services.agent_config_rollback(agent=agent, version=1).config_version == 1
    assert _numbers(agent) == [1]
    assert not AuditEvent.objects.filter(action="agent.config.rollback").exists()


def test_unknown_version_is_agent_014(tenant):
    agent = _create(tenant)
    for number in (2, 0, 2**40):
        with pytest.raises(ApplicationError) as caught:
            services.agent_config_rollback(agent=agent, version=number)
        assert caught.value.code == ErrorCode.AGENT_014


def test_rolled_back_provider_key_is_the_old_key_and_still_decrypts(tenant):
    agent = _create(tenant, **_providers({"name": "Mine", "api_key": "sk-old-1"}))
    services.agent_config_write(agent=agent, document=_providers({"name": "Mine", "api_key": "sk-new-2"}))
    agent.refresh_from_db()
    assert configdoc.provider_api_key(agent, "Mine") == "sk-new-2"
    services.agent_config_rollback(agent=agent, version=1)
    agent.refresh_from_db()
    assert agent.config_version == 3
    assert configdoc.provider_api_key(agent, "mine") == "sk-old-1"
    stored = json.dumps(list(AgentConfigVersion.objects.values_list("document", "changes")))
    assert "sk-old-1" not in stored and "sk-new-2" not in stored
    assert AgentConfigVersion.objects.get(agent=agent, number=3).changes == {
        "config_overrides.model.api_providers.0.api_key": ["********", "********"]}


def test_rollback_refused_by_agent_011_after_a_catalogue_change_changes_nothing(tenant, settings, tmp_path):
    agent = _create(tenant, **_providers({"name": "Acme", "api_key": "sk-acme"}))
    services.agent_config_write(agent=agent, document={}, mode="replace")
    path = tmp_path / "models.toml"
    path.write_text('[[api_providers]]\nname = "acme"\nbase_url = "https://acme.example/v1"\n')
    settings.MAIMBOT_MODEL_CONFIG_PATH = str(path)
    catalogue.clear_cache()
    events = AuditEvent.objects.count()
    with pytest.raises(ApplicationError) as caught:
        services.agent_config_rollback(agent=agent, version=1)
    assert caught.value.code == ErrorCode.AGENT_011
    assert caught.value.tenant_id == tenant.pk
    agent.refresh_from_db()
    assert (agent.config, agent.config_version, _numbers(agent)) == ({}, 2, [2, 1])
    assert AuditEvent.objects.count() == events


def test_version_numbers_are_unique_per_agent(tenant):
    from django.db import IntegrityError, transaction

    agent = _create(tenant)
    with pytest.raises(IntegrityError), transaction.atomic():
        AgentConfigVersion.objects.create(agent=agent, number=1, actor="system", source="update")


def test_reencrypting_provider_keys_covers_the_versions(tenant, settings):
    from cryptography.fernet import Fernet

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.MAIMCONFIG_SECRETS_KEY = old_key
    agent = _create(tenant, **_providers({"name": "Mine", "api_key": "sk-v1"}))
    services.agent_config_write(agent=agent, document={}, mode="replace")
    settings.MAIMCONFIG_SECRETS_KEY, settings.MAIMCONFIG_SECRETS_KEY_FALLBACKS = new_key, [old_key]
    services.agent_reencrypt_provider_keys(agent_id=agent.pk)
    settings.MAIMCONFIG_SECRETS_KEY_FALLBACKS = []  # the old key is retired
    services.agent_config_rollback(agent=agent, version=1)
    agent.refresh_from_db()
    assert configdoc.provider_api_key(agent, "Mine") == "sk-v1"


# --- API ----------------------------------------------------------------------------------------------------


def _url(agent, tail=""):
    return f"/api/v2/agents/{agent.pk}/config{tail}"


def test_who_changed_this_bot_what_changed_and_put_it_back(operator_client, tenant):
    """The worked example of the closing note, through the API only."""
    agent = AgentFactory(tenant=tenant, config={"persona": {"personality": "A cheerful helper."}})
    AgentConfigVersion.objects.create(agent=agent, number=1, actor="system", source="initial", document=agent.config)
    response = operator_client.patch(_url(agent), {"persona": "A grumpy helper."}, format="json",
                                     HTTP_X_REQUEST_ID="change-42")
    assert response.status_code == 200 and response.json()["data"]["config_version"] == 2

    events = operator_client.get("/api/v2/audit-events", {"target_id": agent.pk}).json()["data"]["items"]
    assert [(e["actor"], e["action"], e["request_id"]) for e in events] == [
        ("operator:operator", "agent.config.update", "change-42")]
    assert events[0]["changes"] == {"config.persona.personality": ["A cheerful helper.", "A grumpy helper."],
                                    "config_version": [1, 2]}

    listed = operator_client.get(_url(agent, "/versions")).json()["data"]
    assert [(v["version"], v["actor"], v["source"], v["changed_paths"]) for v in listed["items"]] == [
        (2, "operator:operator", "update", ["persona.personality"]), (1, "system", "initial", [])]
    assert "document" not in listed["items"][0]
    one = operator_client.get(_url(agent, "/versions/1")).json()["data"]
    assert one["document"] == {"persona": {"personality": "A cheerful helper."}, "warnings": []}
    assert one["is_current"] is False

    back = operator_client.post(_url(agent, "/rollback"), {"version": 1}, format="json")
    assert back.status_code == 200, back.json()
    assert back.json()["data"]["persona"] == {"personality": "A cheerful helper."}
    assert back.json()["data"]["config_version"] == 3 and back["ETag"] == '"3"'
    latest = operator_client.get("/api/v2/audit-events", {"target_id": agent.pk}).json()["data"]["items"][0]
    assert latest["action"] == "agent.config.rollback"
    assert latest["changes"]["restored_from"] == [None, 1]


def test_version_detail_masks_keys_and_offers_the_effective_view(operator_client, tenant):
    agent = _create(tenant, **_providers({"name": "Mine", "api_key": "sk-secret"}))
    body = operator_client.get(_url(agent, "/versions/1")).json()
    assert "sk-secret" not in json.dumps(body) and "gAAAA" not in json.dumps(body)
    assert body["data"]["document"]["config_overrides"]["model"]["api_providers"][0]["api_key"] == "********"
    assert body["data"]["changes"]["config_overrides.model.api_providers.0.api_key"] == [None, "********"]
    effective = operator_client.get(_url(agent, "/versions/1"), {"effective": "true"}).json()["data"]["document"]
    assert effective["config_overrides"]["emoji"]["emoji_chance"] == 0.6
    assert body["tenant_id"] == tenant.pk


def test_version_routes_errors(operator_client, api_client, tenant):
    agent = _create(tenant)
    missing = operator_client.get(_url(agent, "/versions/7")).json()
    assert (missing["error_code"], missing["tenant_id"]) == ("AGENT_014", tenant.pk)
    assert operator_client.post(_url(agent, "/rollback"), {"version": 7}, format="json").status_code == 404
    bad = operator_client.post(_url(agent, "/rollback"), {"version": "1"}, format="json").json()
    assert bad["error_code"] == "VALIDATION_ERROR" and "version" in bad["data"]["errors"]
    assert operator_client.get("/api/v2/agents/agent_000000000000/config/versions").json()["error_code"] == "AGENT_004"
    assert api_client.get(_url(agent, "/versions")).status_code == 401


def test_agent_keys_cannot_read_versions_or_roll_back(api_client, tenant):
    from apikeys.tests.factories import ApiKeyFactory

    key = ApiKeyFactory(agent=_create(tenant), permissions=["config"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    assert api_client.get(_url(key.agent, "/versions")).status_code == 403
    assert api_client.post(_url(key.agent, "/rollback"), {"version": 1}, format="json").status_code == 403


def test_config_etag_and_304_for_operators(operator_client, tenant):
    agent = _create(tenant, persona="Terse.")
    first = operator_client.get(_url(agent))
    assert first["ETag"] == '"1"'
    again = operator_client.get(_url(agent), HTTP_IF_NONE_MATCH='"1"')
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == '"1"'
    assert operator_client.get(_url(agent), HTTP_IF_NONE_MATCH='W/"0", "1"').status_code == 304
    effective = operator_client.get(_url(agent), {"effective": "true"}, HTTP_IF_NONE_MATCH='"1"')
    assert effective.status_code == 200 and effective["ETag"] == '"1-effective"'
    operator_client.patch(_url(agent), {"persona": "Chatty."}, format="json")
    changed = operator_client.get(_url(agent), HTTP_IF_NONE_MATCH='"1"')
    assert changed.status_code == 200 and changed["ETag"] == '"2"'
    assert changed.json()["data"]["persona"] == {"personality": "Chatty."}


def test_config_etag_and_304_for_agent_keys_count_a_use(api_client, operator_client, tenant):
    from apikeys.tests.factories import ApiKeyFactory

    key = ApiKeyFactory(agent=_create(tenant), permissions=["config"])
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    assert api_client.get(_url(key.agent))["ETag"] == '"1"'
    response = api_client.get(_url(key.agent), HTTP_IF_NONE_MATCH='"1"')
    assert response.status_code == 304
    other = ApiKeyFactory(agent=AgentFactory(tenant=tenant), permissions=["config"])
    assert api_client.get(_url(other.agent), HTTP_IF_NONE_MATCH='"1"').status_code == 403
    # The 200 and the 304 count a use each (both passed every key check); the refused 403 does not.
    shown = operator_client.get(f"/api/v2/api-keys/{key.pk}").json()["data"]
    assert shown["usage_count"] == 2


def test_config_version_sent_back_in_a_write_is_ignored(operator_client, tenant):
    agent = _create(tenant, persona="Terse.")
    read = operator_client.get(_url(agent)).json()["data"]
    response = operator_client.put(_url(agent) + "?mode=replace", read, format="json")
    assert response.status_code == 200, response.json()
    agent.refresh_from_db()
    assert "config_version" not in agent.config and agent.config_version == 1


def test_migration_gives_existing_agents_version_1(tenant):
    from django.apps import apps as global_apps
    from importlib import import_module

    migration = import_module("agents.migrations.0004_initial_config_versions")
    agent = AgentFactory(tenant=tenant, config={"persona": {"personality": "Old."}})
    AgentConfigVersion.objects.all().delete()
    migration.forwards(global_apps, None)
    version = AgentConfigVersion.objects.get(agent=agent)
    assert (version.number, version.source, version.document) == (1, "initial", {"persona": {"personality": "Old."}})
    assert Agent.objects.get(pk=agent.pk).config_version == 1


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_config_writes_and_rollbacks_number_versions_without_gaps_or_losses(operator_token):
    from core.testing import run_concurrently, token_client
    from tenants.tests.factories import TenantFactory

    agent = services.agent_create(tenant_id=TenantFactory().pk, name="racer", config={"persona": "v1"})
    count = 6

    def work(i):
        client = token_client(operator_token)
        if i % 3 == 2:
            return client.post(_url(agent, "/rollback"), {"version": 1}, format="json").status_code
        return client.patch(_url(agent), {"bot_overrides": {f"k{i}": i}}, format="json").status_code

    assert run_concurrently(count, work) == [200] * count
    agent.refresh_from_db()
    numbers = sorted(_numbers(agent))
    assert numbers == list(range(1, len(numbers) + 1)) and agent.config_version == numbers[-1]
    # every merge is in some version and one audit event per new version
    merges = {f"k{i}" for i in range(count) if i % 3 != 2}
    seen = set()
    for document in AgentConfigVersion.objects.filter(agent=agent).values_list("document", flat=True):
        seen |= set((document.get("bot_overrides") or {}))
    assert merges <= seen
    assert AuditEvent.objects.filter(target_id=agent.pk).exclude(action="agent.create").count() == len(numbers) - 1


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_a_second_writer_waits_for_the_first_and_takes_the_next_number():
    """Writer A holds its transaction open after writing version 2; writer B, started meanwhile, must wait
    on the agent's row lock and write version 3 (without the lock it would read version 1 from its
    snapshot and collide on (agent, number))."""
    import threading
    import time

    from django.db import connection, transaction

    from tenants.tests.factories import TenantFactory

    agent = services.agent_create(tenant_id=TenantFactory().pk, name="locker", config={"persona": "v1"})
    a_written, results = threading.Event(), {}

    def writer_a():
        try:
            with transaction.atomic():
                services.agent_config_write(agent=agent, document={"persona": "from A"})
                a_written.set()
                time.sleep(0.5)  # B starts its write while A's transaction is still open
        finally:
            connection.close()

    def writer_b():
        try:
            a_written.wait()
            results["b"] = services.agent_config_write(agent=agent, document={"bot_overrides": {"b": 1}}).config_version
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results["b"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=writer_a), threading.Thread(target=writer_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results["b"] == 3
    agent.refresh_from_db()
    assert agent.config_version == 3 and agent.config == {"persona": {"personality": "from A"},
                                                          "bot_overrides": {"b": 1}}
