"""Operators' console for tenants; writes go through `tenants.services` like the API."""

from django.contrib import admin

from core.admin import ServiceModelAdmin
from tenants import services
from tenants.models import Tenant


@admin.register(Tenant)
class TenantAdmin(ServiceModelAdmin):
    list_display = ("tenant_name", "tenant_type", "status", "contact_email", "created_at")  # id: detail page
    list_filter = ("status", "tenant_type")
    search_fields = ("tenant_name", "id", "contact_email", "owner_id")
    readonly_fields = ("id", "created_at", "updated_at")
    fields = ("id", "tenant_name", "tenant_type", "status", "description", "contact_email", "tenant_config",
              "owner_id", "created_at", "updated_at")
    ordering = ("-created_at", "-id")

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data.get(name) for name in form.changed_data if name in form.cleaned_data}
        with self.service_call(request):
            if change:
                current = Tenant.objects.get(pk=obj.pk)
                services.tenant_update(tenant=current, data=data)
            else:
                created = services.tenant_create(
                    tenant_name=obj.tenant_name, tenant_type=obj.tenant_type, description=obj.description or None,
                    contact_email=obj.contact_email or None, tenant_config=obj.tenant_config,
                    owner_id=obj.owner_id or None,
                )
                obj.pk = created.pk
                if obj.status != Tenant.Status.ACTIVE:
                    services.tenant_update(tenant=created, data={"status": obj.status})

    def delete_model(self, request, obj):
        services.tenant_delete(tenant=obj)

    def delete_queryset(self, request, queryset):
        for tenant in queryset:
            services.tenant_delete(tenant=tenant)
