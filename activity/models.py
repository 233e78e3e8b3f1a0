"""Agent liveness (heartbeats) and the usage log written by bots."""

from django.db import models
from django.utils import timezone


class AgentActivity(models.Model):
    """One row per agent (spec §7): online while `expires_at > now`."""

    agent = models.OneToOneField("agents.Agent", on_delete=models.CASCADE, primary_key=True,
                                 related_name="activity")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    last_seen_at = models.DateTimeField()
    ttl_seconds = models.PositiveIntegerField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-last_seen_at", "-agent_id"]
        verbose_name = "agent activity"
        verbose_name_plural = "agent activity"

    def __str__(self) -> str:
        return f"{self.agent_id} until {self.expires_at:%Y-%m-%d %H:%M:%S}"

    @property
    def online(self) -> bool:
        return self.expires_at > timezone.now()
