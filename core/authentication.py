"""Operator credentials (spec §1.13): an operator token as `Token` or `Bearer`, or an admin session with CSRF.

A credential starting with `mmc_` is an agent key and is left to the agent-key authentication of the
`apikeys` app; it is never looked up as an operator token. Operator tokens are stored hashed
(`core.models.OperatorToken`); no state of them is cached, so deleting or rotating one takes effect at once.
"""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from functools import cache

from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header

from core.envelope import WWW_AUTHENTICATE
from core.models import OperatorToken
from core.services import hash_token

AGENT_KEY_PREFIX = "mmc_"
# `last_used_at` is written at most this often per token: a timestamp to the minute is what an operator
# needs to spot a forgotten token, and a write on every request would cost every request a round trip.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class OperatorTokenAuthentication(BaseAuthentication):
    keywords = ("token", "bearer")

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower().decode("latin-1") not in self.keywords:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header.")
        try:
            token = parts[1].decode("utf-8")
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid Authorization header.") from None
        if token.startswith(AGENT_KEY_PREFIX):
            return None
        return self.authenticate_credentials(token)

    def authenticate_credentials(self, key):
        """One indexed SELECT (token hash joined to the few user columns permissions need).

        Operator requests run this on every call (heartbeats included), and building the ORM query
        cost more than running it, so the statement is written once per database vendor. An unknown,
        expired or inactive user's token is refused alike (spec §1.13).
        """
        with connection.cursor() as cursor:
            cursor.execute(_token_sql(connection.vendor), [hash_token(key)])
            row = cursor.fetchone()
        if row is None or not row[_USER_FIELDS.index("is_active")]:
            raise exceptions.AuthenticationFailed("Invalid token.")
        token_id, expires_at, last_used_at = row[len(_USER_FIELDS):]
        expires_at, last_used_at = _aware(expires_at), _aware(last_used_at)
        now = timezone.now()
        if expires_at is not None and expires_at <= now:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION:
            last_used_at = _touch(token_id, now)
        user = get_user_model().from_db(connection.alias, _USER_FIELDS, row[:len(_USER_FIELDS)])
        return user, OperatorToken(pk=token_id, user=user, expires_at=expires_at, last_used_at=last_used_at)

    def authenticate_header(self, request):
        return WWW_AUTHENTICATE


# In the model's concrete-field order, as Model.from_db expects for a partial row.
_USER_FIELDS = ["id", "is_superuser", "username", "is_staff", "is_active"]


@cache
def _token_sql(vendor: str) -> str:
    q = connection.ops.quote_name
    user_table, token_table = get_user_model()._meta.db_table, OperatorToken._meta.db_table
    columns = ", ".join(f"u.{q(field)}" for field in _USER_FIELDS)
    return (f"SELECT {columns}, t.{q('id')}, t.{q('expires_at')}, t.{q('last_used_at')} FROM {q(token_table)} t "
            f"INNER JOIN {q(user_table)} u ON u.{q('id')} = t.{q('user_id')} WHERE t.{q('key_hash')} = %s")


def _aware(value) -> datetime | None:
    """A raw cursor's date-time (SQLite: text; MySQL: naive UTC) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if timezone.is_aware(value) else value.replace(tzinfo=dt_timezone.utc)


def _touch(token_id: int, now: datetime) -> datetime | None:
    """Record the use, unless another request did within the resolution. A database that refuses the write
    (read-only) does not fail the request: the timestamp is only informative."""
    try:
        with transaction.atomic():
            OperatorToken.objects.filter(pk=token_id).filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
            ).update(last_used_at=now)
    except DatabaseError:
        return None
    return now


class OperatorSessionAuthentication(SessionAuthentication):
    """The admin session; unsafe methods need the CSRF token (DRF enforces it).

    On the lean stack (`core.handlers`: a request without a cookie, so without a session) there is no
    `request.user` to read; the request is marked instead, so `SessionVaryMiddleware` answers with the
    same `Vary: Cookie` the session middleware adds when a session was looked for.
    """

    def authenticate(self, request):
        if not hasattr(request._request, "user"):
            request._request.session_probed = True
            return None
        return super().authenticate(request)
