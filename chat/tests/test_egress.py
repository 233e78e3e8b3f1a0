"""The egress policy of provider base_urls end to end (agent-config.md; api.md §10.7; issue 10 item 5):
refused when a configuration is written (AGENT_012 at the base_url's path) and again when chat connects
(CHAT_002, nothing sent), the allow-list, a DNS answer changing between write and connect, and the
masked key refused for a changed host."""

import socket

import pytest

from agents.tests.factories import AgentFactory
from chat.tests.conftest import key_client, key_for, llm_document, stored

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = "/api/v2/chat"
PROVIDER = "config_overrides.model.api_providers[0]"


def _put_config(operator_client, agent, doc):
    return operator_client.put(f"/api/v2/agents/{agent.id}/config", doc, format="json")


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8000/v1", "http://10.0.0.8/v1", "http://169.254.169.254/v1",
                                      "http://[::1]:8000/v1", "http://[fd00::1]/v1", "http://localhost:11434/v1",
                                      "https://user:secret@api.example.com/v1"])
def test_write_refuses_non_public_hosts_and_credentials(operator_client, settings, base_url):
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = []
    agent = AgentFactory(config={})
    response = _put_config(operator_client, agent, llm_document(base_url))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error_code"] == "AGENT_012"
    assert list(body["data"]["errors"]) == [f"{PROVIDER}.base_url"], body["data"]["errors"]
    agent.refresh_from_db()
    assert agent.config == {}


def test_write_accepts_allowed_hosts(operator_client, settings):
    agent = AgentFactory(config={})
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = ["127.0.0.1", "10.0.0.0/8", "localhost"]
    for url in ("http://127.0.0.1:8000/v1", "http://10.9.9.9/v1", "http://localhost:11434/v1"):
        assert _put_config(operator_client, agent, llm_document(url)).status_code == 200, url


def _chat(agent):
    return key_client(key_for(agent).raw_key).post(CHAT, {"message": "hi"}, format="json")


def test_connect_refuses_loopback_not_allowed(db, fake_llm, settings):
    """A stored configuration (written while loopback was allowed) is refused at connect time."""
    agent = AgentFactory(config=stored(llm_document(fake_llm.base_url)))
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = []
    response = _chat(agent)
    assert response.status_code == 502
    assert response.json()["error"] == "The language model's host is not allowed by the egress policy."
    assert fake_llm.requests == []
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = ["127.0.0.0/8"]
    assert _chat(agent).status_code == 200 and len(fake_llm.requests) == 1


def test_name_resolving_to_loopback_is_refused_at_connect(db, fake_llm, settings):
    port = fake_llm.base_url.split(":")[2].split("/")[0]
    agent = AgentFactory(config=stored(llm_document(f"http://localhost:{port}/v1")))
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = ["127.0.0.1"]  # the address it resolves to is allowed
    assert _chat(agent).status_code == 200
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = []
    assert _chat(agent).status_code == 502
    assert len(fake_llm.requests) == 1


def test_dns_answer_changing_between_write_and_connect(operator_client, fake_llm, settings, monkeypatch):
    """`rebind.example` passes the write-time check (a public-looking name); at connect time it resolves to
    loopback and is refused. With loopback allowed, the connection goes to the checked address."""
    port = int(fake_llm.base_url.split(":")[2].split("/")[0])
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = []
    agent = AgentFactory(config={})
    assert _put_config(operator_client, agent, llm_document(f"http://rebind.example:{port}/v1")).status_code == 200
    real = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):
        if host == "rebind.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    response = _chat(agent)
    assert response.status_code == 502 and fake_llm.requests == []
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = ["127.0.0.1"]
    assert _chat(agent).status_code == 200
    assert fake_llm.last["headers"]["host"] == f"rebind.example:{port}"  # connected to the checked address


def test_masked_key_is_refused_for_a_changed_host(operator_client, settings):
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = []
    agent = AgentFactory(config={})
    assert _put_config(operator_client, agent, llm_document("https://api.one.example/v1")).status_code == 200
    moved = llm_document("https://api.two.example/v1", api_key="********")
    response = _put_config(operator_client, agent, moved)
    assert response.status_code == 400 and response.json()["error_code"] == "AGENT_012"
    assert list(response.json()["data"]["errors"]) == [f"{PROVIDER}.api_key"]
    # The same host keeps the stored key; a new host with the key sent again is accepted.
    same = llm_document("https://api.one.example/v2", api_key="********")
    assert _put_config(operator_client, agent, same).status_code == 200
    assert _put_config(operator_client, agent, llm_document("https://api.two.example/v1",
                                                            api_key="sk-new")).status_code == 200
