"""Input and output serializers of the chat routes (spec §10, §11)."""

import copy
import re
import threading

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core.fields import (
    ObjectIdFilterField,
    QueryBooleanField,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
)

MESSAGE_MAX_CHARS = 16000
CONVERSATION_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class ChatMessageTextField(StrictCharField):
    """The chat message: 1–16 000 characters, at least one non-whitespace; kept exactly as sent."""

    default_error_messages = {"blank": "This field may not be blank."}

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("max_length", MESSAGE_MAX_CHARS)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value.strip():
            self.fail("blank")
        return value


class ConversationIdField(StrictCharField):
    default_error_messages = {"format": "Must be 1–128 characters of letters, digits, '.', '_', ':' or '-'."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 128)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not CONVERSATION_ID_RE.match(value):
            self.fail("format")
        return value


class PrototypeFieldsMixin:
    """A serializer whose fields are copied from a per-class prototype instead of rebuilt for every instance.

    DRF builds a serializer's fields by `copy.deepcopy` of the declared ones, and a field's deep copy calls
    its `__init__` again with deep copies of its arguments: for the chat input serializers that was about a
    quarter of a chat request's first database burst (issue 10, CPU per chat). Here the declared fields are
    deep-copied once per class (the prototype, never bound) and each instance gets shallow copies of them:
    binding (`field_name`, `parent`, `source`…) sets attributes on the copy only, and what the copies share
    (validators, error messages, choices) is only read. A field that is itself a serializer (nested, or
    `many=True` with its child) is still deep-copied, since it holds bound fields of its own.
    """

    _prototype_lock = threading.Lock()

    def get_fields(self):
        cls = type(self)
        prototype = cls.__dict__.get("_prototype_fields")
        if prototype is None:
            with PrototypeFieldsMixin._prototype_lock:
                prototype = cls.__dict__.get("_prototype_fields")
                if prototype is None:
                    prototype = copy.deepcopy(self._declared_fields)
                    for field in prototype.values():
                        if not isinstance(field, serializers.BaseSerializer):
                            field.validators  # computed once here, shared (read-only) by every copy
                    cls._prototype_fields = prototype
        return {name: copy.deepcopy(field) if isinstance(field, serializers.BaseSerializer) else _shallow_copy(field)
                for name, field in prototype.items()}


def _shallow_copy(field):
    """`copy.copy(field)` without the `__reduce_ex__` round trip (a field is a plain instance with a `__dict__`)."""
    clone = object.__new__(type(field))
    clone.__dict__.update(field.__dict__)
    return clone


class ChatSendInputSerializer(PrototypeFieldsMixin, serializers.Serializer):
    api_key = serializers.CharField(required=False, allow_null=True, write_only=True,
                                    help_text="The agent key, unless sent as `Authorization: Bearer`.")
    message = ChatMessageTextField(help_text="1–16 000 characters; stored exactly as sent.")
    conversation_id = ConversationIdField(required=False, allow_null=True,
                                          help_text="Absent: a new conversation `conv_…` is started.")
    user_id = StrictCharField(required=False, allow_null=True, min_length=1, max_length=128)
    stream = StrictBooleanField(required=False, default=False)


class ChatBatchItemInputSerializer(serializers.Serializer):
    message = ChatMessageTextField()
    conversation_id = ConversationIdField(required=False, allow_null=True)
    user_id = StrictCharField(required=False, allow_null=True, min_length=1, max_length=128)


class ChatBatchInputSerializer(serializers.Serializer):
    """The batch as a whole (§10.4 step 2); each item is validated on its own afterwards."""

    api_key = serializers.CharField(required=False, allow_null=True, write_only=True)
    requests = serializers.ListField(child=serializers.JSONField(), allow_empty=False)
    stream = StrictBooleanField(required=False, default=False)

    def validate_requests(self, value):
        limit = settings.MAIMCONFIG_CHAT_BATCH_MAX_ITEMS
        if len(value) > limit:
            raise serializers.ValidationError(f"Ensure this list has at most {limit} items.")
        return value

    def validate_stream(self, value):
        if value:
            raise serializers.ValidationError("Streaming is not supported for batches.")
        return value


class ChatUsageOutputSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    estimated = serializers.BooleanField()


