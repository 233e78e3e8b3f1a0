"""Plugin settings: (tenant, agent-or-null, plugin_name) -> {enabled, config} (spec §8)."""

from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.models import ExactCharField as CoreExactCharField
from core.models import TimeStampedModel

# Spec §8: 1–100 characters (already trimmed: no surrounding whitespace), no control characters, no `/`;
# any letters, digits, spaces and punctuation otherwise, as the original accepted (`天气插件`, `weather plugin`).
PLUGIN_NAME_PATTERN = r"^(?!\s)(?!.*\s\Z)[^/\x00-\x1f\x7f-\x9f]{1,100}\Z"
PLUGIN_NAME_MESSAGE = _("Use 1–100 characters without '/' or control characters (surrounding spaces are trimmed).")
plugin_name_validator = RegexValidator(PLUGIN_NAME_PATTERN, PLUGIN_NAME_MESSAGE, code="invalid")


class ExactCharField(models.CharField):
    """A CharField compared byte for byte: plugin names are case-sensitive (spec §8), so on MySQL/MariaDB
    the column gets a binary collation (their default collations fold case). SQLite compares bytes."""

    def db_parameters(self, connection):
        params = super().db_parameters(connection)
        if connection.vendor == "mysql":
            params["collation"] = "utf8mb4_bin"
        return params


class PluginSetting(TimeStampedModel):
    """A tenant default (`agent` null) or an agent's override of one plugin's settings.

    `agent_scope` is the agent id, or "" for a tenant default: a non-null copy that carries the unique
    constraint, because NULLs are distinct in unique indexes (SQLite, MariaDB) and MariaDB has no
    partial indexes. A check constraint keeps it equal to `agent_id`.
    """

    id = CoreExactCharField(primary_key=True, max_length=32, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="plugin_settings")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, null=True, blank=True,
                              related_name="plugin_settings")
    agent_scope = CoreExactCharField(max_length=32, default="", blank=True, editable=False)
    plugin_name = ExactCharField(max_length=100, validators=[plugin_name_validator])
    enabled = models.BooleanField(default=False)
    config = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "plugin setting"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "agent_scope", "plugin_name"], name="plugin_setting_unique_scope",
                violation_error_message="This plugin already has a setting for this tenant and agent."),
            models.CheckConstraint(
                condition=models.Q(agent__isnull=True, agent_scope="")
                | models.Q(agent__isnull=False, agent_scope=models.F("agent")),
                name="plugin_setting_agent_scope_matches",
                violation_error_message="agent_scope must be the agent id, or empty for a tenant default."),
        ]
        indexes = [models.Index(fields=["agent", "plugin_name"], name="plugin_agent_name_idx")]

    def __str__(self) -> str:
        return f"{self.plugin_name} ({self.scope}: {self.agent_id or self.tenant_id})"

    @property
    def scope(self) -> str:
        return "agent" if self.agent_id else "tenant"
