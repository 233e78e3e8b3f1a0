"""Admin for heartbeats and the usage log: read-only lists (writes come from bots through the API)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from activity.models import AgentActivity, UsageLog
from core.admin import ReadOnlyModelAdmin


@admin.register(AgentActivity)
class AgentActivityAdmin(ReadOnlyModelAdmin):
    list_display = ("agent_id", "tenant_id", "heartbeat_at", "expires_at", "is_online")
    list_filter = ("tenant",)
    search_fields = ("agent__id", "agent__name", "tenant__id")
    date_hierarchy = "last_seen_at"
    ordering = ("-last_seen_at", "-agent_id")

    @admin.display(boolean=True, description=_("online"))
    def is_online(self, obj):
        # A row written by agent creation alone (no heartbeat yet) is not "online": the agent was never seen.
        return obj.online and obj.heartbeat_at is not None


@admin.register(UsageLog)
class UsageLogAdmin(ReadOnlyModelAdmin):
    list_display = ("timestamp", "action", "tenant_id", "agent_id", "api_key_id")  # the rest: detail page
    list_filter = ("action", "tenant")
    search_fields = ("action", "tenant__id", "agent__id", "user_id", "api_key_id", "request_id")
    date_hierarchy = "timestamp"
    ordering = ("-timestamp", "-id")
    show_full_result_count = False

    def changelist_view(self, request, extra_context=None):
        from activity.services import usage_log_store_pending

        usage_log_store_pending()  # entries the fast lane accepted and not yet written behind
        return super().changelist_view(request, extra_context)
