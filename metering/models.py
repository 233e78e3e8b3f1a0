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
    """How much of `metric` happened in the hour (`span` "h") or the UTC day (`span` "d") starting at
    `bucket`.

    Every increment is added to both its hour and its day, so a 30-day view reads 30 rows per scope instead
    of 720 (the hourly rows serve the last hours and day views stay cheap however long the history).

    Not foreign keys: counters outlive the tenants, agents and keys they count, and the hot paths that
    add to them never read those rows. "" stands for "none" in the id and dimension columns, because
    NULLs are distinct in unique indexes (SQLite, MariaDB) and would defeat the upsert.
    Metric names and their dimensions are catalogued in `metering.metrics`.
    """

    class Span(models.TextChoices):
        HOUR = "h", _("hour")
        DAY = "d", _("day")

    id = models.BigAutoField(primary_key=True)
    span = models.CharField(_("span"), max_length=1, choices=Span.choices, default=Span.HOUR)
    bucket = models.DateTimeField(_("start (UTC)"))
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
                fields=["bucket", "span", "metric", "tenant_id", "agent_id", "api_key_id", "dimension"],
                name="usage_counter_unique_key",
                violation_error_message=_("A counter for this hour, metric and scope already exists."),
            ),
        ]
        indexes = [
            models.Index(fields=["span", "bucket"], name="usage_counter_span_bucket"),
            models.Index(fields=["tenant_id", "span", "bucket"], name="usage_counter_tenant_span"),
            models.Index(fields=["agent_id", "span", "bucket"], name="usage_counter_agent_span"),
        ]

    def __str__(self) -> str:
        scope = "/".join(part for part in (self.tenant_id, self.agent_id, self.api_key_id, self.dimension) if part)
        when = f"{self.bucket:%Y-%m-%d %H:00}" if self.span == self.Span.HOUR else f"{self.bucket:%Y-%m-%d}"
        return f"{self.metric} {when} {scope or '-'} = {self.value}"
