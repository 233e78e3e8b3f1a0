"""The heartbeat's hot-path shortcuts agree with the serializers they stand in for."""

from datetime import timedelta

import pytest
from django.utils import timezone

from activity.models import AgentActivity
from activity.serializers import (
    ActivityOutputSerializer,
    HeartbeatInputSerializer,
    activity_representation,
    heartbeat_fast_validate,
)

BODIES = [
    {}, {"ttl_seconds": 1}, {"ttl_seconds": 604800}, {"ttl_seconds": 0}, {"ttl_seconds": 604801},
    {"ttl_seconds": True}, {"ttl_seconds": 5.0}, {"ttl_seconds": "5"}, {"ttl_seconds": None},
    {"tenant_id": "t", "agent_id": "a"}, {"tenant_id": " t"}, {"tenant_id": ""}, {"tenant_id": None},
    {"tenant_id": 1}, {"agent_id": "x" * 200}, {"agent_id": "x" * 201}, {"agent_id": ["a"]},
    {"tenant_id": "t", "agent_id": "a", "ttl_seconds": 30, "api_key": "mmc_x", "extra": 1},
]


@pytest.mark.parametrize("body", BODIES)
def test_fast_validation_is_a_subset_with_the_same_result(body):
    fast = heartbeat_fast_validate(body)
    serializer = HeartbeatInputSerializer(data=body)
    if fast is not None:
        assert serializer.is_valid(), serializer.errors
        expected = {k: v for k, v in serializer.validated_data.items() if k != "api_key"}
        assert fast == expected


def test_representation_matches_the_output_serializer():
    now = timezone.now()
    for expires in (now + timedelta(seconds=30), now - timedelta(seconds=1)):
        activity = AgentActivity(agent_id="agent_x", tenant_id="tenant_y", last_seen_at=now, ttl_seconds=30,
                                 expires_at=expires)
        assert activity_representation(activity) == ActivityOutputSerializer(activity).data
