"""`manage.py reencrypt_provider_keys [--dry-run]`: after a change of the secrets key, rewrite every
provider API key stored in agent configurations under the current key.

Rotation, step by step (README, Operations): set the new `MAIMCONFIG_SECRETS_KEY` (or `SECRET_KEY`) and
list the old one in `MAIMCONFIG_SECRETS_KEY_FALLBACKS` (or `SECRET_KEY_FALLBACKS`); restart; run this
command; then remove the old key from the fallbacks. Keys that no configured key can decrypt are
reported by agent and provider name (never by value) and left as they are; the command then exits
with status 1.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext, gettext_lazy as _

from agents.models import Agent
from agents.services import agent_reencrypt_provider_keys


class Command(BaseCommand):
    help = _("Re-encrypt the provider API keys stored in agent configurations under the current secrets key.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help=_("Report what would change; write nothing."))

    def handle(self, *args, dry_run=False, **options):
        rotated_total, agents_changed, failures = 0, 0, []
        for agent_id in Agent.objects.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=500):
            rotated, failed = agent_reencrypt_provider_keys(agent_id=agent_id, dry_run=dry_run)
            rotated_total += rotated
            agents_changed += 1 if rotated else 0
            failures += [(agent_id, name) for name in failed]
        counts = {"keys": rotated_total, "agents": agents_changed}
        self.stdout.write((gettext("%(keys)s provider key(s) would be re-encrypted in %(agents)s agent(s).") if dry_run
                           else gettext("%(keys)s provider key(s) re-encrypted in %(agents)s agent(s).")) % counts)
        for agent_id, name in failures:
            self.stderr.write(gettext("%(agent)s: the key of provider %(name)r cannot be decrypted with any "
                                      "configured key") % {"agent": agent_id, "name": name})
        if failures:
            raise CommandError(gettext(
                "%(count)s provider key(s) could not be decrypted; they were left unchanged. Add the key they were "
                "encrypted with to MAIMCONFIG_SECRETS_KEY_FALLBACKS or SECRET_KEY_FALLBACKS, or have the operators "
                "enter them again.") % {"count": len(failures)})
