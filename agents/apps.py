from django.apps import AppConfig


class AgentsConfig(AppConfig):
    """Agents and their configuration documents."""

    name = "agents"
