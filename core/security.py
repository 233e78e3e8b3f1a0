"""Small security plumbing shared by the settings and the Django-level error views (issue 12)."""

import logging


class WarningLevelFilter(logging.Filter):
    """Log the records of one logger at WARNING.

    Django logs a disallowed `Host` header on `django.security.DisallowedHost` at ERROR, but a client that
    sends a wrong `Host` (scanners, a misconfigured proxy) is not a fault of the service: the answer is a 400,
    and an ERROR there would page an operator for every scan (issue 12, item 17).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING:
            record.levelno = logging.WARNING
            record.levelname = logging.getLevelName(logging.WARNING)
        return True
