"""Audit events: who changed what, when, through which request (issue 17)."""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    """The one catalogue of audited actions (README "Audit trail" lists it with the same words).

    Not audited, on purpose: key verification, heartbeats and going offline (runtime state, not
    configuration), usage-log rows and chat turns (data bots produce on their hot paths; an audit INSERT
    there would double their write cost), and the re-encryption of provider keys (same document).
    """

    TENANT_CREATE = "tenant.create", _("Tenant created")
    TENANT_UPDATE = "tenant.update", _("Tenant updated")
    TENANT_DELETE = "tenant.delete", _("Tenant deleted (with everything it owned)")
    AGENT_CREATE = "agent.create", _("Agent created")
    AGENT_UPDATE = "agent.update", _("Agent updated")
    AGENT_DELETE = "agent.delete", _("Agent deleted (with everything it owned)")
    AGENT_CONFIG_UPDATE = "agent.config.update", _("Agent configuration changed")
    AGENT_CONFIG_ROLLBACK = "agent.config.rollback", _("Agent configuration rolled back to an earlier version")
    API_KEY_CREATE = "api_key.create", _("API key created")
    API_KEY_UPDATE = "api_key.update", _("API key updated")
    API_KEY_DISABLE = "api_key.disable", _("API key disabled")
    API_KEY_ENABLE = "api_key.enable", _("API key enabled")
    API_KEY_ROTATE = "api_key.rotate", _("API key rotated")
    API_KEY_DELETE = "api_key.delete", _("API key deleted")
    PLUGIN_SETTING_CREATE = "plugin_setting.create", _("Plugin setting created")
    PLUGIN_SETTING_UPDATE = "plugin_setting.update", _("Plugin setting updated")
    PLUGIN_SETTING_DELETE = "plugin_setting.delete", _("Plugin setting deleted")
    CONVERSATION_DELETE = "conversation.delete", _("Chat conversation deleted")
    OPERATOR_TOKEN_CREATE = "operator_token.create", _("Operator token created")
    OPERATOR_TOKEN_ROTATE = "operator_token.rotate", _("Operator token rotated")


class AuditTarget(models.TextChoices):
    TENANT = "tenant", _("tenant")
    AGENT = "agent", _("agent")
    API_KEY = "api_key", _("API key")
    PLUGIN_SETTING = "plugin_setting", _("plugin setting")
    CONVERSATION = "conversation", _("conversation")
    OPERATOR = "operator", _("operator")


class BinaryCharField(models.CharField):
    """Compared byte for byte on MariaDB too (its default collation is case- and accent-insensitive):
    `operator:Alice` and `operator:alice` are different actors."""

    def db_parameters(self, connection):
        params = super().db_parameters(connection)
        if connection.vendor == "mysql":
            params["collation"] = "utf8mb4_bin"
        return params


class AuditEvent(models.Model):
    """One write: who (`actor`), what (`action` on `target_type`/`target_id`), and `changes`.

    `tenant_id` and `target_id` are plain columns, not foreign keys: the trail outlives what it
    describes (a deleted tenant's events stay until the retention purge). Rows are never updated.
    """

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    actor = BinaryCharField(_("actor"), max_length=200,
                            help_text=_("operator:<username>, agent_key:<key id>, command:<name> or system"))
    action = BinaryCharField(_("action"), max_length=50, choices=AuditAction.choices)
    target_type = BinaryCharField(_("target type"), max_length=30, choices=AuditTarget.choices)
    target_id = BinaryCharField(_("target id"), max_length=64)
    tenant_id = BinaryCharField(_("tenant id"), max_length=32, null=True, blank=True)
    request_id = BinaryCharField(_("request id"), max_length=128, null=True, blank=True)
    changes = models.JSONField(_("changes"), default=dict, blank=True,
                               help_text=_('{"field": [before, after]}; secrets appear as "********"'))

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [
            models.Index(fields=["tenant_id", "-occurred_at"], name="audit_tenant_time"),
            models.Index(fields=["target_type", "target_id", "-occurred_at"], name="audit_target_time"),
            models.Index(fields=["actor", "-occurred_at"], name="audit_actor_time"),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target_type}:{self.target_id}"
