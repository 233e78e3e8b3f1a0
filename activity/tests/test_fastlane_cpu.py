"""The fast lanes' CPU shortcuts agree with what they replace: the heartbeat's representation without DRF's
time-zone conversion, the read-cache generations the heartbeat lane bumps on its loop (the same script, the
same names, after the commit), and `core.generations.deferred`."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from activity import fastlane
from activity.models import AgentActivity
from activity.serializers import ActivityOutputSerializer, activity_representation
from core import generations


def test_activity_representation_is_the_serializers():
    seen = datetime(2026, 11, 24, 12, 0, 15, 123, tzinfo=UTC)
    row = AgentActivity(agent_id="agent_x", tenant_id="tenant_x", last_seen_at=seen, ttl_seconds=60,
                        expires_at=seen + timedelta(seconds=60))
    expected = ActivityOutputSerializer(row).data
    assert activity_representation(row, default_zone=True) == expected
    assert activity_representation(row) == expected
    with timezone.override("Asia/Shanghai"):  # another current zone: DRF's conversion, as the serializer
        assert activity_representation(row) == ActivityOutputSerializer(row).data


@pytest.mark.django_db(transaction=True)
def test_deferred_generations_in_autocommit_and_in_a_transaction(monkeypatch):
    bumped = []
    monkeypatch.setattr(generations, "_bumper", bumped.append)
    with generations.deferred() as names:
        generations.bump(["rc:a"])  # autocommit: handed to the caller, not bumped
        with transaction.atomic():
            generations.bump(["rc:b"])  # inside a transaction: after its commit, as always
        assert bumped == [("rc:b",)]
    assert names == ["rc:a"]
    generations.bump(["rc:c"])
    assert bumped == [("rc:b",), ("rc:c",)]


@pytest.mark.django_db(transaction=True)
def test_the_fast_heartbeat_bumps_the_activity_generation_before_it_answers(monkeypatch):
    from django.core.cache import cache

    from apikeys import redisstate
    from apikeys.tests.factories import ApiKeyFactory
    from core.testing import asgi_request, spy_on_fast_handler

    if not redisstate.enabled() or generations._bumper is None:
        pytest.skip("needs CACHE_URL=redis://… (the fast lane and the read cache exist only with Redis)")
    cache.clear()
    redisstate.breaker.reset()
    lane = spy_on_fast_handler(monkeypatch, "PUT", fastlane.ACTIVITY_PATH, fastlane.heartbeat_handler)
    key = ApiKeyFactory()
    name = redisstate.prefix() + generations.activity(key.tenant_id)

    def heartbeat():
        return asgi_request("PUT", fastlane.ACTIVITY_PATH, json_body={},
                            headers={"Authorization": f"Bearer {key.raw_key}"})

    assert heartbeat().status_code == 200  # Django (cold key)
    redisstate.client().set(name, 5)
    seen = []
    real_send_json = fastlane.lane.send_json

    async def send_json(*args, **kwargs):
        seen.append(int(redisstate.client().get(name)))
        await real_send_json(*args, **kwargs)

    monkeypatch.setattr(fastlane.lane, "send_json", send_json)
    assert heartbeat().status_code == 200
    assert lane.outcomes == [False, True]
    assert seen == [6]  # bumped once, before the answer left
    cache.clear()
