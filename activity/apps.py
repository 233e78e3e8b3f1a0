from django.apps import AppConfig


class ActivityConfig(AppConfig):
    """Agent heartbeats and the usage log."""

    name = "activity"

    def ready(self):
        from activity import fastlane

        # Agent-key heartbeats on the event loop, only when Redis is the cache (README "Serving model").
        fastlane.register()
