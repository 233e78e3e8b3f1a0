"""SQL statements per chat request (issue 10: CPU per chat): the chat lane reads the agent and the
conversation's history in one burst before the model and stores the turn in one burst after it, with a
bounded number of statements whatever the database and cache (key verification and the use counter add
theirs: none with Redis)."""

import re
import threading

import pytest
from django.db.backends import utils as db_utils

from chat.models import ChatConversation, ChatMessage
from chat.tests.conftest import key_for, lane_client

pytestmark = pytest.mark.django_db(transaction=True)

CHAT = "/api/v2/chat"
COMPLETIONS = "/v1/chat/completions"


@pytest.fixture
def statements(monkeypatch):
    """Every SQL statement run in this process (all threads: the chat lane's bursts run in its executor)."""
    seen: list[str] = []
    lock = threading.Lock()
    original = db_utils.CursorWrapper._execute

    def counting(self, sql, params, *ignored):
        with lock:
            seen.append(sql)
        return original(self, sql, params, *ignored)

    monkeypatch.setattr(db_utils.CursorWrapper, "_execute", counting)
    return seen


_TABLE = re.compile(r"^\s*(?:SELECT\b.*?\bFROM|INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+[`\"]?(\w+)", re.S | re.I)


def _table(sql: str) -> str:
    match = _TABLE.match(sql)
    return match.group(1) if match else ""


def _on(statements, table: str, verb: str) -> int:
    """Statements `verb` (SELECT, INSERT, UPDATE) whose main table is `table`."""
    return sum(1 for sql in statements if sql.lstrip().upper().startswith(verb) and _table(sql) == table)


def _chat_statements(statements) -> list[str]:
    """The chat lane's own statements (the agent, conversations, messages, usage counters); key
    verification and the key's use counter are the bot lane's (none with Redis)."""
    return [sql for sql in statements
            if _table(sql) in ("agents_agent", "chat_chatconversation", "chat_chatmessage", "metering_usagecounter")]


def test_statements_of_a_chat_in_a_new_conversation(llm_agent, fake_llm, statements):
    key = key_for(llm_agent)
    client = lane_client(key.raw_key)
    assert client.post(CHAT, {"message": "warm"}).status_code == 200
    statements.clear()
    response = client.post(CHAT, {"message": "hello"})
    assert response.status_code == 200
    assert _on(statements, "agents_agent", "SELECT") == 1
    assert _on(statements, "chat_chatmessage", "SELECT") == 0  # a new conversation has no history to read
    assert _on(statements, "chat_chatconversation", "SELECT") == 0
    assert _on(statements, "chat_chatconversation", "INSERT") == 1
    assert _on(statements, "chat_chatmessage", "INSERT") == 1  # both messages in one statement
    assert len(_chat_statements(statements)) <= 4, _chat_statements(statements)


def test_statements_of_a_chat_in_an_existing_conversation(llm_agent, fake_llm, statements):
    key = key_for(llm_agent)
    client = lane_client(key.raw_key)
    first = client.post(CHAT, {"message": "one", "conversation_id": "conv_queries"})
    assert first.status_code == 200
    statements.clear()
    assert client.post(CHAT, {"message": "two", "conversation_id": "conv_queries"}).status_code == 200
    assert _on(statements, "agents_agent", "SELECT") == 1
    assert _on(statements, "chat_chatmessage", "SELECT") == 1  # the history, one query
    assert _on(statements, "chat_chatmessage", "INSERT") == 1
    assert len(_chat_statements(statements)) <= 6, _chat_statements(statements)
    assert ChatConversation.objects.filter(conversation_id="conv_queries").count() == 1
    assert ChatMessage.objects.filter(conversation__conversation_id="conv_queries").count() == 4
    assert len(fake_llm.requests[-1]["body"]["messages"]) == 4  # system, the first turn, the new message


def test_statements_of_an_openai_completion(llm_agent, fake_llm, statements):
    key = key_for(llm_agent)
    client = lane_client(key.raw_key)
    body = {"messages": [{"role": "user", "content": "hi"}]}
    assert client.post(COMPLETIONS, body).status_code == 200
    statements.clear()
    assert client.post(COMPLETIONS, body).status_code == 200
    assert _on(statements, "agents_agent", "SELECT") == 1
    assert _on(statements, "chat_chatmessage", "INSERT") == 0  # stateless
    assert _on(statements, "chat_chatconversation", "INSERT") == 0
    assert len(_chat_statements(statements)) <= 2, _chat_statements(statements)


