"""Operators' console for agents. Writes go through `agents.services`, with the API's validation:
the configuration document is shown masked and edited as JSON (it replaces the stored document; the
mask `********` keeps a stored provider key)."""

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.db.models import F
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ValidationError as DRFValidationError

from agents import configdoc, selectors, services
from agents.models import Agent
from agents.serializers import TagListField
from console.selectors import NEVER_SEEN, OFFLINE, ONLINE, agent_liveness_q
from console.config_editor import ConfigEditorWidget
from core.admin import ServiceModelAdmin, error_fields, error_lines
from core.exceptions import ApplicationError


class AgentAdminForm(forms.ModelForm):
    config = forms.JSONField(
        label=_("configuration"),
        required=False,
        help_text=_("The whole configuration document: what is saved replaces the stored one. It is checked "
                    "like an API write; a refused field is marked where it is. The right column shows the "
                    "configuration the bot gets: the stored values over the defaults."),
        widget=ConfigEditorWidget,
    )
    tags = forms.JSONField(label=_("tags"), required=False,
                           help_text=_('A JSON array of strings, e.g. ["support", "qq"].'))

    class Meta:
        model = Agent
        fields = ("tenant", "name", "description", "template_id", "status", "tags", "config")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["config"] = configdoc.mask_document(self.instance.config)
            self.fields["config"].widget.effective = configdoc.mask_document(
                configdoc.effective_document(self.instance.config))
            self.fields["tenant"].disabled = True
        else:
            self.initial.setdefault("config", {})
            self.initial.setdefault("tags", [])

    def clean_tags(self):
        try:
            return TagListField(allow_null=True).run_validation(self.cleaned_data.get("tags")) or []
        except DRFValidationError as exc:
            raise ValidationError(json.dumps(exc.detail, default=str)) from None

    def clean_config(self):
        value = self.cleaned_data.get("config")
        document = {} if value is None else value
        stored = self.instance.config if self.instance.pk else {}
        try:
            configdoc.prepare_write(stored or {}, document, mode="replace")
        except ApplicationError as exc:
            self.fields["config"].widget.errors = error_fields(exc)  # shown at their field in the editor
            raise ValidationError(error_lines(exc)) from None
        return document

    def _post_clean(self):
        # Validation of the model's own fields only; the document is checked in clean_config and the
        # uniqueness and state rules by the service, so the in-memory instance keeps its stored config.
        config = self.instance.config
        super()._post_clean()
        self.instance.config = config


class LivenessFilter(admin.SimpleListFilter):
    """Online (a real heartbeat within its TTL), offline (it expired), never seen (no bot ever sent one)."""

    title = _("liveness")
    parameter_name = "liveness"

    def lookups(self, request, model_admin):
        return [(ONLINE, _("online")), (OFFLINE, _("offline")), (NEVER_SEEN, _("never seen"))]

    def queryset(self, request, queryset):
        if self.value() in (ONLINE, OFFLINE, NEVER_SEEN):
            return queryset.filter(agent_liveness_q(self.value(), now=timezone.now()))
        return queryset


_LIVENESS_LABELS = {ONLINE: _("online"), OFFLINE: _("offline"), NEVER_SEEN: _("never seen")}
_LIVENESS_COLORS = {ONLINE: "#059669", OFFLINE: "#dc2626", NEVER_SEEN: "#6b7280"}


@admin.register(Agent)
class AgentAdmin(ServiceModelAdmin):
    form = AgentAdminForm
    # Fits 1366 px: the id, description and timestamps are on the detail page (and searchable).
    list_display = ("name", "tenant", "status", "liveness", "last_seen_at")
    list_filter = (LivenessFilter, "status", "tenant")
    search_fields = ("name", "id", "tenant__tenant_name", "tenant__id", "description")
    list_select_related = ("tenant",)
    readonly_fields = ("id", "online_status", "config_warnings", "config_history", "created_at", "updated_at")
    ordering = ("-created_at", "-id")

    def get_fields(self, request, obj=None):
        fields = ["tenant", "name", "description", "template_id", "status", "tags", "config"]
        if obj is not None:
            fields = ["id", *fields, "config_warnings", "config_history", "online_status", "created_at", "updated_at"]
        return fields

    def get_queryset(self, request):
        return (selectors.agents_with_liveness().select_related("tenant")
                .annotate(activity_heartbeat_at=F("activity__heartbeat_at")))

    @staticmethod
    def liveness_state(obj) -> str:
        heartbeat_at = getattr(obj, "activity_heartbeat_at", None)
        if heartbeat_at is None:
            return NEVER_SEEN
        expires_at = getattr(obj, "activity_expires_at", None)
        return ONLINE if expires_at is not None and expires_at > timezone.now() else OFFLINE

    @admin.display(description=_("liveness"), ordering="activity__expires_at")
    def liveness(self, obj):
        state = self.liveness_state(obj)
        return format_html('<span class="liveness liveness-{}" style="color: {}">● {}</span>', state,
                           _LIVENESS_COLORS[state], _LIVENESS_LABELS[state])

    @admin.display(description=_("last heartbeat"), ordering="activity__heartbeat_at")
    def last_seen_at(self, obj):
        return getattr(obj, "activity_heartbeat_at", None)

    @admin.display(description=_("liveness"))
    def online_status(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        state = self.liveness_state(obj)
        seen = getattr(obj, "activity_heartbeat_at", None)
        if seen is None:
            return _LIVENESS_LABELS[state]
        return _("%(state)s; last heartbeat %(seen)s") % {"state": _LIVENESS_LABELS[state], "seen": seen}

    @admin.display(description=_("config warnings"))
    def config_warnings(self, obj):
        warnings = configdoc.document_warnings(obj.config or {}) if obj and obj.pk else []
        if not warnings:
            return _("none")
        return format_html("<pre>{}</pre>", "\n".join(f"{w['path']}: {w['code']} — {w['message']}"
                                                      for w in warnings))

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        with self.service_call(request):
            if change:
                current = Agent.objects.get(pk=obj.pk)
                fields = {name: data[name] for name in ("name", "description", "template_id", "status", "tags")
                          if name in form.changed_data}
                if fields:
                    services.agent_update(agent=current, data=fields)
                if "config" in form.changed_data:
                    services.agent_config_write(agent=current, document=data["config"] or {}, mode="replace")
            else:
                created = services.agent_create(
                    tenant_id=data["tenant"].pk, name=data["name"], description=data.get("description") or None,
                    template_id=data.get("template_id") or None, config=data.get("config") or {},
                    tags=data.get("tags") or [],
                )
                obj.pk = created.pk
                if data.get("status") and data["status"] != Agent.Status.ACTIVE:
                    services.agent_update(agent=created, data={"status": data["status"]})

    def delete_model(self, request, obj):
        services.agent_delete(agent=obj)

    def delete_queryset(self, request, queryset):
        for agent in queryset:
            services.agent_delete(agent=agent)

    @admin.display(description=_("configuration history"))
    def config_history(self, obj):
        """Links to the agent's configuration versions (issue 17; admin in agents/admin_versions.py)."""
        if obj is None or obj.pk is None:
            return "-"
        versions = reverse("admin:agents_agentconfigversion_changelist") + f"?agent__id__exact={obj.pk}"
        compare = reverse("admin:agents_agentconfigversion_compare", args=[obj.pk])
        return format_html('{} <a href="{}">{}</a> · <a href="{}">{}</a>',
                           _("version %(n)d;") % {"n": obj.config_version}, versions, _("all versions"),
                           compare, _("compare versions"))


from agents import admin_versions  # noqa: E402,F401  (registers the configuration versions' admin)
