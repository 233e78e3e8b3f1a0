from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from audit.services import audit_purge


class Command(BaseCommand):
    help = _("Delete audit events older than MAIMCONFIG_AUDIT_RETENTION_DAYS (default 365) days.")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None,
                            help=_("Retention in days for this run (default: MAIMCONFIG_AUDIT_RETENTION_DAYS)."))

    def handle(self, *args, days=None, verbosity=1, **options):
        days = settings.MAIMCONFIG_AUDIT_RETENTION_DAYS if days is None else days
        if days < 0:
            raise CommandError(_("--days must be 0 or more."))
        deleted = audit_purge(older_than_days=days)
        if verbosity:
            self.stdout.write(self.style.SUCCESS(
                _("Deleted %(count)d audit events older than %(days)d days.") % {"count": deleted, "days": days}))
