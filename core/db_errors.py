"""Database errors, classified once (spec §1.5, issue 15).

Every database exception that reaches the exception handler goes through `classify()`:

* the database cannot serve the request — unreachable (no connection, connection lost, server shutting
  down), read-only (maintenance, failover: MariaDB 1290/1836/1792), out of connections (1040, 1203),
  a lock wait or statement timeout (1205, 1969/3024) or a deadlock that was not resolved by a retry
  (1213) → 503 `SERVICE_UNAVAILABLE` with `Retry-After`. These are failures of the service's
  environment, not of the request: the client may send the same request again.
* an integrity error (a constraint refused the write) that a service did not turn into its own code:
  a duplicate (unique constraint) or a vanished referenced row (foreign key) → 409 `CONFLICT`; a value the
  database refuses (check constraint, NOT NULL) → 400 `VALIDATION_ERROR`. Both are about the request.
* anything else → None: the handler answers 500 `INTERNAL_ERROR` and logs it.

`retry_on_deadlock` retries a function once after a deadlock, but only where that is safe: when the call
is not inside an outer transaction (a deadlock rolls the whole InnoDB transaction back, so retrying one
service call inside a request's transaction would silently drop the work done before it).

This module imports no model and no other app (core plumbing); MySQL and SQLite are told apart by the
shape of the exception (MySQL errors carry a numeric code as first argument, SQLite ones a message).
"""

from __future__ import annotations

import functools
import random
import time
from dataclasses import dataclass
from enum import Enum

from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connections
from django.utils.translation import gettext


class DbFailure(str, Enum):
    """Why the database cannot serve a request. The values are the `kind` label of the failure metric."""

    UNREACHABLE = "database_unreachable"
    READ_ONLY = "database_read_only"
    TOO_MANY_CONNECTIONS = "database_too_many_connections"
    TIMEOUT = "database_lock_timeout"
    DEADLOCK = "database_deadlock"


# MySQL/MariaDB server and client error numbers (mysqld_error.h, errmsg.h).
_MYSQL_CODES: dict[int, DbFailure] = {
    # Cannot connect, connection lost, server going away or refusing the account/database.
    1045: DbFailure.UNREACHABLE,   # ER_ACCESS_DENIED_ERROR (credentials changed during failover)
    1049: DbFailure.UNREACHABLE,   # ER_BAD_DB_ERROR
    1053: DbFailure.UNREACHABLE,   # ER_SERVER_SHUTDOWN
    1077: DbFailure.UNREACHABLE,   # ER_NORMAL_SHUTDOWN
    1152: DbFailure.UNREACHABLE,   # ER_ABORTING_CONNECTION
    1158: DbFailure.UNREACHABLE,   # ER_NET_READ_ERROR
    1159: DbFailure.UNREACHABLE,   # ER_NET_READ_INTERRUPTED
    1160: DbFailure.UNREACHABLE,   # ER_NET_ERROR_ON_WRITE
    1161: DbFailure.UNREACHABLE,   # ER_NET_WRITE_INTERRUPTED
    1927: DbFailure.UNREACHABLE,   # ER_CONNECTION_KILLED (MariaDB)
    2002: DbFailure.UNREACHABLE,   # CR_CONNECTION_ERROR (socket)
    2003: DbFailure.UNREACHABLE,   # CR_CONN_HOST_ERROR (TCP)
    2005: DbFailure.UNREACHABLE,   # CR_UNKNOWN_HOST
    2006: DbFailure.UNREACHABLE,   # CR_SERVER_GONE_ERROR
    2013: DbFailure.UNREACHABLE,   # CR_SERVER_LOST
    2026: DbFailure.UNREACHABLE,   # CR_SSL_CONNECTION_ERROR
    2055: DbFailure.UNREACHABLE,   # CR_SERVER_LOST_EXTENDED
    4031: DbFailure.UNREACHABLE,   # ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
    # Read-only server or transaction.
    1290: DbFailure.READ_ONLY,     # ER_OPTION_PREVENTS_STATEMENT (--read-only)
    1836: DbFailure.READ_ONLY,     # ER_READ_ONLY_MODE
    1792: DbFailure.READ_ONLY,     # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
    1036: DbFailure.READ_ONLY,     # ER_OPEN_AS_READONLY
    # Saturated.
    1040: DbFailure.TOO_MANY_CONNECTIONS,  # ER_CON_COUNT_ERROR
    1203: DbFailure.TOO_MANY_CONNECTIONS,  # ER_TOO_MANY_USER_CONNECTIONS
    1135: DbFailure.TOO_MANY_CONNECTIONS,  # ER_CANT_CREATE_THREAD
    # Waited too long.
    1205: DbFailure.TIMEOUT,       # ER_LOCK_WAIT_TIMEOUT
    1969: DbFailure.TIMEOUT,       # ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
    3024: DbFailure.TIMEOUT,       # ER_QUERY_TIMEOUT (MySQL max_execution_time)
    # Deadlock victim (the whole transaction was rolled back).
    1213: DbFailure.DEADLOCK,      # ER_LOCK_DEADLOCK
}

