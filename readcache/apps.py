from django.apps import AppConfig


class ReadcacheConfig(AppConfig):
    """The read cache (issue 11): operator reads answered on the event loop from Redis, populated by
    Django and invalidated by generations (README "Serving model")."""

    name = "readcache"

    def ready(self):
        from core import generations
        from readcache import fastlane, signals, store

        generations.install(store.bump_now)
        signals.connect()
        fastlane.register()
