"""Admin smoke tests: changelist, search, add and change go through the tenant services."""

import pytest
from django.contrib.admin.utils import quote

from tenants.models import Tenant
from tenants.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def test_changelist_filters_and_search(admin_client):
    TenantFactory(tenant_name="Findable Co", status="suspended")
    TenantFactory(tenant_name="Other")
    response = admin_client.get("/admin/tenants/tenant/?q=findable")
    assert response.status_code == 200
    assert b"Findable Co" in response.content and b"Other" not in response.content
    response = admin_client.get("/admin/tenants/tenant/?status__exact=suspended")
    assert b"Findable Co" in response.content


def test_add_goes_through_the_service(admin_client):
    response = admin_client.post("/admin/tenants/tenant/add/", {
        "tenant_name": "Admin Made", "tenant_type": "personal", "status": "active", "tenant_config": "null",
    })
    assert response.status_code == 302
    tenant = Tenant.objects.get(tenant_name="Admin Made")
    assert tenant.id.startswith("tenant_") and tenant.name_key == "admin made"


def test_duplicate_name_in_admin_is_an_error_message_not_a_500(admin_client):
    TenantFactory(tenant_name="Taken")
    response = admin_client.post("/admin/tenants/tenant/add/", {
        "tenant_name": "TAKEN", "tenant_type": "personal", "status": "active", "tenant_config": "null",
    })
    assert response.status_code == 200
    assert b"already exists" in response.content and b'value="TAKEN"' in response.content
    assert Tenant.objects.filter(name_key="taken").count() == 1


def test_change_updates_through_the_service(admin_client):
    tenant = TenantFactory(tenant_name="Before")
    response = admin_client.post(f"/admin/tenants/tenant/{quote(tenant.pk)}/change/", {
        "tenant_name": "After", "tenant_type": tenant.tenant_type, "status": "active", "tenant_config": "null",
    })
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.tenant_name == "After" and tenant.name_key == "after"
    assert tenant.updated_at > tenant.created_at


def test_refused_change_keeps_the_typed_values_and_saves_nothing(admin_client):
    TenantFactory(tenant_name="Taken")
    tenant = TenantFactory(tenant_name="Mine", description="before")
    url = f"/admin/tenants/tenant/{quote(tenant.pk)}/change/"
    response = admin_client.post(url, {
        "tenant_name": "taken", "tenant_type": "personal", "status": "active", "tenant_config": "null",
        "description": "edited but refused",
    })
    assert response.status_code == 200
    assert b"already exists" in response.content
    assert b"edited but refused" in response.content and b'value="taken"' in response.content
    tenant.refresh_from_db()
    assert (tenant.tenant_name, tenant.description) == ("Mine", "before")
