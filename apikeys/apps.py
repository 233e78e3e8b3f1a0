from django.apps import AppConfig


class ApikeysConfig(AppConfig):
    """Agent API keys: issuance, verification, agent-key authentication."""

    name = "apikeys"

    def ready(self):
        from apikeys import signals

        signals.connect()
