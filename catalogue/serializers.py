"""Output serializers of the system routes (api.md §12)."""

from rest_framework import serializers


class SystemProviderOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    client_type = serializers.CharField()
    base_url = serializers.CharField(allow_blank=True)
    is_server_provider = serializers.BooleanField()
    has_api_key = serializers.BooleanField()


class SystemModelOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    model_identifier = serializers.CharField(allow_blank=True)
    api_provider = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    price_in = serializers.FloatField()
    price_out = serializers.FloatField()


class SystemModelsOutputSerializer(serializers.Serializer):
    providers = SystemProviderOutputSerializer(many=True)
    models = SystemModelOutputSerializer(many=True)
    defaults = serializers.DictField(help_text="The file's model_task_config table as written ({} if absent).")
    source = serializers.ChoiceField(choices=["dynamic_toml", "static_fallback"])


class BotDefaultsOutputSerializer(serializers.Serializer):
    """One key per top-level table of the file; these 23 are always present. Secret-named values masked."""

    bot = serializers.DictField()
    personality = serializers.DictField()
    chat = serializers.DictField()
    memory = serializers.DictField()
    dream = serializers.DictField()
    jargon = serializers.DictField()
    tool = serializers.DictField()
    mood = serializers.DictField()
    emoji = serializers.DictField()
    voice = serializers.DictField()
    message_receive = serializers.DictField()
    lpmm_knowledge = serializers.DictField()
    chinese_typo = serializers.DictField()
    expression = serializers.DictField()
    plugin = serializers.DictField()
    keyword_reaction = serializers.DictField()
    relationship = serializers.DictField()
    response_post_process = serializers.DictField()
    response_splitter = serializers.DictField()
    debug = serializers.DictField()
    experimental = serializers.DictField()
    maim_message = serializers.DictField()
    telemetry = serializers.DictField()
