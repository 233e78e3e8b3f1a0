from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Chat with agents through an OpenAI-compatible model."""

    name = "chat"

    def ready(self):
        from core.lanes import on_startup

        # Load the TLS trust store and the HTTP client before the first chat request, not during its deadline.
        on_startup(_warm_up)


def _warm_up():
    from chat import upstream

    upstream.warm_up()
