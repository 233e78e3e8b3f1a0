"""Operator credentials (spec §1.13): DRF token as `Token` or `Bearer`, or an admin session with CSRF.

A credential starting with `mmc_` is an agent key and is left to the agent-key authentication of the
`apikeys` app; it is never looked up as an operator token.
"""

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication, get_authorization_header

AGENT_KEY_PREFIX = "mmc_"
WWW_AUTHENTICATE = 'Bearer realm="maimconfig"'


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
        model = self.get_model()
        try:
            token = model.objects.select_related("user").get(key=key)
        except model.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return token.user, token

    def authenticate_header(self, request):
        return WWW_AUTHENTICATE


class OperatorSessionAuthentication(SessionAuthentication):
    """The admin session; unsafe methods need the CSRF token (DRF enforces it)."""
