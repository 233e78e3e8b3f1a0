from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Chat with agents through an OpenAI-compatible model."""

    name = "chat"
