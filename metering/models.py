"""Aggregated usage counters: one row per UTC hour, metric and (tenant, agent, key, dimension)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ExactKeyField(models.CharField):
    """Part of the counter's unique key, compared byte for byte: MariaDB's default collations fold case
    and accents (`gpt-4o` = `GPT-4O`), which would merge counters of distinct models or ids, so on
    MySQL/MariaDB the column uses a binary collation. SQLite compares bytes already."""

    def db_parameters(self, connection):
        params = super().db_parameters(connection)
        if connection.vendor == "mysql":
            params["collation"] = "utf8mb4_bin"
        return params


class UsageCounter(models.Model):
    """How much of `metric` happened in the hour starting at `bucket` (UTC).

    Not foreign keys: counters outlive the tenants, agents and keys they count, and the hot paths that
    add to them never read those rows. "" stands for "none" in the id and dimension columns, because
    NULLs are distinct in unique indexes (SQLite, MariaDB) and would defeat the upsert.
    Metric names and their dimensions are catalogued in `metering.metrics`.
    """

    id = models.BigAutoField(primary_key=True)
    bucket = models.DateTimeField(_("hour (UTC)"))
    metric = ExactKeyField(_("metric"), max_length=64)
    tenant_id = ExactKeyField(_("tenant id"), max_length=32, default="", blank=True)
    agent_id = ExactKeyField(_("agent id"), max_length=32, default="", blank=True)
    api_key_id = ExactKeyField(_("API key id"), max_length=32, default="", blank=True)
    dimension = ExactKeyField(_("dimension"), max_length=128, default="", blank=True)
    value = models.BigIntegerField(_("value"), default=0)

    class Meta:
        verbose_name = _("usage counter")
        verbose_name_plural = _("usage counters")
        ordering = ["-bucket", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "metric", "tenant_id", "agent_id", "api_key_id", "dimension"],
                name="usage_counter_unique_key",
                violation_error_message=_("A counter for this hour, metric and scope already exists."),
            ),
        ]
        indexes = [
            models.Index(fields=["metric", "bucket"], name="usage_counter_metric_bucket"),
            models.Index(fields=["tenant_id", "bucket"], name="usage_counter_tenant_bucket"),
            models.Index(fields=["agent_id", "bucket"], name="usage_counter_agent_bucket"),
        ]

    def __str__(self) -> str:
        scope = "/".join(part for part in (self.tenant_id, self.agent_id, self.api_key_id, self.dimension) if part)
        return f"{self.metric} {self.bucket:%Y-%m-%d %H:00} {scope or '-'} = {self.value}"
