from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    """The audit trail: one event per write of tenants, agents, keys, plugin settings and operator tokens."""

    name = "audit"
    verbose_name = _("Audit trail")

    def ready(self):
        from audit import receivers  # noqa: F401 - connects the receivers of core's signals

        _attribute_commands_to_their_name()


def _attribute_commands_to_their_name() -> None:
    """Writes made while a management command runs are attributed to `command:<name>` (issue 17).

    Wrapping `BaseCommand.execute` is the one spot every command passes through, whether started by
    `manage.py`, `call_command` or a test; the commands themselves need not know about the audit trail.
    A request served inside a command (`runserver`) is still attributed to its own credential, since
    `core.context.current_actor` prefers the request.
    """
    from django.core.management.base import BaseCommand

    if getattr(BaseCommand.execute, "_audit_wrapped", False):
        return
    original = BaseCommand.execute

    def execute(self, *args, **options):
        from core.context import acting_as

        name = type(self).__module__.rsplit(".", 1)[-1]
        with acting_as(f"command:{name}"):
            return original(self, *args, **options)

    execute._audit_wrapped = True
    BaseCommand.execute = execute
