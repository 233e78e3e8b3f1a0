"""OpenAI-compatible routes under /v1/ (spec §11). Other /v1 paths answer the OpenAI-shaped 404."""

from django.urls import re_path

from chat import views

app_name = "chat_openai"

urlpatterns = [
    re_path(r"^chat/completions/?$", views.openai_chat_completions, name="chat-completions"),
    re_path(r"^models/?$", views.OpenAIModelListView.as_view(), name="models"),
]
