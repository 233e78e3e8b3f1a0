"""Input and output serializers of the agent routes (module level, unique names).

The configuration document is described once, by `catalogue/schemas/agent_config.schema.json`; the
OpenAPI document shows it as the `AgentConfigDocument` component (see `agents/schema.py`), used by the
`config` fields below and by the config routes.
"""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents import configdoc
from agents.models import Agent, AgentConfigVersion
from core.serializers import OutputModelSerializer
from core.fields import NameField, QueryBooleanField, StrictCharField, StrictIntegerField

TAGS_MAX_ITEMS = 20
TAG_MAX_LENGTH = 50


class AgentConfigDocumentSerializer(serializers.Serializer):
    """The agent configuration document (schema: agent-config.md / catalogue/schemas). Documentation only."""


class ConfigWarningOutputSerializer(serializers.Serializer):
    path = serializers.CharField()
    code = serializers.ChoiceField(choices=["unknown_key", "unknown_section", "unknown_task", "unknown_value",
                                            "unknown_provider", "unknown_model"])
    message = serializers.CharField()


class AgentConfigResponseSerializer(serializers.Serializer):
    """The masked document plus a top-level `warnings` array (spec §4.7). Documentation only."""


@extend_schema_field(AgentConfigDocumentSerializer)
class AgentConfigInputField(serializers.JSONField):
    """Any JSON value: the document is checked by the service (AGENT_012), after the other fields."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "An agent configuration document (agent-config.md); `persona` may be "
                                       "a string. Validated as a whole: errors are AGENT_012 at `config.<path>`.")
        super().__init__(**kwargs)


# The sections the original's agent responses always carried (spec §16): a UI reading `config.persona.*`
# must find an object, never a missing key.
CONFIG_SKELETON_SECTIONS = ("persona", "bot_overrides", "config_overrides")


@extend_schema_field(AgentConfigDocumentSerializer)
class AgentConfigOutputField(serializers.Field):
    """The stored document with provider keys masked, plus the original's skeleton: `persona`,
    `bot_overrides` and `config_overrides` are always present (`{}` when the document has none). Only
    the agent object shows the skeleton; the stored document and the config routes (§4.7) do not."""

    def __init__(self, **kwargs):
        kwargs["read_only"] = True
        kwargs.setdefault("help_text", _(
            "The stored configuration document (provider keys masked). `persona`, `bot_overrides` and "
            "`config_overrides` are always objects (empty when not set), as in the original's responses."))
        super().__init__(**kwargs)

    def to_representation(self, value):
        document = configdoc.mask_document(value)
        for section in CONFIG_SKELETON_SECTIONS:
            if document.get(section) is None:
                document[section] = {}
        return document


class TagListField(serializers.ListField):
    """≤ 20 strings, each 1–50 characters after trimming; exact duplicates removed, order kept."""

    default_error_messages = {"not_a_list": "Must be a list of strings."}

    def __init__(self, **kwargs):
        kwargs.setdefault("child", StrictCharField(min_length=1, max_length=TAG_MAX_LENGTH))
        kwargs.setdefault("max_length", TAGS_MAX_ITEMS)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        return list(dict.fromkeys(super().to_internal_value(data)))


class AgentCreateInputSerializer(serializers.Serializer):
    tenant_id = StrictCharField(help_text="An existing, active tenant.")
    name = NameField(help_text="1–100 characters after trimming; unique in the tenant, case-insensitively.")
    description = StrictCharField(max_length=2000, required=False, allow_null=True, allow_blank=True)
    template_id = StrictCharField(max_length=50, required=False, allow_null=True, allow_blank=True)
    config = AgentConfigInputField(required=False, allow_null=True)
    tags = TagListField(required=False, allow_null=True)


class AgentUpdateInputSerializer(serializers.Serializer):
    """Partial update: every field optional. `config` is deep-merged (`null` resets it to `{}`)."""

    name = NameField(required=False)
    description = StrictCharField(max_length=2000, required=False, allow_null=True, allow_blank=True)
    template_id = StrictCharField(max_length=50, required=False, allow_null=True, allow_blank=True)
    status = serializers.ChoiceField(choices=Agent.Status.choices, required=False)
    tags = TagListField(required=False, allow_null=True)
    config = AgentConfigInputField(required=False, allow_null=True)


class AgentFilterSerializer(serializers.Serializer):
    tenant_id = StrictCharField(required=False, help_text="Unknown tenant: 404 AGENT_001.")
    status = serializers.ChoiceField(choices=Agent.Status.choices, required=False)
    tag = StrictCharField(min_length=1, required=False,
                          help_text="Agents whose tags contain this exact string.")
    search = StrictCharField(min_length=1, max_length=100, required=False,
                             help_text="Case-insensitive substring of the name.")


class AgentConfigReadQuerySerializer(serializers.Serializer):
    effective = QueryBooleanField(required=False, default=False,
                                  help_text="true: the stored document over the documented defaults.")


class AgentConfigWriteQuerySerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=["merge", "replace"], required=False, default="merge",
                                   help_text="merge: deep merge into the stored document; replace: the body "
                                             "becomes the whole document.")


class AgentConfigBodyInputSerializer(serializers.Serializer):
    """The body of the config writes: any JSON object (kept exactly as sent; a non-object is a 400)."""

    def to_internal_value(self, data):
        super().to_internal_value(data)  # rejects a non-object with VALIDATION_ERROR at non_field_errors
        # `config_version` is read-only (the responses carry it next to `warnings`); a client sending back
        # what it read must not store it into the document (spec §1.2: read-only fields are ignored).
        return {key: value for key, value in data.items() if key != "config_version"}


class AgentOutputSerializer(OutputModelSerializer):
    agent_id = serializers.CharField(source="id", read_only=True)
    tenant_id = serializers.CharField(read_only=True)
    config = AgentConfigOutputField()
    config_warnings = serializers.SerializerMethodField()
    is_online = serializers.SerializerMethodField()
    last_seen_at = serializers.SerializerMethodField()
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Agent
        fields = ["id", "agent_id", "tenant_id", "name", "description", "template_id", "config", "config_warnings",
                  "config_version", "status", "tags", "is_online", "last_seen_at", "created_at", "updated_at"]
        read_only_fields = fields

    def _system_models(self) -> set[str]:
        """The catalogue's model names, read once per serialization (warnings `unknown_model`)."""
        cache = self.context.setdefault("_agent_output_cache", {}) if isinstance(self.context, dict) else {}
        if "system_models" not in cache:
            from catalogue.selectors import system_model_names

            cache["system_models"] = system_model_names()
        return cache["system_models"]

    @extend_schema_field(ConfigWarningOutputSerializer(many=True))
    def get_config_warnings(self, agent) -> list[dict]:
        return configdoc.document_warnings(agent.config or {}, system_models=self._system_models())

    def get_is_online(self, agent) -> bool:
        expires_at = getattr(agent, "activity_expires_at", None)
        return expires_at is not None and expires_at > timezone.now()

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_last_seen_at(self, agent):
        value = getattr(agent, "activity_last_seen_at", None)
        return serializers.DateTimeField().to_representation(value) if value is not None else None


class AgentDeletedOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    agent_id = serializers.CharField()
    deleted_at = serializers.DateTimeField()


@extend_schema_field({
    "type": "object",
    "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 2, "items": {}},
    "description": "The diff to the previous version: {\"path\": [before, after]} with dotted paths into the "
                   "document; provider keys appear as \"********\"; null stands for absent.",
    "example": {"persona.personality": ["A terse helper.", "A cheerful helper."]},
})
class ConfigChangesField(serializers.JSONField):
    pass


@extend_schema_field(AgentConfigResponseSerializer)
class VersionDocumentField(serializers.JSONField):
    """The document of a version as the config routes show documents (masked, with `warnings`)."""


class AgentConfigVersionOutputSerializer(OutputModelSerializer):
    """A version in the list: who, when, why; no document."""

    version = serializers.IntegerField(source="number", read_only=True)
    changed_paths = serializers.SerializerMethodField(
        help_text="The document paths this version changed (the full diff is on the version's own route).")

    class Meta:
        model = AgentConfigVersion
        fields = ["version", "created_at", "actor", "request_id", "source", "restored_from", "changed_paths"]
        read_only_fields = fields

    def get_changed_paths(self, version) -> list[str]:
        return list(version.changes or {})


class AgentConfigVersionDetailOutputSerializer(serializers.Serializer):
    """One version with its (masked) document and its diff to the previous version."""

    agent_id = serializers.CharField()
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField()
    request_id = serializers.CharField(allow_null=True)
    source = serializers.ChoiceField(choices=AgentConfigVersion.Source.choices)
    restored_from = serializers.IntegerField(allow_null=True)
    is_current = serializers.BooleanField()
    document = VersionDocumentField(help_text="The document of this version, provider keys masked, "
                                                       "with its warnings; the effective view with ?effective=true.")
    changes = ConfigChangesField()


class AgentConfigRollbackInputSerializer(serializers.Serializer):
    version = StrictIntegerField(min_value=1, max_value=2**31 - 1,
                                 help_text="The version whose document becomes current again (as a new version).")