# --- The per-process cache of what chat derives from the configuration (chat.agentcache) -------------

def _identifier_asked(fake_llm) -> str:
    return fake_llm.requests[-1]["body"]["model"]


def test_a_changed_configuration_is_used_at_once(llm_agent, fake_llm):
    from agents.models import Agent
    from chat.tests.conftest import llm_document, stored

    client = lane_client(key_for(llm_agent).raw_key)
    assert client.post(CHAT, {"message": "one"}).status_code == 200
    assert _identifier_asked(fake_llm) == "fake-1"
    # A write of the document alone (no new version number): the stored text differs, so does the key.
    # (Through the model layer, as every writer does: with Redis the chat express keeps the agent under
    # its generation, which the model's signals bump: chat.signals.)
    agent = Agent.objects.get(pk=llm_agent.pk)
    agent.config = stored(llm_document(fake_llm.base_url, identifier="fake-2"))
    agent.save(update_fields=["config"])
    assert client.post(CHAT, {"message": "two"}).status_code == 200
    assert _identifier_asked(fake_llm) == "fake-2"
    # Back to the first document: the first entry answers again, unchanged.
    agent.config = stored(llm_document(fake_llm.base_url))
    agent.save(update_fields=["config"])
    assert client.post(COMPLETIONS, {"messages": [{"role": "user", "content": "hi"}]}).status_code == 200
    assert _identifier_asked(fake_llm) == "fake-1"


def test_a_changed_server_side_is_used_at_once(db, fake_llm, settings, tmp_path, monkeypatch):
    """An agent on the server's catalogue: a provider key set in the environment, or a new catalogue file,
    changes the model choice on the next request."""
    from agents.tests.factories import AgentFactory

    agent = AgentFactory(name="Helper", config={})
    client = lane_client(key_for(agent).raw_key)
    assert client.post(CHAT, {"message": "one"}).json()["data"]["responder"] == "offline"  # no server key
    path = tmp_path / "catalogue.toml"
    path.write_text(f"""
[[api_providers]]
name = "FakeSystem"
base_url = "{fake_llm.base_url}"
client_type = "openai"

[[models]]
name = "Fake System"
model_identifier = "fake-system-1"
api_provider = "FakeSystem"

[model_task_config.replyer]
model_list = ["Fake System"]
""")
    settings.MAIMBOT_MODEL_CONFIG_PATH = str(path)
    assert client.post(CHAT, {"message": "two"}).json()["data"]["responder"] == "offline"  # still no key
    monkeypatch.setenv("MAIMCONFIG_PROVIDER_KEY_FAKESYSTEM", "sk-system")
    data = client.post(CHAT, {"message": "three"}).json()["data"]
    assert data["responder"] == "llm" and data["model"] == "fake-system-1"
    assert fake_llm.requests[-1]["headers"]["authorization"] == "Bearer sk-system"
    monkeypatch.setenv("MAIMCONFIG_PROVIDER_KEY_FAKESYSTEM", "sk-rotated")
    assert client.post(CHAT, {"message": "four"}).status_code == 200
    assert fake_llm.requests[-1]["headers"]["authorization"] == "Bearer sk-rotated"


# --- The chat lane's admission gate (chat.aio.run_admitted) ----------------------------------------------

def test_the_admission_gate_bounds_first_bursts_per_worker(settings, monkeypatch):
    """At most MAIMCONFIG_CHAT_ADMISSION chat requests per worker (event loop) run their first burst at once;
    the others wait their turn and all are answered."""
    import asyncio

    from chat import aio

    settings.MAIMCONFIG_CHAT_ADMISSION = 2
    running = peak = 0

    async def fake_run_db(fn, *args, **kwargs):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return fn(*args, **kwargs)

    monkeypatch.setattr(aio, "run_db", fake_run_db)

    async def storm():
        return await asyncio.gather(*(aio.run_admitted(lambda i=i: i) for i in range(7)))

    assert asyncio.run(storm()) == list(range(7))
    assert peak == 2

