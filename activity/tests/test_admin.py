"""Admin smoke tests: read-only lists with filters and date hierarchy."""

import pytest
from django.contrib.admin.utils import quote

from activity.tests.factories import AgentActivityFactory, UsageLogFactory

pytestmark = pytest.mark.django_db


def test_usage_log_changelist(admin_client):
    entry = UsageLogFactory(action="login")
    response = admin_client.get("/admin/activity/usagelog/")
    assert response.status_code == 200
    assert b"login" in response.content
    assert admin_client.get("/admin/activity/usagelog/?q=login&action=login").status_code == 200
    assert admin_client.get(f"/admin/activity/usagelog/?timestamp__year={entry.timestamp.year}").status_code == 200
    assert admin_client.get(f"/admin/activity/usagelog/{entry.id}/change/").status_code == 200
    assert admin_client.get("/admin/activity/usagelog/add/").status_code == 403


def test_activity_changelist(admin_client):
    row = AgentActivityFactory()
    response = admin_client.get("/admin/activity/agentactivity/")
    assert response.status_code == 200
    assert row.agent_id.encode() in response.content
    assert admin_client.get(f"/admin/activity/agentactivity/?q={row.agent_id}").status_code == 200
    response = admin_client.post(f"/admin/activity/agentactivity/{quote(row.agent_id)}/delete/", {"post": "yes"})
    assert response.status_code == 403
