"""Who may call a management route (spec §1.13)."""

from django.conf import settings
from rest_framework import exceptions
from rest_framework.permissions import BasePermission


def is_agent_key_request(request) -> bool:
    """True when the request was authenticated with an agent key (set by the apikeys app)."""
    return bool(getattr(request.auth, "is_agent_key", False))


def is_operator(request) -> bool:
    """An active staff user, or anyone without a credential in open mode."""
    if is_agent_key_request(request):
        return False
    user = request.user
    if user is not None and user.is_authenticated:
        return bool(user.is_active and user.is_staff)
    return settings.MAIMCONFIG_AUTH_MODE == "open"


class IsOperator(BasePermission):
    """Operator only: 401 without a credential (operator mode), 403 for non-staff users and agent keys."""

    def has_permission(self, request, view):
        if is_operator(request):
            return True
        user = request.user
        if not is_agent_key_request(request) and not (user is not None and user.is_authenticated):
            raise exceptions.NotAuthenticated()
        raise exceptions.PermissionDenied()
