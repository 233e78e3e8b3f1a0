from datetime import datetime, timedelta, timezone

import pytest
from django.db import transaction

from core.testing import run_concurrently
from metering.models import UsageCounter
from metering.services import Increment, counter_add, counters_add, hour_bucket

T0 = datetime(2026, 11, 20, 10, 17, 42, 123456, tzinfo=timezone.utc)


def _values(span="h"):
    return {(c.bucket, c.metric, c.tenant_id, c.agent_id, c.api_key_id, c.dimension): c.value
            for c in UsageCounter.objects.filter(span=span)}


def test_hour_bucket_truncates_to_the_utc_hour():
    cst = timezone(timedelta(hours=8))
    assert hour_bucket(datetime(2026, 11, 20, 18, 59, 59, tzinfo=cst)) == datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
    assert hour_bucket(datetime(2026, 11, 20, 10, 30)) == datetime(2026, 11, 20, 10, tzinfo=timezone.utc)


@pytest.mark.django_db(transaction=True)
def test_counters_add_sums_in_the_database_per_hour_and_scope():
    base = {"tenant_id": "tenant_a", "agent_id": "agent_a"}
    touched = counters_add(increments=[
        Increment(metric="chat.tokens_in", value=100, at=T0, dimension="gpt-4o", **base),
        Increment(metric="chat.tokens_in", value=20, at=T0 + timedelta(minutes=30), dimension="gpt-4o", **base),
        Increment(metric="chat.tokens_in", value=5, at=T0 + timedelta(hours=1), dimension="gpt-4o", **base),
        Increment(metric="chat.tokens_in", value=7, at=T0, dimension="GPT-4O", **base),
        Increment(metric="validation.accepted", at=T0, tenant_id="tenant_a", api_key_id="key_1"),
        Increment(metric="validation.accepted", value=0, at=T0),
    ])
    assert touched == 4 + 3  # four hourly counters, three daily ones (the two gpt-4o hours share a day)
    counters_add(increments=[Increment(metric="chat.tokens_in", value=1, at=T0, dimension="gpt-4o", **base)])
    hour = T0.replace(minute=0, second=0, microsecond=0)
    assert _values() == {
        (hour, "chat.tokens_in", "tenant_a", "agent_a", "", "gpt-4o"): 121,
        (hour + timedelta(hours=1), "chat.tokens_in", "tenant_a", "agent_a", "", "gpt-4o"): 5,
        # Model names differing only by case stay apart (binary collation on MariaDB).
        (hour, "chat.tokens_in", "tenant_a", "agent_a", "", "GPT-4O"): 7,
        (hour, "validation.accepted", "tenant_a", "", "key_1", ""): 1,
    }
    day = hour.replace(hour=0)
    assert _values("d") == {
        (day, "chat.tokens_in", "tenant_a", "agent_a", "", "gpt-4o"): 126,
        (day, "chat.tokens_in", "tenant_a", "agent_a", "", "GPT-4O"): 7,
        (day, "validation.accepted", "tenant_a", "", "key_1", ""): 1,
    }


@pytest.mark.django_db
def test_counters_add_joins_the_callers_transaction():
    with pytest.raises(RuntimeError), transaction.atomic():
        counter_add("chat.requests", tenant_id="t", dimension="chat", at=T0)
        raise RuntimeError
    assert UsageCounter.objects.count() == 0
    counter_add("chat.requests", tenant_id="t", dimension="chat", at=T0)
    assert [c.value for c in UsageCounter.objects.order_by("span")] == [1, 1]  # its day and its hour


@pytest.mark.django_db
def test_unknown_metric_and_non_integer_values_are_refused():
    with pytest.raises(ValueError):
        counters_add(increments=[Increment(metric="chat.request")])
    with pytest.raises(TypeError):
        counters_add(increments=[Increment(metric="chat.requests", value=1.5)])
    with pytest.raises(TypeError):
        counters_add(increments=[Increment(metric="chat.requests", value=True)])
    assert UsageCounter.objects.count() == 0


@pytest.mark.django_db
def test_many_distinct_keys_are_written_in_chunks():
    counters_add(increments=[Increment(metric="chat.requests", tenant_id=f"t{i}", at=T0) for i in range(1203)])
    assert UsageCounter.objects.filter(span="h").count() == UsageCounter.objects.filter(span="d").count() == 1203


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_lose_no_count():
    """Eight threads (own connections, own transactions) add to the same counters at once."""
    rounds = 25

    def work(i: int) -> None:
        for _ in range(rounds):
            with transaction.atomic():
                counters_add(increments=[
                    Increment(metric="chat.requests", tenant_id="tenant_a", dimension="chat", at=T0),
                    Increment(metric="chat.tokens_out", value=3, tenant_id="tenant_a", dimension="m", at=T0),
                    Increment(metric="chat.requests", tenant_id=f"tenant_{i}", dimension="chat", at=T0),
                ])

    run_concurrently(8, work)
    totals = {(c.metric, c.tenant_id): c.value for c in UsageCounter.objects.filter(span="h")}
    assert totals == {(c.metric, c.tenant_id): c.value for c in UsageCounter.objects.filter(span="d")}
    assert totals[("chat.requests", "tenant_a")] == 8 * rounds
    assert totals[("chat.tokens_out", "tenant_a")] == 8 * 3 * rounds
    assert sum(v for (m, t), v in totals.items() if m == "chat.requests") == 2 * 8 * rounds
