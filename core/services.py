"""Operator accounts: the staff users whose token calls the management API (spec §1.13).

Operator tokens are stored as a SHA-256 hash plus a display prefix (`core.models.OperatorToken`); a token is
returned by the service that creates it and never again.
"""

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.models import OperatorToken
from core.signals import operator_token_issued

# New tokens start with `mco_` (MaimConfig operator) so that they are recognisable in a leak scan and never
# mistaken for an agent key (`mmc_…`). Tokens issued by DRF before hashing (40 hex characters) keep working.
TOKEN_PREFIX = "mco_"
DISPLAY_PREFIX_LENGTH = 12
_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def hash_token(token: str) -> str:
    """SHA-256 (hex) of a token: tokens are 256 random bits, so a fast hash is enough (like agent keys)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_duration(text: str) -> timedelta:
    """`90d`, `12h`, `30m`, `2w`, `45s` -> timedelta; ValueError with a readable sentence otherwise."""
    match = _DURATION.match((text or "").strip().lower())
    if not match or int(match.group(1)) == 0:
        raise ValueError(_("Invalid duration %(text)r: use a positive number and a unit s, m, h, d or w "
                           "(for example 90d).") % {"text": text})
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


@transaction.atomic
def operator_token_issue(*, user, expires_at: datetime | None = None) -> tuple[OperatorToken, str]:
    """Give `user` a new token, replacing any previous one (which stops working at once).
    Returns `(row, token)`: the token is in this answer only."""
    OperatorToken.objects.filter(user=user).delete()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = OperatorToken.objects.create(user=user, key_hash=hash_token(token), prefix=token[:DISPLAY_PREFIX_LENGTH],
                                       expires_at=expires_at)
    return row, token

USERNAME_RE = re.compile(r"^[\w.@+-]{1,150}$")


def _token_issued(user, *, rotated: bool, created_user: bool) -> None:
    """Tell the apps standing on `core` (the audit trail records one event) inside this transaction."""
    operator_token_issued.send(sender=OperatorToken, user=user, rotated=rotated, created_user=created_user)


class OperatorError(Exception):
    """A refused operator command (bad username, or a user that is not an active operator)."""


@transaction.atomic
def operator_ensure(*, username: str, rotate: bool = False,
                    expires_in: timedelta | None = None) -> tuple[object, str | None, bool]:
    """Create or find the operator `username`; returns (user, new token or None, created).

    The token is returned only when one is created (new user, missing token, or `rotate`); an existing
    token is never revealed again. An existing user who is not an active staff user is refused: this
    never changes anyone's rights. `expires_in` gives a created token an expiry.
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
    had_token = OperatorToken.objects.filter(user=user).exists()
    if had_token and not rotate:
        return user, None, created
    _, key = operator_token_issue(user=user, expires_at=timezone.now() + expires_in if expires_in else None)
    _token_issued(user, rotated=had_token, created_user=created)
    return user, key, created


@transaction.atomic
def first_operator_create() -> tuple[str, str, str] | None:
    """On a database with no user at all, create `admin` (superuser) with a random password and token."""
    user_model = get_user_model()
    if user_model.objects.exists():
        return None
    password = secrets.token_urlsafe(18)
    user = user_model.objects.create_superuser(username="admin", email=None, password=password)
    _, token = operator_token_issue(user=user)
    _token_issued(user, rotated=False, created_user=True)
    return user.username, password, token


def operator_token_grant(*, user, expires_at: datetime | None = None) -> tuple[OperatorToken, str]:
    """The admin's "add operator token": a new token for an active staff user (replacing theirs), audited."""
    if not (user.is_active and user.is_staff):
        raise OperatorError(_("Only active staff users can hold an operator token."))
    had_token = OperatorToken.objects.filter(user=user).exists()
    row, token = operator_token_issue(user=user, expires_at=expires_at)
    _token_issued(user, rotated=had_token, created_user=False)
    return row, token
