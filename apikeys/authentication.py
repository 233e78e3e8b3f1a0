"""Agent keys as credentials (spec §1.13): `apikeys.authentication.AgentKeyAuthentication`.

It is the FIRST class of `REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]`, so a request presenting an
agent key is authenticated as that key's agent even if it also carries an operator credential.

Where the key comes from:
* `Authorization: Bearer mmc_…` or `Authorization: Token mmc_…` (any route using default authentication);
* `api_key` in the JSON body, only on the routes the spec lists (`BODY_KEY_ROUTES` below: POST
  /api/v2/chat, POST /api/v2/chat/batch, PUT /api/v2/agent-activity, POST /api/v1/usage/log, POST
  /api/v2/usage-logs), or on any view that sets the class attribute `agent_key_in_body = True`.
  When both are present they must be equal, else 400 VALIDATION_ERROR at `api_key` (nothing counted).

Verification is checks 1–6 of §6.2, with key state read on every request (from the database, or the
Redis key-state cache that every revocation invalidates, `apikeys.keycache`): failures raise the
ApplicationError of the code (AUTH_001/002/004/005 -> 401 with `WWW-Authenticate`, AUTH_006/007 -> 403).
The route permission (AUTH_003) is checked by `apikeys.permissions.OperatorOrAgentKey`, and the scope,
the per-minute limit (AUTH_008) and the usage count by `apikeys.access.authorize_key_scope`, which the
view must call. On success `request.auth` is an `AgentKeyPrincipal` (`is_agent_key=True`, `api_key_id`,
`tenant_id`, `agent_id`, `permissions`) and `request.user` an `AgentKeyUser` (AnonymousUser-like).
"""

import re

from rest_framework.authentication import BaseAuthentication, get_authorization_header

from apikeys.keys import KEY_PREFIX
from apikeys.metrics import record_verification
from apikeys.principal import AgentKeyPrincipal, AgentKeyUser
from apikeys.verification import record_refusal, verify_key
from core.envelope import WWW_AUTHENTICATE
from core.exceptions import ApplicationError, validation_error


# (method, path) pairs where `api_key` in the JSON body is a credential (spec §1.13).
BODY_KEY_ROUTES: tuple[tuple[str, re.Pattern], ...] = (
    ("POST", re.compile(r"^/api/v2/chat/?$")),
    ("POST", re.compile(r"^/api/v2/chat/batch/?$")),
    ("PUT", re.compile(r"^/api/v2/agent-activity/?$")),
    ("POST", re.compile(r"^/api/v1/usage/log/?$")),
    ("POST", re.compile(r"^/api/v2/usage-logs/?$")),
)

def header_key(request) -> str | None:
    """The agent key of the Authorization header (`Bearer`/`Token` + `mmc_…`), or None."""
    parts = get_authorization_header(request).split()
    if len(parts) != 2 or parts[0].lower() not in (b"bearer", b"token"):
        return None
    try:
        value = parts[1].decode("utf-8")
    except UnicodeError:
        return None
    return value if value.startswith(KEY_PREFIX) else None


def accepts_body_key(request) -> bool:
    view = (getattr(request, "parser_context", None) or {}).get("view")
    if getattr(view, "agent_key_in_body", False):
        return True
    method, path = request.method.upper(), request.path
    return any(method == m and pattern.match(path) for m, pattern in BODY_KEY_ROUTES)


def body_key(request) -> str | None:
    """`api_key` of the JSON body (routes that accept it). Non-string -> 400 at `api_key`."""
    data = request.data  # a malformed body raises ParseError here: 400, like the view would
    if not isinstance(data, dict) or data.get("api_key") is None:
        return None
    value = data["api_key"]
    if not isinstance(value, str):
        raise validation_error({"api_key": ["Not a valid string."]})
    return value.strip()


class AgentKeyAuthentication(BaseAuthentication):
    """Authenticates `mmc_…` agent keys; see the module docstring for the whole contract."""

    def authenticate(self, request):
        from_header = header_key(request)
        from_body = body_key(request) if accepts_body_key(request) else None
        if from_header is not None and from_body is not None and from_header.strip() != from_body:
            raise validation_error({"api_key": ["The api_key in the body differs from the key in the "
                                                "Authorization header."]})
        raw_key = from_header if from_header is not None else from_body
        if raw_key is None:
            return None
        result = verify_key(raw_key, stop_before_permission=True)
        if not result.valid:
            record_verification(result.code.value, "request")
            record_refusal(result)
            request._not_authenticated()
            raise ApplicationError(result.code)
        principal = AgentKeyPrincipal(result.key, using_previous_secret=bool(result.using_previous_secret))
        return AgentKeyUser(principal), principal

    def authenticate_header(self, request):
        return WWW_AUTHENTICATE
