"""Django's admin with the console's site as `admin.site` (INSTALLED_APPS names this class in place of
"django.contrib.admin"). In its own module: an AppConfig module may declare only one default config."""

from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    default_site = "console.sites.ConsoleAdminSite"
