"""Agents: one bot each, with its persona and MaiMBot configuration document."""

from django.db import models

from core.models import CASEFOLD_KEY_MAX_LENGTH, CaseFoldKeyField, ExactCharField, TimeStampedModel


class Agent(TimeStampedModel):
    """An agent (spec §4.1). `config` is the stored configuration document (agent-config.md)."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        INACTIVE = "inactive"
        ARCHIVED = "archived"

    id = ExactCharField(primary_key=True, max_length=32, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=100)
    name_key = CaseFoldKeyField(max_length=CASEFOLD_KEY_MAX_LENGTH, editable=False)
    description = models.TextField(max_length=2000, null=True, blank=True)
    template_id = ExactCharField(max_length=50, null=True, blank=True)
    config = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "agent"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name_key"], name="agent_name_unique_ci_per_tenant",
                                    violation_error_message="An agent with this name already exists in this tenant."),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def agent_id(self) -> str:
        return self.id

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE
