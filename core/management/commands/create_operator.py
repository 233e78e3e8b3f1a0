from django.core.management.base import BaseCommand, CommandError

from core.services import OperatorError, operator_ensure


class Command(BaseCommand):
    help = (
        "Create (or find) an operator: an active staff user with an API token. The token is printed once, "
        "alone on one line, when it is created; --rotate replaces an existing token."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="The operator's username.")
        parser.add_argument("--rotate", action="store_true", help="Replace the existing token.")

    def handle(self, *args, username, rotate, **options):
        try:
            user, token, created = operator_ensure(username=username.strip(), rotate=rotate)
        except OperatorError as exc:
            raise CommandError(str(exc)) from exc
        if token is None:
            self.stderr.write(f"Operator {user.username!r} already has a token; it is kept "
                              "(use --rotate to replace it).")
            return
        if options["verbosity"] >= 1:
            self.stderr.write(("Created operator" if created else "New token for operator") + f" {user.username!r}:")
        self.stdout.write(token)
