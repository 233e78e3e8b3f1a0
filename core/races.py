"""Races between a request and a concurrent delete, answered with the code of what vanished."""

from django.db import IntegrityError
from django.utils.translation import gettext

from core.errors import ErrorCode
from core.exceptions import ApplicationError

_MYSQL_NO_PARENT_ROW = 1452  # "Cannot add or update a child row: a foreign key constraint fails"


def vanished_agent(exc: BaseException, request) -> ApplicationError | None:
    """404 `AGENT_004` for an agent-key request whose write failed on a foreign key (issue 12, item 10).

    The key was verified, then its agent (or tenant) was deleted before the view wrote its usage-log entry
    or chat turn: the write names ids that no longer exist. An agent-key request only ever writes its own
    key's ids, so a missing parent row there is its agent gone: "not found", never a 500 or a conflict.
    Reads `_auth` only (set by authentication); touching `request.auth` could authenticate again.
    """
    if not isinstance(exc, IntegrityError) or request is None:
        return None
    auth = getattr(request, "_auth", None)
    if not getattr(auth, "is_agent_key", False):
        return None
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    if code == _MYSQL_NO_PARENT_ROW or "foreign key constraint failed" in str(exc).lower():
        return ApplicationError(ErrorCode.AGENT_004, gettext("The agent no longer exists."))
    return None
