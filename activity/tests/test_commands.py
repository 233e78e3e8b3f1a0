"""`manage.py purge_expired_activity` (spec §7.4)."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from activity.management.commands.purge_expired_activity import parse_older_than
from activity.models import AgentActivity
from activity.tests.factories import AgentActivityFactory

pytestmark = pytest.mark.django_db


def purge(*args):
    out = StringIO()
    call_command("purge_expired_activity", *args, stdout=out)
    return out.getvalue()


def test_purges_expired_rows_only(clock):
    live = AgentActivityFactory(ttl_seconds=60)  # expires at now + 60 s
    expired_long_ago = AgentActivityFactory(last_seen_at=clock.now - timedelta(hours=3), ttl_seconds=60)
    expired_just_now = AgentActivityFactory(last_seen_at=clock.now - timedelta(seconds=60), ttl_seconds=60)
    assert "Deleted 1" in purge("--older-than", "2h")  # only the row expired for longer than 2 h
    assert set(AgentActivity.objects.values_list("agent_id", flat=True)) == {live.agent_id, expired_just_now.agent_id}
    assert not AgentActivity.objects.filter(agent_id=expired_long_ago.agent_id).exists()
    assert "Deleted 1 expired activity row(s)" in purge()
    assert list(AgentActivity.objects.values_list("agent_id", flat=True)) == [live.agent_id]
    clock.advance(seconds=61)
    assert "Deleted 1" in purge()
    assert not AgentActivity.objects.exists()


def test_older_than_counts(clock):
    for hours in (1, 5, 30):
        AgentActivityFactory(last_seen_at=clock.now - timedelta(hours=hours), ttl_seconds=1)
    assert "Deleted 1 expired activity row(s) (expired for longer than 1 day, 0:00:00)" in purge("--older-than", "1d")
    assert "Deleted 1" in purge("--older-than", "PT2H")
    assert "Deleted 1" in purge()


@pytest.mark.parametrize("text, expected", [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("7d", 604800),
                                            ("1w", 604800), ("01:00:00", 3600), ("P1D", 86400)])
def test_parse_older_than(text, expected):
    assert parse_older_than(text) == timedelta(seconds=expected)


@pytest.mark.parametrize("text", ["soon", "-5m", "5y", ""])
def test_bad_older_than(text):
    with pytest.raises(CommandError):
        purge("--older-than", text)
