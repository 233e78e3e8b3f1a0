import logging

from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    """Shared plumbing of the API: envelope, errors, pagination, operator auth, ops routes."""

    name = "core"
    verbose_name = "Core"

    def ready(self):
        from core import schema  # noqa: F401  (registers the OpenAPI auth extensions)
        from core import opslane

        opslane.register()  # `/`, `/info`, `/health` on the event loop (with or without Redis)

        if settings.MAIMCONFIG_AUTH_MODE == "open":
            logging.getLogger("maimconfig").warning(
                "MAIMCONFIG_AUTH_MODE=open: the management API is served WITHOUT credentials. "
                "Use this only on a trusted network."
            )
