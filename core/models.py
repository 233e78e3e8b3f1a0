"""Abstract model pieces shared by every app."""

from django.db import models
from django.utils import timezone


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


class CaseFoldKeyField(models.CharField):
    """The normalized (`str.casefold()`) copy of a name, holding its uniqueness constraint.

    MariaDB's default utf8mb4 collations are accent-insensitive (`café` = `cafe`), but the spec
    (§1.12) makes accents significant, so on MySQL/MariaDB the column uses a binary collation. SQLite
    compares bytes already. Expression indexes (`Lower(name)`) are not created by MariaDB, hence a column.
    """

    def db_parameters(self, connection):
        params = super().db_parameters(connection)
        if connection.vendor == "mysql":
            params["collation"] = "utf8mb4_bin"
        return params


def casefold_name(name: str) -> str:
    return name.casefold()
