"""Hash the operator tokens issued by DRF's `authtoken` before tokens were stored hashed (spec §1.13).

Each clear token of `authtoken_token` becomes an `OperatorToken` holding its SHA-256 and its first 12
characters, so existing tokens keep working; the clear rows are then deleted. ONE-WAY: the clear tokens are
gone, so the reverse migration only drops the hashed copies (nobody can get a clear token back; issue new
ones with `manage.py create_operator USER --rotate`). The `authtoken` app is no longer installed; its table
is read with plain SQL when it exists and left empty.
"""

import hashlib
from datetime import timezone as dt_timezone

from django.db import migrations
from django.utils import timezone
from django.utils.dateparse import parse_datetime

DRF_TABLE = "authtoken_token"


def hash_existing_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if DRF_TABLE not in connection.introspection.table_names():
        return
    OperatorToken = apps.get_model("core", "OperatorToken")
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {q('key')}, {q('user_id')}, {q('created')} FROM {q(DRF_TABLE)}")
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        if isinstance(created, str):  # SQLite answers text through a plain cursor
            created = parse_datetime(created)
        if created is None:
            created = timezone.now()
        elif timezone.is_naive(created):  # stored in UTC (USE_TZ)
            created = created.replace(tzinfo=dt_timezone.utc)
        OperatorToken.objects.update_or_create(
            user_id=user_id,
            defaults={"key_hash": hashlib.sha256(key.encode("utf-8")).hexdigest(), "prefix": key[:12],
                      "created_at": created},
        )
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {q(DRF_TABLE)}")


def drop_hashed_copies(apps, schema_editor):
    """The clear tokens cannot be restored: operators get new tokens (create_operator --rotate)."""
    apps.get_model("core", "OperatorToken").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("core", "0001_operator_token")]

    operations = [migrations.RunPython(hash_existing_tokens, drop_hashed_copies)]
