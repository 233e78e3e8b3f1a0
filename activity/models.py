"""Agent liveness (heartbeats) and the usage log written by bots."""

from django.db import models
from django.utils import timezone

from core.models import ExactCharField


class AgentActivity(models.Model):
    """One row per agent (spec §7): online while `expires_at > now`."""

    agent = models.OneToOneField("agents.Agent", on_delete=models.CASCADE, primary_key=True,
                                 related_name="activity")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    last_seen_at = models.DateTimeField()
    # Set by real heartbeats only: agent creation writes a 12-hour row (spec §4.2) with this left empty,
    # so the console can tell an agent that never connected from one that is online.
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    ttl_seconds = models.PositiveIntegerField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-last_seen_at", "-agent_id"]
        verbose_name = "agent activity"
        verbose_name_plural = "agent activity"
        indexes = [models.Index(fields=["-last_seen_at", "-agent"], name="activity_seen_idx")]

    def __str__(self) -> str:
        return f"{self.agent_id} until {self.expires_at:%Y-%m-%d %H:%M:%S}"

    @property
    def online(self) -> bool:
        return self.expires_at > timezone.now()


class UsageLog(models.Model):
    """A usage-log entry (spec §9.1): a free-form event reported by a bot or an operator."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, null=True, blank=True,
                               related_name="+")
    agent = models.ForeignKey("agents.Agent", on_delete=models.SET_NULL, null=True, blank=True,
                              related_name="+")
    # Not a foreign key: the entry outlives its key, and writing it must not read the key again.
    api_key_id = ExactCharField(max_length=32, null=True, blank=True, db_index=True)
    user_id = ExactCharField(max_length=128, null=True, blank=True)
    action = ExactCharField(max_length=100)
    details = models.JSONField(null=True, blank=True)
    timestamp = models.DateTimeField(db_index=True)
    request_id = ExactCharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-timestamp", "-id"]
        verbose_name = "usage-log entry"
        verbose_name_plural = "usage log"
        indexes = [
            models.Index(fields=["tenant", "timestamp"], name="usage_tenant_ts_idx"),
            models.Index(fields=["agent", "timestamp"], name="usage_agent_ts_idx"),
            models.Index(fields=["action", "timestamp"], name="usage_action_ts_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=~models.Q(action=""), name="usage_action_not_empty",
                                   violation_error_message="The action must not be empty."),
        ]

    def __str__(self) -> str:
        return f"{self.action} at {self.timestamp:%Y-%m-%d %H:%M:%S}"
