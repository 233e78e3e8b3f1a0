"""Admin for plugin settings: writes go through the services (same rules as the API)."""

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceModelAdmin
from plugins import services
from plugins.models import PluginSetting


class PluginSettingAdminForm(forms.ModelForm):
    class Meta:
        model = PluginSetting
        fields = ["tenant", "agent", "plugin_name", "enabled", "config"]

    def clean_config(self):
        config = self.cleaned_data.get("config")
        if config is None:
            return {}
        if not isinstance(config, dict):
            raise forms.ValidationError(_("Must be a JSON object."))
        return config

    def clean(self):
        cleaned = super().clean()
        tenant, agent = cleaned.get("tenant"), cleaned.get("agent")
        if tenant and agent and agent.tenant_id != tenant.pk:
            self.add_error("agent", "The agent must belong to the tenant.")
        return cleaned

    def validate_unique(self):
        """Uniqueness is the service's upsert (an existing triple is updated, never duplicated)."""


@admin.register(PluginSetting)
class PluginSettingAdmin(ServiceModelAdmin):
    form = PluginSettingAdminForm
    list_display = ("plugin_name", "tenant_id", "agent_id", "scope", "enabled", "updated_at")  # id: detail page
    list_filter = ("enabled", "plugin_name", "tenant")
    search_fields = ("id", "plugin_name", "tenant__id", "tenant__tenant_name", "agent__id", "agent__name")
    readonly_fields = ("id", "created_at", "updated_at")
    list_select_related = ("tenant", "agent")
    raw_id_fields = ("tenant", "agent")
    ordering = ("-created_at", "-id")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:  # tenant, agent and plugin name identify the row
            return (*self.readonly_fields, "tenant", "agent", "plugin_name")
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        with self.service_call(request):
            if change:
                stored = PluginSetting.objects.get(pk=obj.pk)  # `obj` already carries the form's values
                data = {name: form.cleaned_data[name] for name in ("enabled", "config") if name in form.cleaned_data}
                updated = services.plugin_setting_update(setting=stored, data=data)
                obj.updated_at = updated.updated_at
            else:
                setting, created = services.plugin_setting_upsert(
                    tenant_id=obj.tenant_id, agent_id=obj.agent_id, plugin_name=obj.plugin_name,
                    enabled=obj.enabled, config=obj.config)
                obj.pk, obj.agent_scope, obj.created_at = setting.pk, setting.agent_scope, setting.created_at
                if not created:
                    messages.info(request, "A setting for this plugin already existed; it was updated.")

    def delete_model(self, request, obj):
        services.plugin_setting_delete(setting=obj)

    def delete_queryset(self, request, queryset):
        for setting in queryset:
            services.plugin_setting_delete(setting=setting)
