"""Input and output serializers of the plugin-settings routes (module level, unique names)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core.fields import JSONObjectField, ObjectIdFilterField, QueryBooleanField, StrictBooleanField, StrictCharField
from plugins.models import PLUGIN_NAME_MESSAGE, plugin_name_validator

PLUGIN_CONFIG_MAX_BYTES = 64 * 1024


class PluginNameField(StrictCharField):
    """Trimmed, then 1–100 characters with no control characters and no `/` (spec §8): `天气插件` and
    `weather plugin` are valid, as the original accepted them. Compared exactly (case-sensitive)."""

    default_error_messages = {"pattern": PLUGIN_NAME_MESSAGE}

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", _(
            "1–100 characters after trimming surrounding spaces, without '/' or control characters; any "
            "letters, digits, spaces and punctuation otherwise (e.g. \"weather_plugin\", \"天气插件\", "
            "\"weather plugin\"). Case-sensitive."))
        super().__init__(**kwargs)
        self.validators.append(plugin_name_validator)

    def run_validators(self, value):
        try:
            super().run_validators(value)
        except serializers.ValidationError:
            self.fail("pattern")


def _config_field(**kwargs):
    return JSONObjectField(max_bytes=PLUGIN_CONFIG_MAX_BYTES,
                           help_text="JSON object, at most 64 KiB serialized; replaced wholesale.", **kwargs)


# --- v1 (compatibility, bare JSON) ----------------------------------------------------------------

class PluginSettingV1QuerySerializer(serializers.Serializer):
    tenant_id = ObjectIdFilterField(required=True)
    agent_id = ObjectIdFilterField()


class PluginSettingV1ListQuerySerializer(serializers.Serializer):
    tenant_id = ObjectIdFilterField(
                                help_text="Required for operators; an agent key defaults it to its own tenant.")
    agent_id = ObjectIdFilterField(
                               help_text="Absent: tenant defaults only. Present: the agent's merged view.")


class PluginSettingV1InputSerializer(serializers.Serializer):
    plugin_name = PluginNameField()
    enabled = StrictBooleanField()
    config = _config_field()


class PluginSettingV1OutputSerializer(serializers.Serializer):
    plugin_name = serializers.CharField()
    enabled = serializers.BooleanField()
    config = serializers.JSONField()


class PluginV1ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    error_code = serializers.CharField()
    request_id = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


# --- v2 (enveloped resource) ------------------------------------------------------------------------

class PluginSettingFilterSerializer(serializers.Serializer):
    tenant_id = ObjectIdFilterField(
                                help_text="Required for operators; an agent key defaults it to its own tenant.")
    agent_id = ObjectIdFilterField(
                               help_text="Absent: tenant defaults only (an agent key: its own agent).")
    merged = QueryBooleanField(required=False, default=True,
                               help_text="With agent_id: true = merged view, false = only the agent's overrides.")
    plugin_name = StrictCharField(required=False, max_length=200, trim_whitespace=False)


class PluginSettingUpsertInputSerializer(serializers.Serializer):
    tenant_id = StrictCharField(max_length=200)
    agent_id = StrictCharField(required=False, allow_null=True, max_length=200)
    plugin_name = PluginNameField()
    enabled = StrictBooleanField(required=False)
    config = _config_field(required=False)


class PluginSettingUpdateInputSerializer(serializers.Serializer):
    enabled = StrictBooleanField(required=False)
    config = _config_field(required=False)


class PluginSettingOutputSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="ps_ + 12 hex")
    tenant_id = serializers.CharField()
    agent_id = serializers.CharField(allow_null=True, help_text="null = tenant default")
    plugin_name = serializers.CharField()
    enabled = serializers.BooleanField()
    config = serializers.JSONField()
    scope = serializers.ChoiceField(choices=["tenant", "agent"],
                                    help_text="tenant (default row) or agent (override row)")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PluginSettingUpsertOutputSerializer(PluginSettingOutputSerializer):
    created = serializers.SerializerMethodField(help_text="True if this request created the row.")

    def get_created(self, obj) -> bool:
        return bool(self.context.get("created"))


class PluginSettingDeletedOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    deleted_at = serializers.DateTimeField()