# SQLite reports by message only.
_SQLITE_MARKERS: tuple[tuple[str, DbFailure], ...] = (
    ("unable to open database", DbFailure.UNREACHABLE),
    ("disk i/o error", DbFailure.UNREACHABLE),
    ("readonly database", DbFailure.READ_ONLY),
    ("read-only database", DbFailure.READ_ONLY),
    ("database is locked", DbFailure.TIMEOUT),
    ("database table is locked", DbFailure.TIMEOUT),
    ("table is locked", DbFailure.TIMEOUT),
)

# MySQL integrity codes: duplicates and vanished parents are conflicts; values the database refuses are
# the client's invalid input.
_MYSQL_CONFLICT = {1062, 1586, 1216, 1217, 1451, 1452, 1557, 1761, 1762}
_MYSQL_INVALID = {1048, 3819, 4025, 1263}
_SQLITE_CONFLICT = ("unique constraint failed", "foreign key constraint failed")
_SQLITE_INVALID = ("check constraint failed", "not null constraint failed")

# Seconds a client should wait before sending the request again (`Retry-After`), per failure.
RETRY_AFTER_SECONDS: dict[DbFailure, int] = {
    DbFailure.UNREACHABLE: 5,
    DbFailure.READ_ONLY: 10,
    DbFailure.TOO_MANY_CONNECTIONS: 2,
    DbFailure.TIMEOUT: 1,
    DbFailure.DEADLOCK: 1,
}


def _messages() -> dict[DbFailure, str]:
    # Built per call so the sentence is in the request's language (spec §1.3).
    return {
        DbFailure.UNREACHABLE: gettext("The database is unreachable; try again later."),
        DbFailure.READ_ONLY: gettext(
            "The database is read-only at the moment (maintenance or failover); try again later."),
        DbFailure.TOO_MANY_CONNECTIONS: gettext("The database is out of connections; try again shortly."),
        DbFailure.TIMEOUT: gettext("The database was busy (a lock wait timed out); try again shortly."),
        DbFailure.DEADLOCK: gettext("The database was busy (a deadlock); try again shortly."),
    }


def _mysql_code(exc: BaseException) -> int | None:
    first = exc.args[0] if exc.args else None
    return first if isinstance(first, int) else None


def classify(exc: BaseException) -> DbFailure | None:
    """The reason `exc` means the database cannot serve requests now, or None for any other error."""
    if isinstance(exc, InterfaceError):
        return DbFailure.UNREACHABLE  # the connection object is closed or unusable
    if not isinstance(exc, DatabaseError) or isinstance(exc, IntegrityError):
        return None
    code = _mysql_code(exc)
    if code is not None:
        return _MYSQL_CODES.get(code)
    if isinstance(exc, OperationalError):
        text = str(exc).lower()
        for marker, failure in _SQLITE_MARKERS:
            if marker in text:
                return failure
    return None


@dataclass(frozen=True)
class Refusal:
    """What an integrity error that reached the handler means for the client."""

    status: int  # 409 (conflict with the current state) or 400 (a value the database refuses)


def classify_integrity(exc: BaseException) -> Refusal | None:
    """409 for a duplicate or a vanished referenced row, 400 for a refused value; None otherwise."""
    if not isinstance(exc, IntegrityError):
        return None
    code = _mysql_code(exc)
    if code is not None:
        if code in _MYSQL_CONFLICT:
            return Refusal(409)
        if code in _MYSQL_INVALID:
            return Refusal(400)
        return None
    text = str(exc).lower()
    if any(marker in text for marker in _SQLITE_CONFLICT):
        return Refusal(409)
    if any(marker in text for marker in _SQLITE_INVALID):
        return Refusal(400)
    return None


def unavailable_message(failure: DbFailure) -> str:
    return _messages()[failure]


def retry_on_deadlock(func=None, *, using: str = "default", pause: float = 0.05):
    """Run `func` again once when the database picked it as a deadlock victim.

    Safe only for a function that opens the OUTERMOST transaction itself (decorate a function that uses
    `transaction.atomic`, or runs single autocommit statements): InnoDB rolled the whole transaction back,
    so a retry replays all of it. Lock wait timeouts are not retried (the wait already took
    `innodb_lock_wait_timeout`; the client gets 503 with `Retry-After` instead). Called inside an outer transaction (ATOMIC_REQUESTS, a caller's
    `atomic`), the error is re-raised untouched and the handler answers 503 with `Retry-After`.
    """

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if connections[using].in_atomic_block:
                return function(*args, **kwargs)
            try:
                return function(*args, **kwargs)
            except DatabaseError as exc:
                if classify(exc) is not DbFailure.DEADLOCK:
                    raise
                # Jitter so the two victims of one deadlock do not collide again.
                time.sleep(pause * (1 + random.random()))  # noqa: S311 - not security related
                return function(*args, **kwargs)

        wrapper.retries_deadlocks = True
        return wrapper

    return decorate(func) if func is not None else decorate
