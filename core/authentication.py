"""Operator credentials (spec §1.13): DRF token as `Token` or `Bearer`, or an admin session with CSRF.

A credential starting with `mmc_` is an agent key and is left to the agent-key authentication of the
`apikeys` app; it is never looked up as an operator token.
"""

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token

from core.envelope import WWW_AUTHENTICATE

AGENT_KEY_PREFIX = "mmc_"


class OperatorTokenAuthentication(TokenAuthentication):
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
        """One indexed SELECT of the few user columns permissions need; the rest stay deferred.

        Operator requests run this on every call (heartbeats included), and building the ORM query
        cost more than running it, so the statement is written once per database vendor.
        """
        with connection.cursor() as cursor:
            cursor.execute(_token_sql(connection.vendor), [key])
            row = cursor.fetchone()
        if row is None or not row[_USER_FIELDS.index("is_active")]:
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = get_user_model().from_db(connection.alias, _USER_FIELDS, row)
        return user, Token(key=key, user=user)

    def authenticate_header(self, request):
        return WWW_AUTHENTICATE


# In the model's concrete-field order, as Model.from_db expects for a partial row.
_USER_FIELDS = ["id", "is_superuser", "username", "is_staff", "is_active"]


@cache
def _token_sql(vendor: str) -> str:
    q = connection.ops.quote_name
    user_table, token_table = get_user_model()._meta.db_table, Token._meta.db_table
    columns = ", ".join(f"u.{q(field)}" for field in _USER_FIELDS)
    return (f"SELECT {columns} FROM {q(token_table)} t INNER JOIN {q(user_table)} u ON u.{q('id')} = t.{q('user_id')} "
            f"WHERE t.{q('key')} = %s")


class OperatorSessionAuthentication(SessionAuthentication):
    """The admin session; unsafe methods need the CSRF token (DRF enforces it)."""
