from django.apps import AppConfig


class ActivityConfig(AppConfig):
    """Agent heartbeats and the usage log."""

    name = "activity"
