from django.core.management.base import BaseCommand
from django.utils.translation import gettext, gettext_lazy as _

from core.services import first_operator_create


class Command(BaseCommand):
    help = _("On an empty database, create the operator 'admin' and print its password and token once.")

    def handle(self, *args, **options):
        created = first_operator_create()
        if created is None:
            return
        username, password, token = created
        self.stdout.write(self.style.WARNING(
            "\n  " + gettext("First run: created the operator account (shown only this once)") + "\n"
            f"    admin console : http://127.0.0.1:8000/admin/  user {username!r}  password {password}\n"
            f"    API token     : {token}\n"
            f"    try           : curl -H 'Authorization: Token {token}' http://127.0.0.1:8000/api/v2/tenants\n"
        ))
