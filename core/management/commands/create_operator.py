from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from core.services import OperatorError, operator_ensure, parse_duration


class Command(BaseCommand):
    help = _(
        "Create (or find) an operator: an active staff user with an API token. The token is printed once, "
        "alone on one line, when it is created; --rotate replaces an existing token. Tokens are stored hashed: "
        "a lost token cannot be shown again, only replaced."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help=_("The operator's username."))
        parser.add_argument("--rotate", action="store_true", help=_("Replace the existing token."))
        parser.add_argument("--expires-in", metavar="DURATION",
                            help=_("Give the new token an expiry, for example 90d, 12h or 2w (default: never)."))

    def handle(self, *args, username, rotate, expires_in=None, **options):
        try:
            lifetime = parse_duration(expires_in) if expires_in else None
            user, token, created = operator_ensure(username=username.strip(), rotate=rotate, expires_in=lifetime)
        except (OperatorError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if token is None:
            self.stderr.write(_("Operator %(name)r already has a token; it is kept (use --rotate to replace it).")
                              % {"name": user.username})
            return
        if options["verbosity"] >= 1:
            self.stderr.write((_("Created operator %(name)r:") if created else _("New token for operator %(name)r:"))
                              % {"name": user.username})
        self.stdout.write(token)
