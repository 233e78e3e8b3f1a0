"""Schema repairs shared by migrations.

`restore_foreign_key_nullability`: on MySQL/MariaDB, Django's schema editor, when it changes the collation of
a primary key (the binary-collation migrations of `tenants` and `agents`), re-types every foreign-key column
that points at it, and pairs the old and new related fields by position. Foreign keys declared with
`related_name="+"` are not kept in a stable order, so a column could be re-typed with another foreign key's
NULL/NOT NULL: seen on MariaDB, `activity_usagelog.tenant_id` NOT NULL and `activity_agentactivity.tenant_id`
nullable, in some runs of the same migrations (the usage log's id reservations, whose rows have no tenant,
then failed). The repair compares every foreign-key column of the given models with its field and puts back
the field's nullability, keeping the column's type and collation. Elsewhere it does nothing.
"""


def restore_foreign_key_nullability(schema_editor, models) -> None:
    connection = schema_editor.connection
    if connection.vendor != "mysql":
        return
    quote = schema_editor.quote_name
    with connection.cursor() as cursor:
        for model in models:
            table = model._meta.db_table
            for field in model._meta.concrete_fields:
                if not field.is_relation or not field.many_to_one:
                    continue
                cursor.execute(
                    "SELECT IS_NULLABLE, COLUMN_TYPE, CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND COLUMN_NAME = %s", [table, field.column])
                row = cursor.fetchone()
                if row is None or (row[0] == "YES") == field.null:
                    continue
                nullable, column_type, charset, collation = row
                text = f" CHARACTER SET {charset} COLLATE {collation}" if charset and collation else ""
                cursor.execute(f"ALTER TABLE {quote(table)} MODIFY {quote(field.column)} {column_type}{text} "
                               f"{'NULL' if field.null else 'NOT NULL'}")


def restore_foreign_key_nullability_operation(app_label: str, *model_names: str):
    """The migration operation running the repair on `app_label`'s models `model_names` (historical)."""
    from django.db import migrations

    def repair(apps, schema_editor):
        restore_foreign_key_nullability(schema_editor, [apps.get_model(app_label, name) for name in model_names])

    return migrations.RunPython(repair, migrations.RunPython.noop, elidable=True)
