"""Existing agents get their current configuration document as version 1 (issue 17)."""

from django.db import migrations


def forwards(apps, schema_editor):
    Agent = apps.get_model("agents", "Agent")
    AgentConfigVersion = apps.get_model("agents", "AgentConfigVersion")
    batch = []
    for agent in Agent.objects.order_by("pk").only("pk", "config", "created_at").iterator(chunk_size=500):
        batch.append(AgentConfigVersion(agent_id=agent.pk, number=1, created_at=agent.created_at, actor="system",
                                        source="initial", document=agent.config or {}, changes={}))
        if len(batch) >= 500:
            AgentConfigVersion.objects.bulk_create(batch)
            batch = []
    if batch:
        AgentConfigVersion.objects.bulk_create(batch)
    Agent.objects.update(config_version=1)


def backwards(apps, schema_editor):
    apps.get_model("agents", "AgentConfigVersion").objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ("agents", "0003_config_versions"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
