from django.apps import AppConfig


class AgentsConfig(AppConfig):
    """Agents and their configuration documents."""

    name = "agents"

    def ready(self):
        from agents import schema  # noqa: F401  (registers the OpenAPI extensions of the config document)
