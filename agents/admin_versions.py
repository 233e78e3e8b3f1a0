"""Admin of configuration versions (issue 17): an agent's version list, a side-by-side comparison of any
two versions, and "roll back to this version" (confirmed, through `agents.services.agent_config_rollback`).

Read-only otherwise: versions are written by the services only. Documents are shown masked.
"""

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _g
from django.utils.translation import gettext_lazy as _

from agents import configdoc, services
from agents.models import Agent, AgentConfigVersion
from audit.services import changes_between
from core.admin import ReadOnlyModelAdmin, error_lines
from core.exceptions import ApplicationError


def _pretty(document) -> str:
    return json.dumps(configdoc.mask_document(document or {}), indent=2, ensure_ascii=False, sort_keys=True)


def _shown(value) -> str:
    return "—" if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _diff_rows(changes: dict) -> list[tuple[str, str, str]]:
    return [(path, _shown(pair[0]), _shown(pair[1])) for path, pair in sorted((changes or {}).items())]


@admin.register(AgentConfigVersion)
class AgentConfigVersionAdmin(ReadOnlyModelAdmin):
    list_display = ("agent", "number", "created_at", "actor", "source", "restored_from", "compare_link")
    list_filter = ("source",)
    search_fields = ("=agent__id", "agent__name", "=actor", "=request_id")
    list_select_related = ("agent",)
    ordering = ("agent", "-number")
    fields = ("agent", "number", "created_at", "actor", "request_id", "source", "restored_from", "changes_table",
              "document_masked", "rollback_button")
    readonly_fields = fields


    def get_queryset(self, request):
        return super().get_queryset(request).defer("document")

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<int:pk>/rollback/", self.admin_site.admin_view(self.rollback_view), name="%s_%s_rollback" % info),
            path("compare/<str:agent_id>/", self.admin_site.admin_view(self.compare_view),
                 name="%s_%s_compare" % info),
            *super().get_urls(),
        ]

    @admin.display(description=_("compare"))
    def compare_link(self, obj: AgentConfigVersion):
        url = reverse("admin:agents_agentconfigversion_compare", args=[obj.agent_id])
        return format_html('<a href="{}?a={}">{}</a>', url, obj.number, _("compare with current"))

    @admin.display(description=_("changes to the previous version"))
    def changes_table(self, obj: AgentConfigVersion):
        return render_to_string("admin/agents/agentconfigversion/diff_table.html", {"rows": _diff_rows(obj.changes)})

    @admin.display(description=_("document (provider keys masked)"))
    def document_masked(self, obj: AgentConfigVersion):
        return format_html('<pre style="max-height: 40em; overflow: auto">{}</pre>', _pretty(obj.document))

    @admin.display(description=_("roll back"))
    def rollback_button(self, obj: AgentConfigVersion):
        if obj.number == obj.agent.config_version:
            return _("This is the current version.")
        url = reverse("admin:agents_agentconfigversion_rollback", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Roll back to this version"))

    def rollback_view(self, request, pk):
        """GET: the confirmation page with the diff from the current document; POST: the rollback."""
        if not self.has_view_permission(request) or not request.user.has_perm("agents.change_agent"):
            raise PermissionDenied
        version = get_object_or_404(AgentConfigVersion.objects.select_related("agent"), pk=pk)
        agent = version.agent
        if request.method == "POST":
            try:
                updated = services.agent_config_rollback(agent=agent, version=version.number)
            except ApplicationError as exc:
                for line in error_lines(exc):
                    self.message_user(request, line, messages.ERROR)
                self.message_user(request, _g("Nothing was changed."), messages.ERROR)
            else:
                if updated.config_version == agent.config_version:
                    self.message_user(request, _g("The configuration already equals version %(n)d; nothing changed.")
                                      % {"n": version.number}, messages.WARNING)
                else:
                    self.message_user(request, _g("Rolled back to version %(n)d; the configuration is now version "
                                                  "%(current)d.") % {"n": version.number,
                                                                     "current": updated.config_version},
                                      messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:agents_agentconfigversion_changelist")
                                        + f"?agent__id__exact={agent.pk}")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "title": _g("Roll back %(agent)s to version %(n)d?") % {"agent": agent,
                                                                                         "n": version.number},
            "agent": agent, "version": version,
            "rows": _diff_rows(changes_between(agent.config or {}, version.document or {})),
        }
        return TemplateResponse(request, "admin/agents/agentconfigversion/rollback_confirm.html", context)

    def compare_view(self, request, agent_id):
        """Two versions side by side (`?a=<n>&b=<m>`, default: the current one), with the changed paths."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        agent = get_object_or_404(Agent, pk=agent_id)
        numbers = list(AgentConfigVersion.objects.filter(agent=agent).values_list("number", flat=True))

        def pick(name, default):
            raw = request.GET.get(name, "")
            value = int(raw) if raw.isdigit() and len(raw) < 10 else default
            if value not in numbers:
                raise Http404(_g("Agent %(agent)s has no version %(n)s.") % {"agent": agent.pk, "n": raw})
            return value

        first = pick("a", min(numbers) if numbers else 1)
        second = pick("b", agent.config_version)
        versions = {v.number: v for v in AgentConfigVersion.objects.filter(agent=agent, number__in=[first, second])}
        left, right = versions[first], versions[second]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts, "title": _g("Compare versions of %(agent)s") % {"agent": agent},
            "agent": agent, "left": left, "right": right, "numbers": sorted(numbers, reverse=True),
            "left_json": _pretty(left.document), "right_json": _pretty(right.document),
            "rows": _diff_rows(changes_between(left.document or {}, right.document or {})),
        }
        return TemplateResponse(request, "admin/agents/agentconfigversion/compare.html", context)
