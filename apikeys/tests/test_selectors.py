"""The verification lookup returns plain `KeyRecord`s with the same Python values the ORM would give."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apikeys.models import ApiKey
from apikeys.selectors import KeyRecord, apikey_find_by_secret
from apikeys.tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


def test_record_values_match_the_model_row():
    now = timezone.now().replace(microsecond=123456)
    key = ApiKeyFactory(permissions=["chat", "config"], metadata={"team": "ops", "n": [1, 2]},
                        expires_at=now + timedelta(days=3), last_used_at=now, usage_count=7,
                        rate_limit_per_minute=60)
    found = apikey_find_by_secret(raw_key=key.raw_key, tenant_id=key.tenant_id, agent_id=key.agent_id)
    record, previous = found.record, found.using_previous_secret
    assert isinstance(record, KeyRecord) and previous is False
    row = ApiKey.objects.get(pk=key.pk)
    for name in ("id", "tenant_id", "agent_id", "key_hash", "permissions", "metadata", "expires_at",
                 "last_used_at", "usage_count", "rate_limit_per_minute", "disabled_at", "previous_key_expires_at"):
        assert getattr(record, name) == getattr(row, name), name
    assert record.expires_at.tzinfo is not None and record.pk == key.pk
    assert (record.tenant_status, record.agent_status) == ("active", "active")
    assert record.status_at(now) == row.status_at(now) == "active"
    assert record.status_at(now + timedelta(days=4)) == "expired"
    assert "hash" not in repr(record) and key.raw_key not in repr(record)


def test_ids_must_match_the_ones_parsed_from_the_key():
    key = ApiKeyFactory()
    assert apikey_find_by_secret(raw_key=key.raw_key, tenant_id=key.tenant_id, agent_id="agent_other") is None
