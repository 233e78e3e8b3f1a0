from django.apps import AppConfig


class ApikeysConfig(AppConfig):
    """Agent API keys: issuance, verification, agent-key authentication."""

    name = "apikeys"

    def ready(self):
        from apikeys import fastlane, signals, usage
        from core import background

        signals.connect()
        # Pending key uses and dashboard counters reach the database from the worker's write-behind thread.
        background.register("key uses", usage.flush_all)
        # validate-api-key on the event loop, only when Redis is the cache (README "Serving model").
        fastlane.register()
