"""Admin: writes through the admin are audited as the logged-in operator; the audit admin is read-only
with filters and a readable diff."""

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from audit.models import AuditEvent
from audit.tests.factories import AuditEventFactory
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def test_admin_write_records_one_event_as_the_logged_in_operator(admin_client, admin_user):
    tenant = TenantFactory(tenant_name="Before")
    response = admin_client.post(reverse("admin:tenants_tenant_change", args=[quote(tenant.pk)]), {
        "tenant_name": "After", "tenant_type": tenant.tenant_type, "status": "active", "description": "",
        "contact_email": "", "tenant_config": "null", "owner_id": ""})
    assert response.status_code == 302, response.content[:2000]
    event = AuditEvent.objects.get()
    assert (event.actor, event.action, event.target_id) == (f"operator:{admin_user.username}", "tenant.update",
                                                           tenant.pk)
    assert event.changes["tenant_name"] == ["Before", "After"]
    assert event.request_id  # the admin request's id


def test_audit_admin_is_read_only_with_filters_and_a_diff_table(admin_client):
    event = AuditEventFactory(actor="operator:alice", changes={"description": ["<b>old</b>", "new"],
                                                                "api_key": ["********", "********"]})
    AuditEventFactory(actor="command:issue_api_key", action="api_key.create", target_type="api_key")
    changelist = reverse("admin:audit_auditevent_changelist")
    assert admin_client.get(changelist).status_code == 200
    filtered = admin_client.get(changelist, {"actor": "operator:alice"})
    assert filtered.status_code == 200 and filtered.context["cl"].result_count == 1
    assert admin_client.get(changelist, {"action__exact": "api_key.create"}).context["cl"].result_count == 1
    assert admin_client.get(changelist, {"tenant": event.tenant_id}).context["cl"].result_count == 1
    assert admin_client.get(changelist, {"q": event.target_id}).context["cl"].result_count == 1
    detail = admin_client.get(reverse("admin:audit_auditevent_change", args=[quote(event.pk)]))
    html = detail.content.decode()
    assert detail.status_code == 200
    assert "<code>description</code>" in html and "&lt;b&gt;old&lt;/b&gt;" in html and "<b>old</b>" not in html
    assert admin_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert admin_client.post(reverse("admin:audit_auditevent_delete", args=[quote(event.pk)]), {"post": "yes"}
                             ).status_code == 403
    assert AuditEvent.objects.count() == 2


def test_conversation_deleted_in_the_admin_is_audited(admin_client, admin_user):
    from chat.tests.factories import ChatConversationFactory

    conversation = ChatConversationFactory()
    response = admin_client.post(reverse("admin:chat_chatconversation_delete", args=[quote(conversation.pk)]),
                                 {"post": "yes"})
    assert response.status_code == 302
    event = AuditEvent.objects.get()
    assert (event.actor, event.action, event.target_type, event.tenant_id) == (
        f"operator:{admin_user.username}", "conversation.delete", "conversation", conversation.tenant_id)
    assert event.changes["conversation_id"] == [conversation.conversation_id, None]
