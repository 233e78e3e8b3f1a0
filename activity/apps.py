from django.apps import AppConfig


class ActivityConfig(AppConfig):
    """Agent heartbeats and the usage log."""

    name = "activity"

    def ready(self):
        from activity import fastlane, usagelog_fastlane

        # Agent-key heartbeats and usage-log entries on the event loop, only when Redis is the cache
        # (README "Serving model"); the entries are written behind (activity.writebehind).
        fastlane.register()
        usagelog_fastlane.register()
