"""Input and output serializers of the API-key and key-verification routes (module level, unique names)."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apikeys.models import ApiKey
from apikeys.usage import attach_pending
from core.serializers import OutputModelSerializer
from core.fields import (
    JSONObjectField,
    NameField,
    ObjectIdFilterField,
    StrictBooleanField,
    StrictCharField,
    StrictDateTimeField,
    StrictIntegerField,
)

METADATA_MAX_BYTES = 16 * 1024
MAX_PERMISSIONS = 50
PERMISSION_MAX_LENGTH = 64
RATE_LIMIT_MAX = 1_000_000
GRACE_SECONDS_MAX = 86400


def parse_permission_text(text: str) -> list[str]:
    """A comma-separated permission list (the admin form, `issue_api_key --permissions`): the same rules as
    `PermissionListField`, duplicates removed in order. Raises ValueError with a readable sentence."""
    items = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in items if not _permission_ok(p)]
    if bad:
        raise ValueError(f"Invalid permission(s): {', '.join(bad)[:200]}. Each must be 1–{PERMISSION_MAX_LENGTH} "
                         "characters with no control characters.")
    items = list(dict.fromkeys(items))
    if len(items) > MAX_PERMISSIONS:
        raise ValueError(f"At most {MAX_PERMISSIONS} permissions.")
    return items


def _permission_ok(value: str) -> bool:
    try:
        NameField(max_length=PERMISSION_MAX_LENGTH).run_validation(value)
    except serializers.ValidationError:
        return False
    return True


class PermissionListField(serializers.ListField):
    """≤ 50 permission strings, each 1–64 characters after trimming with no control characters; spaces
    inside and any Unicode letters are allowed, as the original accepted them (spec §5.2). Duplicates
    removed (first occurrence kept, order kept)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("child", NameField(max_length=PERMISSION_MAX_LENGTH))
        kwargs.setdefault("max_length", MAX_PERMISSIONS)
        kwargs.setdefault("help_text", _(
            "Up to 50 strings, each 1–64 characters after trimming, without control characters "
            "(spaces and any Unicode letters allowed, e.g. \"chat\", \"config read\", \"聊天\")."))
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list", input_type=type(data).__name__)
        return list(dict.fromkeys(super().to_internal_value(data)))


def _description(**kwargs):
    return StrictCharField(max_length=2000, required=False, allow_null=True, allow_blank=True, **kwargs)


def _rate_limit():
    return StrictIntegerField(min_value=1, max_value=RATE_LIMIT_MAX, required=False, allow_null=True,
                              help_text="Requests per minute (1–1000000); null = unlimited.")


class ApiKeyCreateInputSerializer(serializers.Serializer):
    tenant_id = StrictCharField(required=False, allow_null=True, max_length=64,
                                help_text="Optional; must be the agent's tenant when given.")
    agent_id = StrictCharField(max_length=64)
    name = NameField(help_text="1–100 characters; unique in the tenant, case-insensitively.")
    description = _description()
    permissions = PermissionListField(required=False)
    expires_at = StrictDateTimeField(required=False, allow_null=True, help_text="Must be in the future.")
    rate_limit_per_minute = _rate_limit()
    metadata = JSONObjectField(max_bytes=METADATA_MAX_BYTES, required=False, allow_null=True,
                               help_text="JSON object, at most 16 KiB serialized.")

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("Must be in the future.")
        return value

    def validate(self, attrs):
        if attrs.get("tenant_id") is None:
            attrs.pop("tenant_id", None)
        if attrs.get("description") == "":
            attrs["description"] = None
        return attrs


class ApiKeyUpdateInputSerializer(serializers.Serializer):
    """Partial update: absent fields unchanged; `null` clears nullable fields (`metadata` -> `{}`)."""

    name = NameField(required=False)
    description = _description()
    permissions = PermissionListField(required=False)
    expires_at = StrictDateTimeField(required=False, allow_null=True,
                                     help_text="Any value; a past one expires the key now; null clears.")
    rate_limit_per_minute = _rate_limit()
    metadata = JSONObjectField(max_bytes=METADATA_MAX_BYTES, required=False, allow_null=True)
    status = serializers.ChoiceField(choices=[("active", "active"), ("disabled", "disabled")], required=False,
                                     help_text="`active` enables, `disabled` disables the key.")

    def validate(self, attrs):
        if attrs.get("description") == "":
            attrs["description"] = None
        return attrs


class ApiKeyRotateInputSerializer(serializers.Serializer):
    grace_seconds = StrictIntegerField(min_value=0, max_value=GRACE_SECONDS_MAX, required=False, default=0,
                                       help_text="0–86400: how long the current secret keeps working.")


class ApiKeyFilterSerializer(serializers.Serializer):
    tenant_id = ObjectIdFilterField()
    agent_id = ObjectIdFilterField()
    status = serializers.ChoiceField(choices=ApiKey.Status.choices, required=False)


class ApiKeyOutputListSerializer(serializers.ListSerializer):
    """Reads every listed key's pending uses in one Redis round trip before representing them."""

    def to_representation(self, data):
        items = list(data.all() if hasattr(data, "all") else data)
        attach_pending(items)
        return super().to_representation(items)


