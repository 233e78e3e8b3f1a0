from django.apps import AppConfig


class ApikeysConfig(AppConfig):
    """Agent API keys: issuance, verification, agent-key authentication."""

    name = "apikeys"

    def ready(self):
        from apikeys import fastlane, signals

        signals.connect()
        # validate-api-key on the event loop, only when Redis is the cache (README "Serving model").
        fastlane.register()
