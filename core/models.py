"""Abstract model pieces shared by every app."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class TimeStampedModel(models.Model):
    """`created_at`/`updated_at`. Not `auto_now`: services bump `updated_at` only when a stored value
    actually changed (spec §1.11), so the field is set explicitly by the writes that change something."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def save(self, *args, **kwargs):
        if self._state.adding and self.updated_at != self.created_at:
            self.updated_at = self.created_at
        super().save(*args, **kwargs)

    class Meta:
        abstract = True


class BinaryCollationMixin:
    """On MySQL/MariaDB, give the column the binary collation `utf8mb4_bin`.

    MariaDB's default utf8mb4 collations fold case and accents, so `userabc` and `UserAbc` would be the same
    conversation, user or action there (issue 12, item 1). SQLite compares bytes already and is left as is.
    Not `db_collation=`: that names the collation on every database, and SQLite has no `utf8mb4_bin`.
    A foreign key to such a primary key takes the same collation (Django copies the target's collation).
    """

    def db_parameters(self, connection):
        params = super().db_parameters(connection)
        if connection.vendor == "mysql":
            params["collation"] = "utf8mb4_bin"
        return params


class ExactCharField(BinaryCollationMixin, models.CharField):
    """A CharField compared exactly (byte for byte) on every database: identifiers, user ids, actions,
    conversation ids, model names, hashes — any text used in a lookup, a uniqueness rule or a grouping."""


class CaseFoldKeyField(BinaryCollationMixin, models.CharField):
    """The normalized (`str.casefold()`) copy of a name, holding its uniqueness constraint.

    MariaDB's default utf8mb4 collations are accent-insensitive (`café` = `cafe`), but the spec
    (§1.12) makes accents significant, so on MySQL/MariaDB the column uses a binary collation. SQLite
    compares bytes already. Expression indexes (`Lower(name)`) are not created by MariaDB, hence a column.

    Case folding can lengthen a name up to three times (`"ß"` folds to `"ss"`, `"ﬃ"` to `"ffi"`), so the
    column holds `CASEFOLD_KEY_MAX_LENGTH` characters for a 100-character name (issue 12, item 9).
    """


# The longest case folding of a 100-character name: no character folds to more than three (Unicode
# SpecialCasing/CaseFolding "F" mappings).
CASEFOLD_KEY_MAX_LENGTH = 300


def casefold_name(name: str) -> str:
    return name.casefold()


class OperatorToken(models.Model):
    """An operator's API token (spec §1.13), stored as a SHA-256 hash with a short display prefix.

    One token per user: `create_operator --rotate` (or the admin) replaces it, and the old one stops
    working at once. The token itself exists only in the answer that created it. `last_used_at` is
    refreshed at most once a minute (`core.authentication.LAST_USED_RESOLUTION`), not on every request.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="operator_token",
                                verbose_name=_("user"))
    key_hash = ExactCharField(_("token hash"), max_length=64, unique=True, editable=False,
                              help_text=_("SHA-256 of the token; the token itself is never stored."))
    prefix = ExactCharField(_("prefix"), max_length=16, editable=False,
                            help_text=_("The token's first characters, to recognise it."))
    created_at = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True,
                                      help_text=_("Empty: never. An expired token is refused like an unknown one."))
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("operator token")
        verbose_name_plural = _("operator tokens")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    def expired_at(self, now) -> bool:
        return self.expires_at is not None and self.expires_at <= now