class ApiKeyOutputSerializer(OutputModelSerializer):
    """The Key object (spec §5.1). `api_key` is the plaintext secret only when the view passes it in the
    context (`raw_key`, create and rotate); everywhere else the masked `key_hint`, so the original's
    clients, whose models declare `api_key` a required string, still get a string (never the secret)."""

    api_key_id = serializers.CharField(source="id", read_only=True)
    tenant_id = serializers.CharField(read_only=True)
    agent_id = serializers.CharField(read_only=True)
    api_key = serializers.SerializerMethodField()
    status = serializers.SerializerMethodField()
    permissions = serializers.ListField(child=serializers.CharField(), read_only=True)
    metadata = serializers.DictField(read_only=True)
    usage_count = serializers.IntegerField(read_only=True)
    rate_limit_per_minute = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = ApiKey
        fields = ["id", "api_key_id", "tenant_id", "agent_id", "name", "description", "api_key", "key_hint",
                  "permissions", "status", "expires_at", "rate_limit_per_minute", "metadata", "last_used_at",
                  "usage_count", "disabled_at", "rotated_at", "previous_key_expires_at", "created_at",
                  "updated_at"]
        read_only_fields = fields
        list_serializer_class = ApiKeyOutputListSerializer

    @extend_schema_field(serializers.CharField(help_text=_(
        "The plaintext secret in the create and rotate responses only; everywhere else the masked hint "
        "(same as key_hint).")))
    def get_api_key(self, obj) -> str:
        return self.context.get("raw_key") or obj.key_hint

    def get_status(self, obj) -> str:
        now = self.context.get("now") or timezone.now()
        return obj.status_at(now)

    def to_representation(self, instance):
        # `usage_count`/`last_used_at` are the stored values plus the uses pending in Redis (spec §1.15).
        attach_pending([instance])
        data = super().to_representation(instance)
        data["usage_count"] = instance.usage_count_shown
        data["last_used_at"] = self.fields["last_used_at"].to_representation(instance.last_used_at_shown) \
            if instance.last_used_at_shown is not None else None
        if not instance.previous_secret_valid:
            data["previous_key_expires_at"] = None
        return data


class ApiKeyDeletedOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    api_key_id = serializers.CharField()
    deleted_at = serializers.DateTimeField()


# --- /auth verdict endpoints ----------------------------------------------------------------------

class ParseApiKeyInputSerializer(serializers.Serializer):
    api_key = StrictCharField(allow_blank=True, trim_whitespace=False, help_text="The key to parse.")


class ValidateApiKeyInputSerializer(serializers.Serializer):
    api_key = StrictCharField(allow_blank=True, trim_whitespace=False, help_text="The key to check.")
    required_permission = StrictCharField(required=False, allow_null=True, allow_blank=True, default=None,
                                          help_text="Exact, case-sensitive permission the key must hold.")
    check_rate_limit = StrictBooleanField(required=False, allow_null=True, default=True,
                                          help_text="Enforce the per-minute limit and count a use (null = true).")


class CheckPermissionInputSerializer(serializers.Serializer):
    api_key = StrictCharField(allow_blank=True, trim_whitespace=False, help_text="The key to check.")
    permission = StrictCharField(min_length=1, max_length=64, help_text="The permission to check.")


class ParseVerdictOutputSerializer(serializers.Serializer):
    format_valid = serializers.BooleanField()
    format = serializers.CharField(allow_null=True, help_text="`current` or `legacy`")
    tenant_id = serializers.CharField(allow_null=True)
    agent_id = serializers.CharField(allow_null=True)
    random_hash = serializers.CharField(allow_null=True)
    version = serializers.CharField(allow_null=True)


class RateLimitStateOutputSerializer(serializers.Serializer):
    limit = serializers.IntegerField()
    remaining = serializers.IntegerField()
    reset_seconds = serializers.IntegerField()


class ValidateVerdictOutputSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    api_key_id = serializers.CharField(allow_null=True)
    tenant_id = serializers.CharField(allow_null=True)
    agent_id = serializers.CharField(allow_null=True)
    permissions = serializers.ListField(child=serializers.CharField(), allow_null=True)
    required_permission = serializers.CharField(allow_null=True)
    has_permission = serializers.BooleanField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    usage_count = serializers.IntegerField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    rate_limit = RateLimitStateOutputSerializer(allow_null=True)
    retry_after = serializers.IntegerField(allow_null=True)
    metadata = serializers.DictField(allow_null=True)
    using_previous_secret = serializers.BooleanField(allow_null=True)


class CheckPermissionVerdictOutputSerializer(serializers.Serializer):
    has_permission = serializers.BooleanField(allow_null=True)
    permission = serializers.CharField()
    all_permissions = serializers.ListField(child=serializers.CharField(), allow_null=True)
    tenant_id = serializers.CharField(allow_null=True)
    agent_id = serializers.CharField(allow_null=True)
    api_key_id = serializers.CharField(allow_null=True)
    api_key_status = serializers.CharField(allow_null=True)
