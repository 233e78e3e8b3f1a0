"""`manage.py purge_expired_activity [--older-than DURATION]`: delete expired heartbeat rows (spec §7.4)."""

import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext, gettext_lazy as _
from django.utils.dateparse import parse_duration

from activity.services import activity_purge_expired

_SIMPLE = re.compile(r"^(\d+)\s*([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_older_than(text: str) -> timedelta:
    """`90`, `90s`, `15m`, `2h`, `7d`, `1w`, `HH:MM:SS`, `3 days, 10:00:00` or ISO 8601 (`P3DT4H`)."""
    value = text.strip().lower()
    if not value:
        raise ValueError(text)
    match = _SIMPLE.match(value)
    if match:
        return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    duration = parse_duration(text.strip())
    if duration is None or duration < timedelta(0):
        raise ValueError(text)
    return duration


class Command(BaseCommand):
    help = _("Delete expired agent-activity rows (expires_at <= now), or only those expired for longer "
             "than --older-than, and report how many were deleted.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", dest="older_than", default=None,
            help=_("Only rows expired for longer than this: 90, 90s, 15m, 2h, 7d, 1w, HH:MM:SS or ISO 8601 (P1D)."),
        )

    def handle(self, *args, older_than=None, verbosity=1, **options):
        delta = None
        if older_than is not None:
            try:
                delta = parse_older_than(older_than)
            except ValueError:
                raise CommandError(gettext("Invalid --older-than value %(value)r; use e.g. 90s, 15m, 2h, 7d.")
                                   % {"value": older_than}) from None
        deleted = activity_purge_expired(older_than=delta)
        if verbosity >= 1:
            suffix = gettext(" (expired for longer than %(delta)s)") % {"delta": delta} if delta else ""
            self.stdout.write(self.style.SUCCESS(gettext("Deleted %(count)s expired activity row(s)%(suffix)s.")
                                                 % {"count": deleted, "suffix": suffix}))
