"""How long the fleet dashboard's figures take with a month of counters (no raw-log scan).

Usage: `.venv/bin/python bench/console_dashboard_bench.py [--agents 50] [--db sqlite:////tmp/bench_console.sqlite3]`
Seeds (into the given, throw-away database) tenants, agents, keys and one counter row per hour, agent and
metric for 30 days, then times `console.selectors.fleet_dashboard` and `GET /api/v2/usage/summary`
(median of 5 runs each) and prints the number of SQL statements of one dashboard build.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--db", default="sqlite:////tmp/bench_console.sqlite3")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.db
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maimconfig.settings.test")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from agents.models import Agent
    from console.selectors import fleet_dashboard
    from metering.models import UsageCounter
    from metering.services import hour_bucket
    from tenants.models import Tenant

    call_command("flush", interactive=False, verbosity=0) if "sqlite" not in args.db else None
    if "sqlite" in args.db:
        Path(args.db.removeprefix("sqlite:///")).unlink(missing_ok=True)
    call_command("migrate", verbosity=0)
    now = timezone.now()
    tenants = [Tenant(id=f"tenant_{i:012x}", tenant_name=f"T{i}", name_key=f"t{i}", tenant_type="enterprise")
               for i in range(max(1, args.agents // 5))]
    Tenant.objects.bulk_create(tenants)
    agents = [Agent(id=f"agent_{i:012x}", tenant=tenants[i % len(tenants)], name=f"A{i}", name_key=f"a{i}")
              for i in range(args.agents)]
    Agent.objects.bulk_create(agents)
    rows = []
    start = hour_bucket(now) - timedelta(days=30)
    for hour in range(30 * 24):
        bucket = start + timedelta(hours=hour)
        for agent in agents:
            for metric, dimension, value in (("validation.accepted", "", 40), ("chat.requests", "chat", 5),
                                             ("chat.tokens_in", "GPT-4o", 2000), ("chat.tokens_out", "GPT-4o", 500)):
                rows.append(UsageCounter(bucket=bucket, metric=metric, tenant_id=agent.tenant_id, agent_id=agent.id,
                                         dimension=dimension, value=value))
    # The daily rows counters_add keeps beside the hourly ones.
    for day in range(31):
        bucket = start.replace(hour=0) + timedelta(days=day)
        for agent in agents:
            for metric, dimension, value in (("validation.accepted", "", 40), ("chat.requests", "chat", 5),
                                             ("chat.tokens_in", "GPT-4o", 2000), ("chat.tokens_out", "GPT-4o", 500)):
                rows.append(UsageCounter(span="d", bucket=bucket, metric=metric, tenant_id=agent.tenant_id,
                                         agent_id=agent.id, dimension=dimension, value=value * 24))
    UsageCounter.objects.bulk_create(rows, batch_size=5000)
    print(f"seeded {len(rows)} counter rows ({args.agents} agents, {len(tenants)} tenants, 30 days)")

    with CaptureQueriesContext(connection) as queries:
        fleet_dashboard(now=now)
    print(f"statements per dashboard build: {len(queries)}")
    timings = []
    for _ in range(5):
        began = time.perf_counter()
        fleet_dashboard(now=now)
        timings.append(time.perf_counter() - began)
    print(f"fleet_dashboard: median {statistics.median(timings) * 1000:.1f} ms (5 runs)")

    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    user = get_user_model().objects.create_user("bench", password="x", is_staff=True)
    client = APIClient()
    client.force_authenticate(user)
    timings = []
    for _ in range(5):
        began = time.perf_counter()
        response = client.get("/api/v2/usage/summary", {"granularity": "hour"}, HTTP_HOST="127.0.0.1")
        assert response.status_code == 200, response.content[:300]
        timings.append(time.perf_counter() - began)
    print(f"GET /api/v2/usage/summary?granularity=hour: median {statistics.median(timings) * 1000:.1f} ms (5 runs)")


if __name__ == "__main__":
    main()
