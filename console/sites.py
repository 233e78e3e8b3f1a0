"""The admin site of MaimConfig: branded, the fleet dashboard as its index, "view site" -> the API docs."""

from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ConsoleAdminSite(admin.AdminSite):
    site_header = _("MaimConfig console")
    site_title = _("MaimConfig console")
    index_title = _("Fleet dashboard")
    site_url = "/docs"
    index_template = "console/dashboard.html"

    def index(self, request, extra_context=None):
        from console.selectors import fleet_dashboard

        context = {**(extra_context or {}), "dashboard": fleet_dashboard(now=timezone.now())}
        return super().index(request, extra_context=context)
