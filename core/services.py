"""Operator accounts: the staff users whose DRF token calls the management API (spec §1.13)."""

import re
import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

USERNAME_RE = re.compile(r"^[\w.@+-]{1,150}$")


class OperatorError(Exception):
    """A refused operator command (bad username, or a user that is not an active operator)."""


@transaction.atomic
def operator_ensure(*, username: str, rotate: bool = False) -> tuple[object, str | None, bool]:
    """Create or find the operator `username`; returns (user, new token or None, created).

    The token is returned only when one is created (new user, missing token, or `rotate`); an existing
    token is never revealed again. An existing user who is not an active staff user is refused: this
    never changes anyone's rights.
    """
    if not USERNAME_RE.match(username or ""):
        raise OperatorError(f"Invalid username {username!r}: use 1-150 letters, digits and @.+-_ only.")
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    created = user is None
    if created:
        user = user_model.objects.create_user(username=username, password=None, is_staff=True)
    elif not (user.is_active and user.is_staff):
        raise OperatorError(f"User {username!r} exists but is not an active staff user; it was not changed.")
    token = Token.objects.filter(user=user).first()
    if token is not None and not rotate:
        return user, None, created
    if token is not None:
        token.delete()
    return user, Token.objects.create(user=user).key, created


@transaction.atomic
def first_operator_create() -> tuple[str, str, str] | None:
    """On a database with no user at all, create `admin` (superuser) with a random password and token."""
    user_model = get_user_model()
    if user_model.objects.exists():
        return None
    password = secrets.token_urlsafe(18)
    user = user_model.objects.create_superuser(username="admin", email=None, password=password)
    token = Token.objects.create(user=user)
    return user.username, password, token.key
