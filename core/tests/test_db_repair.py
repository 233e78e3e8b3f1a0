"""core.db.repair: a foreign-key column whose NULL/NOT NULL a primary-key collation change swapped on
MySQL/MariaDB gets its field's back, with its type and collation (the migrations activity 0005, chat 0003)."""

import pytest
from django.apps import apps
from django.db import connection

from core.db.repair import restore_foreign_key_nullability


def _column(table, column):
    with connection.cursor() as cursor:
        cursor.execute("SELECT IS_NULLABLE, COLLATION_NAME FROM information_schema.COLUMNS "
                       "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s", [table, column])
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True)
def test_a_swapped_nullability_is_put_back():
    if connection.vendor != "mysql":
        pytest.skip("the repair is for MySQL/MariaDB; elsewhere it does nothing")
    models = [apps.get_model("activity", "AgentActivity"), apps.get_model("activity", "UsageLog")]
    with connection.cursor() as cursor:  # the state seen after some runs of the binary-collation migrations
        cursor.execute("ALTER TABLE activity_usagelog MODIFY tenant_id varchar(32) "
                       "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL")
        cursor.execute("ALTER TABLE activity_agentactivity MODIFY tenant_id varchar(32) "
                       "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL")
    with connection.schema_editor() as editor:
        restore_foreign_key_nullability(editor, models)
    assert _column("activity_usagelog", "tenant_id") == ("YES", "utf8mb4_bin")
    assert _column("activity_agentactivity", "tenant_id") == ("NO", "utf8mb4_bin")
    with connection.schema_editor() as editor:  # nothing left to do: a second pass changes nothing
        restore_foreign_key_nullability(editor, models)
    assert _column("activity_usagelog", "tenant_id") == ("YES", "utf8mb4_bin")
