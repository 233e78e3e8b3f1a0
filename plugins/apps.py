from django.apps import AppConfig


class PluginsConfig(AppConfig):
    """Plugin settings per tenant and agent."""

    name = "plugins"
