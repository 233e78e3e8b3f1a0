from django.apps import AppConfig


class CatalogueConfig(AppConfig):
    """What the service knows about MaiMBot itself: the agent-config JSON Schema and its documented defaults,
    the system model catalogue and the bot-config defaults (api.md §12, agent-config.md)."""

    name = "catalogue"
    verbose_name = "Catalogue"
