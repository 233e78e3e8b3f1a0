"""Chat routes under /api/v2/ (spec §10)."""

from django.urls import re_path

from chat import views

app_name = "chat"

urlpatterns = [
    re_path(r"^chat/?$", views.chat_send, name="chat-send"),
    re_path(r"^chat/batch/?$", views.chat_batch, name="chat-batch"),
    re_path(r"^chat-agents/?$", views.ChatAgentListView.as_view(), name="chat-agents"),
    re_path(r"^chat/conversations/(?P<conversation_id>[^/]+)/messages/?$", views.ChatHistoryView.as_view(),
            name="chat-history"),
]
