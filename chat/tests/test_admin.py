"""Admin smoke tests: changelists, search and detail pages render; conversations delete via the service."""

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from chat.models import ChatConversation, ChatMessage
from chat.tests.factories import ChatConversationFactory, store_turn

pytestmark = pytest.mark.django_db


@pytest.fixture
def turn():
    conversation = ChatConversationFactory(conversation_id="admin-conv")
    return store_turn(conversation, "hello", "hi there")


def test_changelists_search_and_detail(admin_client, turn):
    for name in ("chatconversation", "chatmessage"):
        url = reverse(f"admin:chat_{name}_changelist")
        assert admin_client.get(url).status_code == 200
        assert admin_client.get(url, {"q": "admin-conv"}).status_code == 200
    assert admin_client.get(reverse("admin:chat_chatconversation_change", args=[quote(turn.conversation_id)])).status_code == 200
    assert admin_client.get(reverse("admin:chat_chatmessage_change", args=[quote(turn.id)])).status_code == 200
    assert admin_client.get(reverse("admin:chat_chatmessage_add")).status_code == 403


def test_delete_conversation(admin_client, turn):
    url = reverse("admin:chat_chatconversation_delete", args=[quote(turn.conversation_id)])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert ChatConversation.objects.count() == 0 and ChatMessage.objects.count() == 0


def test_message_change_page_of_an_id_the_admin_would_unquote(admin_client, turn):
    # Admin URLs quote ids ("_25" would decode to "%"): msg_25… must be reachable through quote().
    ChatMessage.objects.filter(pk=turn.pk).update(id="msg_25aa3abdb06e88e23ea5d6a7")
    url = reverse("admin:chat_chatmessage_change", args=[quote("msg_25aa3abdb06e88e23ea5d6a7")])
    assert admin_client.get(url).status_code == 200
