"""Operators' console for chat: conversations and their messages are read-only records of completed
turns; a conversation can be deleted (through `chat.services`)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from chat import services
from chat.models import ChatConversation, ChatMessage
from core.admin import ReadOnlyModelAdmin


class ChatMessageInline(admin.TabularInline):
    model = ChatMessage
    fk_name = "conversation"
    fields = ("created_at", "role", "content", "user_id", "model", "responder", "total_tokens", "latency_ms")
    readonly_fields = fields
    ordering = ("created_at", "id")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ChatConversation)
class ChatConversationAdmin(admin.ModelAdmin):
    list_display = ("conversation_id", "agent", "tenant", "created_at", "last_message_at")
    list_filter = ("created_at",)
    search_fields = ("conversation_id", "agent__id", "agent__name", "tenant__id", "tenant__tenant_name")
    list_select_related = ("agent", "tenant")
    readonly_fields = ("conversation_id", "agent", "tenant", "created_at", "last_message_at")
    ordering = ("-last_message_at", "-id")
    inlines = [ChatMessageInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        services.conversation_delete(conversation=obj)

    def get_deleted_objects(self, objs, request):
        # Messages are deleted with their conversation; they are not deletable one by one.
        deleted, model_count, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, model_count, set(), protected

    def delete_queryset(self, request, queryset):
        for conversation in queryset:
            services.conversation_delete(conversation=conversation)


@admin.register(ChatMessage)
class ChatMessageAdmin(ReadOnlyModelAdmin):
    # Fits 1366 px; the rest is on the detail page.
    list_display = ("role", "short_content", "agent", "model", "total_tokens", "created_at")
    list_filter = ("role", "responder", "created_at")
    search_fields = ("id", "conversation__conversation_id", "agent__id", "user_id", "request_id")
    list_select_related = ("agent", "conversation")
    readonly_fields = ("id", "conversation", "tenant", "agent", "api_key_id", "user_id", "role", "content", "reply_to",
                       "model", "responder", "finish_reason", "prompt_tokens", "completion_tokens", "total_tokens",
                       "usage_estimated", "latency_ms", "request_id", "created_at")
    ordering = ("-created_at", "-id")

    @admin.display(description=_("content"))
    def short_content(self, obj):
        return obj.content[:80]
