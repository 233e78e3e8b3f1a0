from django.apps import AppConfig


class TenantsConfig(AppConfig):
    """Tenants: the platform's customers."""

    name = "tenants"
