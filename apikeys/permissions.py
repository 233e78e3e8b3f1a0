"""Route permissions for routes that agent keys may use (spec §1.13 access matrix).

Usage in a view::

    permission_classes = [OperatorOrAgentKey.with_permission("config")]   # GET agents/{id}/config
    permission_classes = [OperatorOrAgentKey.with_permission(None)]       # any valid key (heartbeat)
    permission_classes = [AgentKeyRequired.with_permission("chat")]       # chat: a key is required

and then, in the handler, BEFORE touching objects::

    tenant_id, agent_id = authorize_key_scope(request, tenant_id=..., agent_id=...)

(`apikeys.access.authorize_key_scope`: scope 403 -> per-minute limit 429 AUTH_008 -> counts one use).
"""

from django.utils.translation import gettext

from rest_framework.permissions import BasePermission

from apikeys.metrics import record_verification
from apikeys.usage import meter_refusal
from core.errors import ErrorCode
from core.exceptions import ApplicationError
from core.permissions import IsOperator, is_agent_key_request


def _check_key_permission(request, permission: str | None) -> None:
    if permission and not request.auth.has_permission(permission):
        record_verification(ErrorCode.AUTH_003.value, "request")
        meter_refusal(ErrorCode.AUTH_003.value, request.auth.api_key)
        raise ApplicationError(ErrorCode.AUTH_003, gettext("The API key does not have the permission '%(permission)s'.")
                               % {"permission": permission})


class OperatorOrAgentKey(BasePermission):
    """Operators pass by the `IsOperator` rules (401/403 otherwise); an agent key passes when it holds
    `required_permission` (`config` is also granted by `config_read`), else 403 AUTH_003. With
    `required_permission = None` any verified key passes. Build variants with `with_permission(perm)`.
    """

    required_permission: str | None = None

    @classmethod
    def with_permission(cls, permission: str | None) -> type["OperatorOrAgentKey"]:
        suffix = permission or "any"
        return type(f"{cls.__name__}_{suffix}", (cls,), {"required_permission": permission,
                                                           "__doc__": cls.__doc__})

    def has_permission(self, request, view):
        if is_agent_key_request(request):
            _check_key_permission(request, self.required_permission)
            return True
        return IsOperator().has_permission(request, view)


class AgentKeyRequired(BasePermission):
    """Only an agent key may call the route (chat routes): without one -> 401 NOT_AUTHENTICATED, also
    for operators and in open mode; a key without `required_permission` -> 403 AUTH_003."""

    required_permission: str | None = None

    @classmethod
    def with_permission(cls, permission: str | None) -> type["AgentKeyRequired"]:
        suffix = permission or "any"
        return type(f"{cls.__name__}_{suffix}", (cls,), {"required_permission": permission,
                                                           "__doc__": cls.__doc__})

    def has_permission(self, request, view):
        if not is_agent_key_request(request):
            raise ApplicationError(ErrorCode.NOT_AUTHENTICATED, "An agent API key is required for this route.")
        _check_key_permission(request, self.required_permission)
        return True
