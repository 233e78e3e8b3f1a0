"""Read-only admin of the audit trail, with the changed fields as a before/after table."""

import json

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from audit.models import AuditEvent
from core.admin import ReadOnlyModelAdmin


def _shown(value) -> str:
    return "—" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


class _TextFilter(admin.SimpleListFilter):
    """An exact-match filter typed in the URL (`?tenant=tenant_…`); the sidebar lists the values of the
    current page of results so a click narrows to one of them."""

    field: str = ""

    def lookups(self, request, model_admin):
        values = (model_admin.get_queryset(request).order_by().values_list(self.field, flat=True).distinct()[:20])
        return [(value, value) for value in values if value]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.field: value}) if value else queryset


class TenantFilter(_TextFilter):
    title, parameter_name, field = _("tenant id"), "tenant", "tenant_id"


class ActorFilter(_TextFilter):
    title, parameter_name, field = _("actor"), "actor", "actor"


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyModelAdmin):
    """Read-only: events are written by the audited services and removed only by the retention purge
    (`manage.py purge_audit_events`)."""

    list_display = ("occurred_at", "actor", "action", "target_type", "target_id", "tenant_id", "summary")
    list_filter = ("action", "target_type", ActorFilter, TenantFilter)
    search_fields = ("=target_id", "=tenant_id", "=actor", "=request_id")
    date_hierarchy = "occurred_at"
    ordering = ("-occurred_at", "-id")
    fields = ("occurred_at", "actor", "action", "target_type", "target_id", "tenant_id", "request_id",
              "changes_table")
    readonly_fields = fields
    list_per_page = 50


    @admin.display(description=_("changed fields"))
    def summary(self, obj: AuditEvent) -> str:
        names = list(obj.changes or {})
        return ", ".join(names[:6]) + (" …" if len(names) > 6 else "")

    @admin.display(description=_("changes"))
    def changes_table(self, obj: AuditEvent):
        rows = format_html_join(
            "", "<tr><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            ((path, _shown(pair[0]), _shown(pair[1])) for path, pair in (obj.changes or {}).items()),
        )
        return format_html(
            '<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>',
            _("field"), _("before"), _("after"), rows,
        )
