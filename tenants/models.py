"""Tenants: the customers of the platform; everything else belongs to one."""

from django.db import models

from core.models import CASEFOLD_KEY_MAX_LENGTH, CaseFoldKeyField, ExactCharField, TimeStampedModel


class Tenant(TimeStampedModel):
    """A tenant (spec §3.1). `name_key` holds the case-insensitive uniqueness of `tenant_name`."""

    class TenantType(models.TextChoices):
        PERSONAL = "personal"
        ENTERPRISE = "enterprise"

    class Status(models.TextChoices):
        ACTIVE = "active"
        INACTIVE = "inactive"
        SUSPENDED = "suspended"

    id = ExactCharField(primary_key=True, max_length=32, editable=False)
    tenant_name = models.CharField(max_length=100)
    name_key = CaseFoldKeyField(max_length=CASEFOLD_KEY_MAX_LENGTH, editable=False)
    tenant_type = models.CharField(max_length=20, choices=TenantType.choices)
    description = models.TextField(max_length=2000, null=True, blank=True)
    contact_email = models.EmailField(max_length=254, null=True, blank=True)
    tenant_config = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    owner_id = ExactCharField(max_length=50, null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "tenant"
        constraints = [
            models.UniqueConstraint(fields=["name_key"], name="tenant_name_unique_ci",
                                    violation_error_message="A tenant with this name already exists."),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_name} ({self.id})"

    @property
    def tenant_id(self) -> str:
        return self.id

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE
