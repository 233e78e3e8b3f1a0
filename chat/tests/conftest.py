"""Fixtures of the chat tests: the fake OpenAI-compatible upstream, agents wired to it, and agent keys."""

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from agents.tests.factories import AgentFactory
from apikeys.tests.factories import ApiKeyFactory
from chat.tests.fake_llm import FakeLLM

SYSTEM_CATALOGUE_WITHOUT_KEYS = """
[[api_providers]]
name = "OpenAI"
base_url = "https://api.openai.com/v1"
client_type = "openai"

[[models]]
name = "GPT-4o Mini"
model_identifier = "gpt-4o-mini"
api_provider = "OpenAI"

[model_task_config.replyer]
model_list = ["GPT-4o Mini"]
max_tokens = 1024
temperature = 0.3
"""


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path, monkeypatch):
    """Empty rate-limit windows, a system catalogue whose provider has no server key (offline), loopback
    allowed as an upstream host."""
    cache.clear()
    path = tmp_path / "model_config.toml"
    path.write_text(SYSTEM_CATALOGUE_WITHOUT_KEYS)
    settings.MAIMBOT_MODEL_CONFIG_PATH = str(path)
    # The fake upstream listens on loopback, which the egress policy refuses unless allowed.
    settings.MAIMCONFIG_LLM_ALLOWED_HOSTS = ["127.0.0.1"]
    for name in ("MAIMCONFIG_PROVIDER_KEY_OPENAI", "MAIMCONFIG_PROVIDER_KEY_FAKESYSTEM", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    yield
    cache.clear()


@pytest.fixture(scope="session")
def _fake_llm_server():
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(_fake_llm_server) -> FakeLLM:
    _fake_llm_server.reset()
    return _fake_llm_server


def llm_document(base_url: str, *, api_key: str = "sk-agent-secret-123", identifier: str = "fake-1",
                 temperature: float | None = 0.4, max_tokens: int = 321, timeout: int = 10, persona=None,
                 extra: dict | None = None) -> dict:
    """A configuration document whose replyer is a model of an agent provider at `base_url`."""
    model = {"name": "fake-model", "model_identifier": identifier, "api_provider": "FakeProvider",
             "extra_params": extra or {}}
    if temperature is not None:
        model["temperature"] = temperature
    doc = {
        "persona": persona or {"personality": "Cheerful and curious.", "reply_style": "Short sentences.",
                               "interest": "Cameras"},
        "bot_overrides": {"nickname": "Mai", "alias_names": ["Maimai", "Little Mai"]},
        "config_overrides": {
            "chat": {"max_context_size": 2},
            "model": {
                "api_providers": [{"name": "FakeProvider", "base_url": base_url, "api_key": api_key,
                                   "client_type": "openai", "timeout": timeout}],
                "models": [model],
                "model_task_config": {"replyer": {"model_list": ["fake-model"], "max_tokens": max_tokens,
                                                  "temperature": 0.9}},
            },
        },
    }
    return doc


def stored(doc: dict) -> dict:
    """The document as the agents app stores it (provider keys encrypted)."""
    from agents.configdoc import to_storage

    return to_storage(doc)


@pytest.fixture
def offline_agent(db):
    return AgentFactory(name="Helper", config={})


@pytest.fixture
def llm_agent(db, fake_llm):
    return AgentFactory(name="Helper", config=stored(llm_document(fake_llm.base_url)))


def key_for(agent, **kwargs):
    kwargs.setdefault("permissions", ["chat"])
    return ApiKeyFactory(agent=agent, tenant=agent.tenant, **kwargs)


def key_client(raw_key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


class LaneClient:
    """Requests through the service's real ASGI application (the chat lane of `core.lanes`), each in one
    event loop from the request to the last byte of a streamed answer, as a gunicorn worker serves them."""

    def __init__(self, raw_key: str | None = None):
        self.headers = {"Authorization": f"Bearer {raw_key}"} if raw_key else {}

    def post(self, path: str, body, *, headers: dict | None = None, **kwargs):
        from core.testing import asgi_request

        return asgi_request("POST", path, json_body=body, headers={**self.headers, **(headers or {})}, **kwargs)


def lane_client(raw_key: str | None = None) -> LaneClient:
    return LaneClient(raw_key)


@pytest.fixture
def lane_server(transactional_db):
    """The service's real ASGI application on a loopback port (uvicorn in a thread, this process's test
    database): real HTTP for the OpenAI SDK and for concurrency tests."""
    import socket
    import threading
    import time

    import uvicorn

    from core.testing import _shared_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_shared_app(), host="127.0.0.1", port=port, lifespan="off",
                                           log_level="warning", loop="asyncio", http="h11"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the test server did not start"

    class _Live:
        url = f"http://127.0.0.1:{port}"

    yield _Live
    server.should_exit = True
    thread.join(10)


def chat_while_the_upstream_holds(fake_llm, raw_key: str, held: Callable[[], Any]):
    """`POST /api/v2/chat` in a thread while `fake_llm` holds its answer: returns `held()` read once the
    request reached the upstream (its slots taken), then the response once the upstream answered."""
    import threading
    import time

    fake_llm.hold = threading.Event()
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", lane_client(raw_key).post("/api/v2/chat",
                                                                                              {"message": "x"})))
    seen = len(fake_llm.requests)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(fake_llm.requests) <= seen and time.monotonic() < deadline:
            time.sleep(0.02)
        during = held()
    finally:
        fake_llm.hold.set()
        thread.join(30)
    return during, result["r"]
