"""Service-level rules that the API tests do not reach directly."""

import threading
import time

import pytest
from django.utils import timezone

from apikeys.models import ApiKey
from apikeys.services import apikey_record_use, apikey_update
from apikeys.tests.factories import ApiKeyFactory
from apikeys.usage import record_use_combined


def test_combined_counting_is_exact_and_batches_concurrent_uses():
    writes: list[int] = []

    def slow_write(key_id, count, last_used_at):
        writes.append(count)
        time.sleep(0.01)

    barrier = threading.Barrier(12)

    def use():
        barrier.wait()
        for _ in range(10):
            record_use_combined("key_x", timezone.now(), slow_write)

    threads = [threading.Thread(target=use) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(writes) == 120
    assert len(writes) < 120  # concurrent uses were combined


def test_combined_counting_hands_errors_to_the_callers():
    def failing(key_id, count, last_used_at):
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        record_use_combined("key_y", None or timezone.now(), failing)


@pytest.mark.django_db
def test_record_use_does_not_touch_updated_at():
    key = ApiKeyFactory()
    apikey_record_use(api_key_id=key.pk)
    row = ApiKey.objects.get(pk=key.pk)
    assert row.usage_count == 1 and row.updated_at == key.updated_at and row.last_used_at


@pytest.mark.django_db
def test_update_without_change_is_a_no_op():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    key = ApiKeyFactory(permissions=["chat"])
    with CaptureQueriesContext(connection) as ctx:
        apikey_update(api_key=key, data={"permissions": ["chat"], "status": "active"})
    assert [q["sql"] for q in ctx.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))] == []


def test_rate_limit_units_are_all_or_nothing():
    from django.core.cache import cache

    from apikeys import ratelimit

    cache.clear()
    now = 1_800_000_010.0
    assert ratelimit.consume("key_units", 5, units=3, now=now).count == 3
    refused = ratelimit.consume("key_units", 5, units=3, now=now)
    assert not refused.allowed and refused.count == 3  # nothing of the refused request was kept
    assert ratelimit.consume("key_units", 5, units=2, now=now).count == 5
    assert not ratelimit.consume("key_units", 5, now=now).allowed
    assert ratelimit.consume("key_units", 5, now=now + 60).count == 1  # next window


@pytest.mark.django_db
def test_record_use_counts_several_uses_in_one_update(django_assert_num_queries):
    key = ApiKeyFactory(usage_count=2)
    with django_assert_num_queries(1):
        apikey_record_use(api_key_id=key.pk, uses=3)
    key.refresh_from_db()
    assert key.usage_count == 5 and key.last_used_at is not None
