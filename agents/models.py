"""Agents: one bot each, with its persona and MaiMBot configuration document."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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
    # Number of the current configuration version (AgentConfigVersion); moves with every config change.
    config_version = models.PositiveIntegerField(_("configuration version"), default=1, editable=False)

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


class AgentConfigVersion(models.Model):
    """One state of an agent's configuration document (issue 17): version 1 at creation, n+1 at every
    change (config routes, agent update with `config`, the admin, a rollback).

    `document` is the stored form (provider keys encrypted, exactly as `Agent.config` held it), so a
    rollback restores the keys as they were; every read masks them. `changes` is the diff to the previous
    version (`{path: [before, after]}`, secrets masked). Numbers are unique per agent and allocated under
    the agent's row lock.
    """

    class Source(models.TextChoices):
        CREATE = "create", _("agent created")
        UPDATE = "update", _("configuration changed")
        ROLLBACK = "rollback", _("rolled back")
        INITIAL = "initial", _("existing configuration when versions were introduced")

    id = models.BigAutoField(primary_key=True)
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="config_versions")
    number = models.PositiveIntegerField(_("version"))
    created_at = models.DateTimeField(_("time"), default=timezone.now)
    actor = ExactCharField(_("actor"), max_length=200)
    request_id = ExactCharField(_("request id"), max_length=128, null=True, blank=True)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    restored_from = models.PositiveIntegerField(_("restored from version"), null=True, blank=True)
    document = models.JSONField(_("document"), default=dict)
    changes = models.JSONField(_("changes"), default=dict, blank=True)

    class Meta:
        ordering = ["agent", "-number"]
        verbose_name = _("configuration version")
        verbose_name_plural = _("configuration versions")
        constraints = [
            models.UniqueConstraint(fields=["agent", "number"], name="agent_config_version_unique_number",
                                    violation_error_message=_("This agent already has a version with this number.")),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="agent_config_version_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} v{self.number}"