class ChatReplyOutputSerializer(serializers.Serializer):
    response = serializers.CharField()
    conversation_id = serializers.CharField()
    message_id = serializers.CharField()
    user_message_id = serializers.CharField()
    tenant_id = serializers.CharField()
    agent_id = serializers.CharField()
    user_id = serializers.CharField(allow_null=True)
    model = serializers.CharField()
    responder = serializers.ChoiceField(choices=["llm", "offline"])
    finish_reason = serializers.ChoiceField(choices=["stop", "length"])
    usage = ChatUsageOutputSerializer()
    latency_ms = serializers.IntegerField()
    created_at = serializers.DateTimeField()


class ChatBatchItemOutputSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    success = serializers.BooleanField()
    data = ChatReplyOutputSerializer(allow_null=True)
    error_code = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), allow_null=True)


class ChatBatchOutputSerializer(serializers.Serializer):
    items = ChatBatchItemOutputSerializer(many=True)
    total = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()


class ChatAgentFilterSerializer(serializers.Serializer):
    tenant_id = ObjectIdFilterField()
    online = QueryBooleanField(required=False)


class ChatAgentOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    agent_id = serializers.CharField(source="id")
    tenant_id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    nickname = serializers.SerializerMethodField()
    tags = serializers.ListField(child=serializers.CharField())
    online = serializers.SerializerMethodField()
    last_seen_at = serializers.SerializerMethodField()
    responder = serializers.SerializerMethodField()

    def _activity(self, agent):
        try:
            return agent.activity
        except Exception:  # noqa: BLE001 - RelatedObjectDoesNotExist: no activity row
            return None

    def get_nickname(self, agent) -> str | None:
        overrides = (agent.config or {}).get("bot_overrides") if isinstance(agent.config, dict) else None
        nickname = overrides.get("nickname") if isinstance(overrides, dict) else None
        return nickname if isinstance(nickname, str) and nickname else None

    def get_online(self, agent) -> bool:
        activity = self._activity(agent)
        return bool(activity and activity.online)

    def get_last_seen_at(self, agent) -> str | None:
        activity = self._activity(agent)
        return activity.last_seen_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if activity else None

    def get_responder(self, agent) -> str:
        from chat.prompt import effective_document
        from chat.routing import choose_models

        return choose_models(agent, effective_document(agent)).responder


class ChatHistoryFilterSerializer(serializers.Serializer):
    agent_id = ObjectIdFilterField()


class ChatMessageOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    conversation_id = serializers.CharField(source="conversation.conversation_id")
    role = serializers.CharField()
    content = serializers.CharField()
    user_id = serializers.CharField(allow_null=True)
    model = serializers.CharField(allow_null=True)
    responder = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


# --- OpenAI-compatible route (§11) -------------------------------------------------------------------

OPENAI_ROLES = ("system", "developer", "user", "assistant", "tool")


class OpenAIMessageInputSerializer(PrototypeFieldsMixin, serializers.Serializer):
    role = serializers.ChoiceField(choices=OPENAI_ROLES)
    content = serializers.JSONField(allow_null=True, required=False)
    name = StrictCharField(required=False, max_length=200)

    def validate(self, attrs):
        content = attrs.get("content")
        if content is None:
            if attrs["role"] != "assistant":
                raise serializers.ValidationError({"content": ["This field may not be null."]})
            attrs["content"] = None
        elif isinstance(content, list):
            texts = []
            for index, part in enumerate(content):
                if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                    raise serializers.ValidationError(
                        {"content": {index: ["Only text content parts are supported."]}})
                texts.append(part["text"])
            attrs["content"] = "\n".join(texts)
        elif not isinstance(content, str):
            raise serializers.ValidationError({"content": ["Must be a string or an array of text parts."]})
        return attrs


class StreamOptionsInputSerializer(PrototypeFieldsMixin, serializers.Serializer):
    include_usage = StrictBooleanField(required=False, default=False)


class OpenAIChatCompletionInputSerializer(PrototypeFieldsMixin, serializers.Serializer):
    model = StrictCharField(required=False, allow_blank=True, max_length=200)
    messages = OpenAIMessageInputSerializer(many=True, allow_empty=False, max_length=200)
    temperature = StrictFloatField(required=False, min_value=0, max_value=2, allow_null=True)
    top_p = StrictFloatField(required=False, min_value=0, max_value=1, allow_null=True)
    max_tokens = StrictIntegerField(required=False, min_value=1, allow_null=True,
                                    help_text=_("1 to MAIMCONFIG_CHAT_MAX_TOKENS (default 16384)."))
    max_completion_tokens = StrictIntegerField(required=False, min_value=1, allow_null=True,
                                               help_text=_("1 to MAIMCONFIG_CHAT_MAX_TOKENS (default 16384); wins "
                                                           "over max_tokens."))
    stop = serializers.JSONField(required=False, allow_null=True)
    presence_penalty = StrictFloatField(required=False, min_value=-2, max_value=2, allow_null=True)
    frequency_penalty = StrictFloatField(required=False, min_value=-2, max_value=2, allow_null=True)
    user = StrictCharField(required=False, max_length=256)
    n = StrictIntegerField(required=False, allow_null=True)
    stream = StrictBooleanField(required=False, default=False, allow_null=True)
    stream_options = StreamOptionsInputSerializer(required=False, allow_null=True)
    tools = serializers.JSONField(required=False, allow_null=True)
    functions = serializers.JSONField(required=False, allow_null=True)
    tool_choice = serializers.JSONField(required=False, allow_null=True)
    function_call = serializers.JSONField(required=False, allow_null=True)
    logprobs = serializers.JSONField(required=False, allow_null=True)
    response_format = serializers.JSONField(required=False, allow_null=True)

    def _within_cap(self, value):
        cap = settings.MAIMCONFIG_CHAT_MAX_TOKENS  # read per request: the setting may change in tests
        if value is not None and value > cap:
            raise serializers.ValidationError(_("Ensure this value is less than or equal to %(cap)s.") % {"cap": cap})
        return value

    def validate_max_tokens(self, value):
        return self._within_cap(value)

    def validate_max_completion_tokens(self, value):
        return self._within_cap(value)

    def validate_stop(self, value):
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list) and len(value) <= 4 and all(isinstance(s, str) for s in value):
            return value
        raise serializers.ValidationError("Must be a string or an array of at most 4 strings.")

    def validate_n(self, value):
        if value not in (None, 1):
            raise serializers.ValidationError("Only n = 1 is supported.")
        return value

    def validate_tools(self, value):
        if value:
            raise serializers.ValidationError("Tools are not supported.")
        return value

    def validate_functions(self, value):
        if value:
            raise serializers.ValidationError("Functions are not supported.")
        return value

    def validate_tool_choice(self, value):
        if value not in (None, "none"):
            raise serializers.ValidationError("Only \"none\" is supported.")
        return value

    def validate_function_call(self, value):
        if value not in (None, "none"):
            raise serializers.ValidationError("Only \"none\" is supported.")
        return value

    def validate_logprobs(self, value):
        if value is True:
            raise serializers.ValidationError("Log probabilities are not supported.")
        if value not in (None, False):
            raise serializers.ValidationError("Must be a boolean.")
        return value

    def validate_response_format(self, value):
        if value is None or value == {"type": "text"}:
            return value
        raise serializers.ValidationError("Only {\"type\": \"text\"} is supported.")


class OpenAIUsageOutputSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class OpenAIAssistantMessageOutputSerializer(serializers.Serializer):
    role = serializers.CharField()
    content = serializers.CharField()


class OpenAIChoiceOutputSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    message = OpenAIAssistantMessageOutputSerializer()
    finish_reason = serializers.CharField()


class OpenAIChatCompletionOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    created = serializers.IntegerField()
    model = serializers.CharField()
    choices = OpenAIChoiceOutputSerializer(many=True)
    usage = OpenAIUsageOutputSerializer()
    system_fingerprint = serializers.CharField(allow_null=True)


class OpenAIModelOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    created = serializers.IntegerField()
    owned_by = serializers.CharField()


class OpenAIModelListOutputSerializer(serializers.Serializer):
    object = serializers.CharField()
    data = OpenAIModelOutputSerializer(many=True)


class OpenAIErrorDetailOutputSerializer(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField()
    param = serializers.CharField(allow_null=True)
    code = serializers.CharField()


class OpenAIErrorOutputSerializer(serializers.Serializer):
    error = OpenAIErrorDetailOutputSerializer()
