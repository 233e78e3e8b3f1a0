"""Puts back the NULL/NOT NULL of this app's foreign-key columns where the primary-key collation changes of
`tenants` and `agents` may have swapped them on MySQL/MariaDB (core/db/repair.py). No change of state."""

from django.db import migrations

from core.db.repair import restore_foreign_key_nullability_operation


class Migration(migrations.Migration):

    dependencies = [
        ("activity", "0004_heartbeat_at"),
        ("tenants", "0002_binary_collation"),
        ("agents", "0005_binary_collation_more"),
    ]

    operations = [restore_foreign_key_nullability_operation("activity", "AgentActivity", "UsageLog")]
