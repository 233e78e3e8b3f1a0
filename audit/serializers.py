"""Audit trail: query filters and the event representation."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import AuditAction, AuditEvent, AuditTarget
from core.serializers import OutputModelSerializer
from core.fields import ObjectIdFilterField, StrictCharField, StrictDateTimeField


class AuditEventFilterSerializer(serializers.Serializer):
    tenant_id = ObjectIdFilterField(help_text=_("Events of this tenant (deleted tenants included)."))
    target_type = serializers.ChoiceField(choices=AuditTarget.choices, required=False,
                                          help_text=_("Kind of object written."))
    target_id = ObjectIdFilterField(help_text=_("Id of the object written (an agent id, a key id, …)."))
    actor = StrictCharField(min_length=1, max_length=200, required=False,
                            help_text=_("Exact actor: operator:<username>, agent_key:<key id>, command:<name>, "
                                        "system."))
    action = serializers.ChoiceField(choices=AuditAction.choices, required=False,
                                     help_text=_("One action of the catalogue (README, Audit trail)."))
    since = StrictDateTimeField(required=False, help_text=_("Events at or after this ISO 8601 time."))
    until = StrictDateTimeField(required=False, help_text=_("Events before this ISO 8601 time."))

    def validate(self, attrs):
        if "since" in attrs and "until" in attrs and attrs["since"] > attrs["until"]:
            raise serializers.ValidationError({"until": [_("Must not be earlier than since.")]})
        return attrs


@extend_schema_field({
    "type": "object",
    "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 2, "items": {}},
    "description": 'Changed fields as {"path": [before, after]}; nested members use dotted paths '
                   '(config.persona); every secret is "********"; null stands for absent.',
    "example": {"config.persona": ["Terse.", "Cheerful."],
                "config.config_overrides.model.api_providers.0.api_key": ["********", "********"]},
})
class AuditChangesField(serializers.JSONField):
    pass


class AuditEventOutputSerializer(OutputModelSerializer):
    changes = AuditChangesField()

    class Meta:
        model = AuditEvent
        fields = ["id", "occurred_at", "actor", "action", "target_type", "target_id", "tenant_id", "request_id",
                  "changes"]
