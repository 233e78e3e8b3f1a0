"""The chat input serializers build their fields from a per-class prototype (`PrototypeFieldsMixin`):
same validated data and the same errors as DRF's own field building, for valid and invalid bodies, and
no binding shared between two instances."""

import pytest
from rest_framework import serializers

from chat.serializers import (
    ChatSendInputSerializer,
    OpenAIChatCompletionInputSerializer,
    OpenAIMessageInputSerializer,
)


def _plain(cls):
    """`cls` with DRF's field building (a deep copy of the declared fields per instance), nested included."""

    class Plain(cls):
        def get_fields(self):
            fields = serializers.Serializer.get_fields(self)
            messages = fields.get("messages")
            if messages is not None:  # the nested message serializer: DRF's building too
                messages.child.get_fields = lambda: serializers.Serializer.get_fields(messages.child)
            return fields

    return Plain


SEND_BODIES = [
    {"message": "hello"},
    {"message": "hello", "conversation_id": "conv_1", "user_id": "u1", "stream": True, "api_key": None},
    {"message": "   "},
    {"message": ""},
    {"message": 5},
    {"message": "x" * 16001},
    {"message": "hi", "conversation_id": "bad id!"},
    {"message": "hi", "user_id": ""},
    {"message": "hi", "stream": "yes"},
    {},
]

OPENAI_BODIES = [
    {"messages": [{"role": "user", "content": "hi"}]},
    {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [
        {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}], "stream": True,
     "stream_options": {"include_usage": True}, "max_tokens": 10, "temperature": 0.5, "stop": ["x"]},
    {"messages": []},
    {"messages": [{"role": "robot", "content": "hi"}]},
    {"messages": [{"role": "user", "content": None}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
    {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0, "temperature": 3, "n": 2,
     "tools": [{"type": "function"}], "stream_options": {"include_usage": "yes"}},
    {"messages": "not a list"},
]


@pytest.mark.parametrize("cls, body", [(ChatSendInputSerializer, b) for b in SEND_BODIES]
                         + [(OpenAIChatCompletionInputSerializer, b) for b in OPENAI_BODIES])
def test_same_validation_as_drf_field_building(cls, body):
    fast, plain = cls(data=body), _plain(cls)(data=body)
    assert fast.is_valid() == plain.is_valid()
    assert fast.errors == plain.errors
    if not fast.errors:
        assert fast.validated_data == plain.validated_data


def test_instances_do_not_share_bound_fields():
    first, second = ChatSendInputSerializer(data={}), ChatSendInputSerializer(data={})
    assert first.fields["message"] is not second.fields["message"]
    assert first.fields["message"].parent is first and second.fields["message"].parent is second
    prototype = ChatSendInputSerializer._prototype_fields["message"]
    assert getattr(prototype, "parent", None) is None  # the prototype itself is never bound
    nested_a = OpenAIMessageInputSerializer(data={}).fields["role"]
    nested_b = OpenAIMessageInputSerializer(data={}).fields["role"]
    assert nested_a is not nested_b and nested_a.choices == nested_b.choices
