"""The start-up guard: no SECRET_KEY with DEBUG off means the service does not start (README, issue 2)."""

from django.core.exceptions import ImproperlyConfigured

MISSING_SECRET_KEY = (
    "SECRET_KEY is not set (or is the .env.example placeholder 'change-me'). Set SECRET_KEY in the environment "
    "(or in .env) to a long random value; only DEBUG=true runs with a development key."
)

# manage.py commands that only inspect the code and never serve, sign, hash with the key or encrypt.
INSPECTION_COMMANDS = frozenset({
    "check", "makemigrations", "showmigrations", "sqlmigrate", "collectstatic", "spectacular", "help",
    "version", "--help", "-h", "--version",
})


def require_secret_key(command: str | None = None) -> None:
    """Raise ImproperlyConfigured when SECRET_KEY is missing, unless `command` only inspects the code."""
    from django.conf import settings

    if getattr(settings, "SECRET_KEY_MISSING", False) and command not in INSPECTION_COMMANDS:
        raise ImproperlyConfigured(MISSING_SECRET_KEY)
