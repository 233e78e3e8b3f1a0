"""Factories of the chat tests."""

import factory
from datetime import timedelta

from django.utils import timezone

from agents.tests.factories import AgentFactory
from chat.models import ChatConversation, ChatMessage
from core.ids import new_id


class ChatConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChatConversation

    agent = factory.SubFactory(AgentFactory)
    tenant = factory.LazyAttribute(lambda o: o.agent.tenant)
    conversation_id = factory.Sequence(lambda n: f"conv_test_{n}")


class ChatMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChatMessage

    id = factory.LazyFunction(lambda: new_id("msg_", 24))
    conversation = factory.SubFactory(ChatConversationFactory)
    agent = factory.LazyAttribute(lambda o: o.conversation.agent)
    tenant = factory.LazyAttribute(lambda o: o.conversation.tenant)
    role = ChatMessage.Role.USER
    content = factory.Sequence(lambda n: f"message {n}")
    created_at = factory.LazyFunction(timezone.now)


def store_turn(conversation: ChatConversation, user_text: str, reply_text: str, *, at=None) -> ChatMessage:
    """One stored turn (user message + reply) in `conversation`."""
    at = at or timezone.now()
    user = ChatMessageFactory(conversation=conversation, role=ChatMessage.Role.USER, content=user_text, created_at=at)
    return ChatMessageFactory(conversation=conversation, role=ChatMessage.Role.ASSISTANT, content=reply_text,
                              reply_to=user, model="m", responder="llm", created_at=at + timedelta(microseconds=1))
