"""Daily counters for the hourly ones written before 0002 (every increment now goes to both)."""

from collections import defaultdict

from django.db import migrations


def forwards(apps, schema_editor):
    UsageCounter = apps.get_model("metering", "UsageCounter")
    sums = defaultdict(int)
    for row in UsageCounter.objects.filter(span="h").iterator(chunk_size=5000):
        key = (row.bucket.replace(hour=0, minute=0, second=0, microsecond=0), row.metric, row.tenant_id,
               row.agent_id, row.api_key_id, row.dimension)
        sums[key] += row.value
    UsageCounter.objects.bulk_create(
        [UsageCounter(span="d", bucket=bucket, metric=metric, tenant_id=tenant_id, agent_id=agent_id,
                      api_key_id=api_key_id, dimension=dimension, value=value)
         for (bucket, metric, tenant_id, agent_id, api_key_id, dimension), value in sums.items()],
        batch_size=1000,
    )


def backwards(apps, schema_editor):
    apps.get_model("metering", "UsageCounter").objects.filter(span="d").delete()


class Migration(migrations.Migration):
    dependencies = [("metering", "0002_hourly_and_daily_spans")]
    operations = [migrations.RunPython(forwards, backwards)]
