"""Operators' console for API keys. Writes go through `apikeys.services` like the API.

The secret is shown once, in a message, when a key is created here; the stored hashes are never
displayed. Tenant and agent are fixed after creation (the tenant is always the agent's).
"""


from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _, ngettext

from apikeys import services
from apikeys.admin_console import ApiKeyConsoleMixin, PermissionsWidget
from apikeys.models import ApiKey
from apikeys.selectors import status_q
from apikeys.serializers import parse_permission_text
from apikeys.usage import attach_pending
from core.admin import ServiceModelAdmin



class PermissionsFormField(forms.CharField):
    """Comma-separated permissions in the admin form, a list in the model."""

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return ", ".join(value)
        return value

    def to_python(self, value):
        try:
            return parse_permission_text(super().to_python(value) or "")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class ApiKeyAdminForm(forms.ModelForm):
    permissions = PermissionsFormField(
        required=False, widget=PermissionsWidget,
        help_text=_("Tick the known permissions (chat, config, plugins); add any other comma-separated."))

    class Meta:
        model = ApiKey
        fields = ("agent", "name", "description", "permissions", "expires_at", "rate_limit_per_minute",
                  "metadata")

    def clean_metadata(self):
        value = self.cleaned_data.get("metadata")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValidationError(_("Must be a JSON object."))
        return value

    def clean_rate_limit_per_minute(self):
        value = self.cleaned_data.get("rate_limit_per_minute")
        if value is not None and not 1 <= value <= 1_000_000:
            raise ValidationError(_("Must be between 1 and 1000000."))
        return value


class StatusFilter(admin.SimpleListFilter):
    """The computed status (spec §2.4), evaluated in the database."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return ApiKey.Status.choices

    def queryset(self, request, queryset):
        if self.value() in ApiKey.Status.values:
            return queryset.filter(status_q(self.value()))
        return queryset


class ExpiredFilter(admin.SimpleListFilter):
    title = "expired"
    parameter_name = "expired"

    def lookups(self, request, model_admin):
        return (("yes", "Yes"), ("no", "No"))

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(expires_at__isnull=False, expires_at__lte=now)
        if self.value() == "no":
            return queryset.exclude(expires_at__isnull=False, expires_at__lte=now)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(ApiKeyConsoleMixin, ServiceModelAdmin):
    form = ApiKeyAdminForm
    # Fits 1366 px: the id, tenant (the agent names it) and last use are on the detail page.
    list_display = ("name", "agent", "status_display", "key_hint", "usage_count_display", "expires_at")
    list_filter = (StatusFilter, "tenant", ExpiredFilter)
    list_select_related = ("tenant", "agent")
    search_fields = ("name", "id", "tenant__id", "tenant__tenant_name", "agent__id", "agent__name")
    ordering = ("-created_at", "-id")
    actions = ("rotate_keys", "disable_keys", "enable_keys", "delete_selected")
    readonly_fields = ("id", "tenant", "key_hint", "status_display", "usage_count_display", "last_used_at_display",
                       "disabled_at", "rotated_at", "previous_key_expires_at", "created_at", "updated_at")

    def get_fields(self, request, obj=None):
        editable = ["name", "description", "permissions", "expires_at", "rate_limit_per_minute", "metadata"]
        if obj is None:
            return ["agent", *editable]
        return ["id", "tenant", "agent", "key_hint", "status_display", *editable, "usage_count_display",
                "last_used_at_display",
                "disabled_at", "rotated_at", "previous_key_expires_at", "created_at", "updated_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return (*self.readonly_fields, "agent")

    @admin.display(description=_("status"))
    def status_display(self, obj: ApiKey) -> str:
        return obj.status

    # Stored + pending in Redis (spec §1.15), like the API shows.
    @admin.display(description=_("usage count"), ordering="usage_count")
    def usage_count_display(self, obj: ApiKey) -> int:
        attach_pending([obj])
        return obj.usage_count_shown

    @admin.display(description=_("last used at"), ordering="last_used_at")
    def last_used_at_display(self, obj: ApiKey):
        attach_pending([obj])
        return obj.last_used_at_shown

    # --- writes through the services ----------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        with self.service_call(request):
            if change:
                current = ApiKey.objects.get(pk=obj.pk)
                services.apikey_update(api_key=current, data={f: data[f] for f in form.changed_data if f in data})
            else:
                created, raw_key = services.apikey_create(
                    agent_id=data["agent"].pk, name=data["name"], description=data.get("description") or None,
                    permissions=data.get("permissions") or [], expires_at=data.get("expires_at"),
                    rate_limit_per_minute=data.get("rate_limit_per_minute"), metadata=data.get("metadata") or {},
                )
                obj.pk = created.pk
                # Shown by response_add on the one-time page (ApiKeyConsoleMixin), never in a message.
                request._console_new_secret = (created, raw_key)

    def delete_model(self, request, obj):
        services.apikey_delete(api_key=obj)

    def delete_queryset(self, request, queryset):
        for key in queryset:
            services.apikey_delete(api_key=key)

    @admin.action(description=_("Disable selected API keys"))
    def disable_keys(self, request, queryset):
        for key in queryset:
            services.apikey_disable(api_key=key)
        self.message_user(request, ngettext("%(count)d API key disabled.", "%(count)d API keys disabled.",
                                            len(queryset)) % {"count": len(queryset)}, messages.SUCCESS)

    @admin.action(description=_("Enable selected API keys"))
    def enable_keys(self, request, queryset):
        for key in queryset:
            services.apikey_enable(api_key=key)
        self.message_user(request, ngettext("%(count)d API key enabled.", "%(count)d API keys enabled.",
                                            len(queryset)) % {"count": len(queryset)}, messages.SUCCESS)
