from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConsoleConfig(AppConfig):
    """The operators' console: branding, the fleet dashboard, the language switcher and vendored assets.
    Listed before the admin in INSTALLED_APPS so its templates override the admin's."""

    name = "console"
    verbose_name = _("Console")

    def ready(self):
        from console.model_names import translate_model_names

        translate_model_names()
