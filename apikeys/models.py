"""Agent API keys: only the SHA-256 of a key is stored; the secret is shown once (spec §2, §5)."""

from django.db import models
from django.utils import timezone

from core.models import CASEFOLD_KEY_MAX_LENGTH, CaseFoldKeyField, ExactCharField, TimeStampedModel


def computed_status(disabled_at, expires_at, now) -> str:
    """A key's status (spec §2.4): disabled wins over expired; both are computed, never stored."""
    if disabled_at is not None:
        return ApiKey.Status.DISABLED.value
    if expires_at is not None and expires_at <= now:
        return ApiKey.Status.EXPIRED.value
    return ApiKey.Status.ACTIVE.value


class ApiKey(TimeStampedModel):
    """An agent's API key (spec §5.1). Its status is computed on read from `disabled_at`/`expires_at`."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        DISABLED = "disabled"
        EXPIRED = "expired"

    id = ExactCharField(primary_key=True, max_length=32, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="api_keys")
    agent = models.ForeignKey("agents.Agent", on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    name_key = CaseFoldKeyField(max_length=CASEFOLD_KEY_MAX_LENGTH, editable=False)
    description = models.TextField(max_length=2000, null=True, blank=True)
    key_hash = ExactCharField(max_length=64, unique=True, editable=False)
    key_hint = ExactCharField(max_length=16, editable=False)
    previous_key_hash = ExactCharField(max_length=64, null=True, blank=True, db_index=True, editable=False)
    previous_key_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    permissions = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    usage_count = models.PositiveBigIntegerField(default=0, editable=False)
    # Write-behind bookkeeping with Redis (apikeys.usage): the Redis running total of `usage_epoch` that
    # `usage_count` already includes. A flush adds `total - usage_flushed` and sets both in one UPDATE, so
    # applying the same total twice adds nothing (never double-counted).
    usage_flushed = models.PositiveBigIntegerField(default=0, editable=False)
    usage_epoch = ExactCharField(max_length=32, default="", blank=True, editable=False)
    disabled_at = models.DateTimeField(null=True, blank=True, editable=False)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name_key"], name="apikey_name_unique_ci_per_tenant",
                                    violation_error_message="An API key with this name already exists in this tenant."),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def api_key_id(self) -> str:
        return self.id

    def status_at(self, now) -> str:
        """The computed status (spec §2.4) at `now`."""
        return computed_status(self.disabled_at, self.expires_at, now)

    @property
    def status(self) -> str:
        return self.status_at(timezone.now())

    @property
    def previous_secret_valid(self) -> bool:
        return bool(self.previous_key_hash and self.previous_key_expires_at
                    and self.previous_key_expires_at > timezone.now())
