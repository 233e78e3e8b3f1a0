"""Input and output serializers of the tenant routes (module level, unique names)."""

from rest_framework import serializers

from core.serializers import OutputModelSerializer
from core.fields import JSONObjectField, NameField, StrictCharField
from tenants.models import Tenant

TENANT_CONFIG_MAX_BYTES = 64 * 1024


class TenantCreateInputSerializer(serializers.Serializer):
    tenant_name = NameField(help_text="1–100 characters after trimming; unique, case-insensitively.")
    tenant_type = serializers.ChoiceField(choices=Tenant.TenantType.choices)
    description = StrictCharField(max_length=2000, required=False, allow_null=True, allow_blank=True)
    contact_email = serializers.EmailField(max_length=254, required=False, allow_null=True)
    tenant_config = JSONObjectField(max_bytes=TENANT_CONFIG_MAX_BYTES, required=False, allow_null=True,
                                    help_text="Free-form JSON object, at most 64 KiB serialized.")
    owner_id = StrictCharField(max_length=50, required=False, allow_null=True, allow_blank=True)


class TenantUpdateInputSerializer(TenantCreateInputSerializer):
    """Partial update: every field optional; nullable fields accept null to clear."""

    tenant_name = NameField(required=False)
    tenant_type = serializers.ChoiceField(choices=Tenant.TenantType.choices, required=False)
    status = serializers.ChoiceField(choices=Tenant.Status.choices, required=False)


class TenantFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Tenant.Status.choices, required=False)
    tenant_type = serializers.ChoiceField(choices=Tenant.TenantType.choices, required=False)
    search = StrictCharField(min_length=1, max_length=100, required=False)


class TenantOutputSerializer(OutputModelSerializer):
    tenant_id = serializers.CharField(source="id", read_only=True)

    class Meta:
        model = Tenant
        fields = ["id", "tenant_id", "tenant_name", "tenant_type", "description", "contact_email",
                  "tenant_config", "status", "owner_id", "created_at", "updated_at"]
        read_only_fields = fields


class TenantDeletedOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    tenant_id = serializers.CharField()
    deleted_at = serializers.DateTimeField()
