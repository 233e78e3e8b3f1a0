#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maimconfig.settings.base")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    from maimconfig.startup import require_secret_key

    try:
        require_secret_key(sys.argv[1] if len(sys.argv) > 1 else "help")
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(1)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
