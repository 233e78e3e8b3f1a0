"""`manage.py issue_api_key --tenant T --agent A --name N [--permissions chat,config] [--expires-in 30d]
[--json]`: issue an agent API key through the same service as `POST /api/v2/api-keys` and print the secret
once."""

import json
import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy as _

from apikeys.serializers import parse_permission_text
from apikeys.services import apikey_create
from core.exceptions import ApplicationError

_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise CommandError(gettext("--expires-in must be a positive number followed by s, m, h, d or w (e.g. "
                                   "30d), not %(text)r.") % {"text": text})
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_permissions(text: str) -> list[str]:
    try:
        return parse_permission_text(text)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


class Command(BaseCommand):
    help = _("Issue an API key for an agent and print the secret once (it cannot be shown again). "
             "Same rules and refusals as POST /api/v2/api-keys.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help=_("Tenant id (tenant_…); must be the agent's tenant."))
        parser.add_argument("--agent", required=True, help=_("Agent id (agent_…)."))
        parser.add_argument("--name", required=True, help=_("Key name, unique in the tenant (case-insensitive)."))
        parser.add_argument("--permissions", default="", help=_("Comma-separated permissions, e.g. chat,config."))
        parser.add_argument("--expires-in", dest="expires_in", default=None,
                            help=_("Lifetime such as 3600s, 90m, 12h, 30d or 2w (default: never expires)."))
        parser.add_argument("--rate-limit", dest="rate_limit", type=int, default=None,
                            help=_("Requests per minute (1–1000000; default: unlimited)."))
        parser.add_argument("--description", default=None)
        parser.add_argument("--json", action="store_true", help=_("Print the key object (with the secret) as JSON."))

    def handle(self, *args, **options):
        name = options["name"].strip()
        if not 1 <= len(name) <= 100 or any(ord(c) < 32 or 127 <= ord(c) <= 159 for c in name):
            raise CommandError(gettext("--name must be 1–100 characters without control characters."))
        permissions = parse_permissions(options["permissions"])
        expires_at = timezone.now() + parse_duration(options["expires_in"]) if options["expires_in"] else None
        rate_limit = options["rate_limit"]
        if rate_limit is not None and not 1 <= rate_limit <= 1_000_000:
            raise CommandError(gettext("--rate-limit must be between 1 and 1000000."))
        try:
            key, raw_key = apikey_create(
                tenant_id=options["tenant"].strip(), agent_id=options["agent"].strip(), name=name,
                description=options["description"], permissions=permissions, expires_at=expires_at,
                rate_limit_per_minute=rate_limit,
            )
        except ApplicationError as exc:
            raise CommandError(f"{exc.code.value}: {gettext(exc.error)}") from None
        if options["json"]:
            from apikeys.serializers import ApiKeyOutputSerializer

            data = ApiKeyOutputSerializer(key, context={"raw_key": raw_key}).data
            self.stdout.write(json.dumps(data, ensure_ascii=False))
            return
        if options["verbosity"] >= 1:
            self.stderr.write(self.style.SUCCESS(gettext(
                "Issued API key %(key)s ('%(name)s') for agent %(agent)s of tenant %(tenant)s. "
                "The secret is printed below once; store it now.")
                % {"key": key.pk, "name": key.name, "agent": key.agent_id, "tenant": key.tenant_id}))
        self.stdout.write(raw_key)
