"""Operator accounts: the staff users whose DRF token calls the management API (spec §1.13)."""

import re
import secrets

from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework.authtoken.models import Token

USERNAME_RE = re.compile(r"^[\w.@+-]{1,150}$")


def _audit_token(user, *, rotated: bool, created_user: bool) -> None:
    """One audit event per token issued (the token itself is never recorded). Imported here: `audit`
    stands on `core`, so core reaches it only at call time."""
    from audit.models import AuditAction, AuditTarget
    from audit.services import audit_record

    audit_record(action=AuditAction.OPERATOR_TOKEN_ROTATE if rotated else AuditAction.OPERATOR_TOKEN_CREATE,
                 target_type=AuditTarget.OPERATOR, target_id=user.get_username(),
                 changes={"token": [None if not rotated else "********", "********"],
                          **({"user": [None, user.get_username()]} if created_user else {})})


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
    key = Token.objects.create(user=user).key
    _audit_token(user, rotated=token is not None, created_user=created)
    return user, key, created


@transaction.atomic
def first_operator_create() -> tuple[str, str, str] | None:
    """On a database with no user at all, create `admin` (superuser) with a random password and token."""
    user_model = get_user_model()
    if user_model.objects.exists():
        return None
    password = secrets.token_urlsafe(18)
    user = user_model.objects.create_superuser(username="admin", email=None, password=password)
    token = Token.objects.create(user=user)
    _audit_token(user, rotated=False, created_user=True)
    return user.username, password, token.key
