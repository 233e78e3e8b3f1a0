"""POST /api/v2/chat/batch (spec §10.4): order, partial failure, per-item counting, concurrency."""

import pytest

from agents.tests.factories import AgentFactory
from chat.models import ChatMessage
from chat.tests.conftest import key_client, key_for, llm_document, stored
from apikeys.usage import shown  # stored + pending in Redis (spec §1.15)

pytestmark = pytest.mark.django_db(transaction=True)

BATCH = "/api/v2/chat/batch"


def test_results_in_input_order_with_invalid_items(offline_agent):
    key = key_for(offline_agent)
    requests = [{"message": "one"}, {"message": ""}, "not an object", {"message": "four", "conversation_id": "b"},
                {"message": "five", "conversation_id": "bad id"}, {"message": "six", "conversation_id": "b"}]
    response = key_client(key.raw_key).post(BATCH, {"requests": requests}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert (data["total"], data["succeeded"], data["failed"]) == (6, 3, 3)
    items = data["items"]
    assert [item["index"] for item in items] == list(range(6))
    assert [item["success"] for item in items] == [True, False, False, True, False, True]
    assert items[0]["data"]["response"] == "[offline] Helper received: one"
    assert items[0]["error"] is None and items[0]["errors"] is None and items[0]["error_code"] is None
    assert items[1] == {"index": 1, "success": False, "data": None, "error_code": "VALIDATION_ERROR",
                        "error": "requests[1].message: This field may not be blank.",
                        "errors": {"requests[1].message": ["This field may not be blank."]}}
    assert items[2]["errors"] == {"requests[2]": ["Must be a JSON object."]}
    assert list(items[4]["errors"]) == ["requests[4].conversation_id"]
    # Items sharing a conversation run in list order: the second sees the first as history.
    b_messages = ChatMessage.objects.filter(conversation__conversation_id="b").order_by("created_at")
    assert [m.content for m in b_messages if m.role == "user"] == ["four", "six"]
    assert shown(key.pk)[0] == 3  # valid items only


def test_shared_conversation_items_see_previous_turns(llm_agent, fake_llm):
    key = key_for(llm_agent)
    response = key_client(key.raw_key).post(BATCH, {"requests": [
        {"message": "first", "conversation_id": "seq"}, {"message": "second", "conversation_id": "seq"}]},
        format="json")
    assert response.json()["data"]["succeeded"] == 2
    second = next(r for r in fake_llm.requests if r["body"]["messages"][-1]["content"] == "second")
    assert [m["content"] for m in second["body"]["messages"][1:]] == [
        "first", "Hello from the fake model.", "second"]


def test_upstream_failure_fails_items_not_the_batch(llm_agent, fake_llm):
    fake_llm.status = 503
    response = key_client(key_for(llm_agent).raw_key).post(
        BATCH, {"requests": [{"message": "a"}, {"message": "b"}]}, format="json")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["failed"] == 2 and {i["error_code"] for i in data["items"]} == {"CHAT_002"}
    assert ChatMessage.objects.count() == 0


def test_many_items_run_concurrently_and_all_succeed(db, fake_llm, settings):
    """Proves concurrency (issue 16 item 1): the upstream answers only once 4 requests are open at the same
    time (else a 503 after 20 s), so a batch running fewer than 4 items at once fails its items."""
    settings.MAIMCONFIG_CHAT_BATCH_CONCURRENCY = 4
    fake_llm.answer_when_open = 4
    agent = AgentFactory(config=stored(llm_document(fake_llm.base_url)))
    response = key_client(key_for(agent).raw_key).post(
        BATCH, {"requests": [{"message": f"m{i}"} for i in range(8)]}, format="json")
    data = response.json()["data"]
    assert data["succeeded"] == 8
    assert [item["data"]["response"] for item in data["items"]] == ["Hello from the fake model."] * 8
    assert len({item["data"]["conversation_id"] for item in data["items"]}) == 8
    assert ChatMessage.objects.count() == 16
    assert fake_llm.max_open == 4  # at most the configured concurrency


@pytest.mark.parametrize("body,path", [
    ({}, "requests"), ({"requests": []}, "requests"), ({"requests": "x"}, "requests"),
    ({"requests": [{"message": "a"}] * 21}, "requests"), ({"requests": [{"message": "a"}], "stream": True}, "stream"),
])
def test_whole_batch_validation_counts_nothing(offline_agent, body, path):
    key = key_for(offline_agent)
    response = key_client(key.raw_key).post(BATCH, body, format="json")
    assert response.status_code == 400 and path in response.json()["data"]["errors"]
    assert shown(key.pk)[0] == 0 and ChatMessage.objects.count() == 0


def test_rate_limit_refuses_the_whole_batch(offline_agent):
    key = key_for(offline_agent, rate_limit_per_minute=3)
    client = key_client(key.raw_key)
    response = client.post(BATCH, {"requests": [{"message": "a"}] * 4}, format="json")
    assert response.status_code == 429 and response.json()["error_code"] == "AUTH_008"
    assert ChatMessage.objects.count() == 0
    assert shown(key.pk)[0] == 0
    response = client.post(BATCH, {"requests": [{"message": "a"}, {"message": ""}, {"message": "b"}]}, format="json")
    assert response.status_code == 200 and response.json()["data"]["succeeded"] == 2
    assert shown(key.pk)[0] == 2


def test_batch_needs_a_chat_key(offline_agent, operator_client):
    assert operator_client.post(BATCH, {"requests": [{"message": "a"}]}, format="json").status_code == 401
    key = key_for(offline_agent, permissions=[])
    response = key_client(key.raw_key).post(BATCH, {"requests": [{"message": "a"}]}, format="json")
    assert response.status_code == 403 and response.json()["error_code"] == "AUTH_003"


def test_body_api_key(offline_agent):
    from rest_framework.test import APIClient

    key = key_for(offline_agent)
    response = APIClient().post(BATCH, {"api_key": key.raw_key, "requests": [{"message": "a"}]}, format="json")
    assert response.status_code == 200 and response.json()["data"]["succeeded"] == 1
