"""Tenant routes (spec §3): validate -> service -> serialize."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import viewsets

from core.api import ok, paginated
from core.exceptions import tenant_resolved
from core.openapi import envelope, paginated_envelope, parse_query
from tenants import selectors, services
from tenants.serializers import (
    TenantCreateInputSerializer,
    TenantDeletedOutputSerializer,
    TenantFilterSerializer,
    TenantOutputSerializer,
    TenantUpdateInputSerializer,
)

_CREATE_EXAMPLE = OpenApiExample(
    "Create a tenant",
    value={"tenant_name": "Acme Robotics", "tenant_type": "enterprise", "contact_email": "ops@acme.example"},
    request_only=True,
)


@extend_schema_view(
    list=extend_schema(summary="List tenants", parameters=[TenantFilterSerializer],
                       responses=paginated_envelope(TenantOutputSerializer)),
    retrieve=extend_schema(summary="Get a tenant", responses=envelope(TenantOutputSerializer)),
    create=extend_schema(summary="Create a tenant", request=TenantCreateInputSerializer,
                         responses=envelope(TenantOutputSerializer), examples=[_CREATE_EXAMPLE]),
    update=extend_schema(summary="Update a tenant (partial)", request=TenantUpdateInputSerializer,
                         responses=envelope(TenantOutputSerializer)),
    partial_update=extend_schema(summary="Update a tenant (partial)", request=TenantUpdateInputSerializer,
                                 responses=envelope(TenantOutputSerializer)),
    destroy=extend_schema(summary="Delete a tenant and everything it owns",
                          responses=envelope(TenantDeletedOutputSerializer)),
)
class TenantViewSet(viewsets.GenericViewSet):
    lookup_field = "tenant_id"
    lookup_value_regex = "[^/]+"

    def list(self, request):
        filters = parse_query(request, TenantFilterSerializer)
        return paginated(self, selectors.tenant_list(**filters), TenantOutputSerializer, message="Tenants listed")

    def create(self, request):
        serializer = TenantCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tenant = services.tenant_create(**serializer.validated_data)
        return ok(TenantOutputSerializer(tenant).data, message="Tenant created", tenant_id=tenant.pk)

    def retrieve(self, request, tenant_id=None):
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        return ok(TenantOutputSerializer(tenant).data, message="Tenant retrieved", tenant_id=tenant.pk)

    def update(self, request, tenant_id=None):
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        serializer = TenantUpdateInputSerializer(data=request.data, partial=True)
        with tenant_resolved(tenant.pk):
            serializer.is_valid(raise_exception=True)
        tenant = services.tenant_update(tenant=tenant, data=serializer.validated_data)
        return ok(TenantOutputSerializer(tenant).data, message="Tenant updated", tenant_id=tenant.pk)

    partial_update = update

    def destroy(self, request, tenant_id=None):
        tenant = selectors.tenant_get(tenant_id=tenant_id)
        result = services.tenant_delete(tenant=tenant)
        return ok(TenantDeletedOutputSerializer(result).data, message="Tenant deleted", tenant_id=result["id"])
