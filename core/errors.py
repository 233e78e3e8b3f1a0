"""The error-code catalogue (spec §1.16): the only codes the API ever emits.

Each entry has the HTTP status, the short `message` and the default one-sentence `error`. Raise
`core.exceptions.ApplicationError(ErrorCode.X)` (optionally with a more specific sentence); the exception
handler turns it into the envelope. Nothing else in the project defines error codes or statuses.
"""

from dataclasses import dataclass
from enum import Enum

from django.utils.translation import gettext_noop as _N


@dataclass(frozen=True)
class ErrorSpec:
    """`message` and `error` are English msgids (marked for `make messages`); the envelope builder
    (`core.envelope.build_envelope`) translates them into the request's language (spec §1.3)."""

    status: int
    message: str
    error: str


class ErrorCode(str, Enum):
    VALIDATION_ERROR = "VALIDATION_ERROR"
    NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    TENANT_002 = "TENANT_002"
    TENANT_003 = "TENANT_003"
    TENANT_008 = "TENANT_008"
    AGENT_001 = "AGENT_001"
    AGENT_002 = "AGENT_002"
    AGENT_004 = "AGENT_004"
    AGENT_011 = "AGENT_011"
    AGENT_012 = "AGENT_012"
    AGENT_013 = "AGENT_013"
    AGENT_014 = "AGENT_014"
    KEY_001 = "KEY_001"
    KEY_002 = "KEY_002"
    KEY_003 = "KEY_003"
    AUTH_001 = "AUTH_001"
    AUTH_002 = "AUTH_002"
    AUTH_003 = "AUTH_003"
    AUTH_004 = "AUTH_004"
    AUTH_005 = "AUTH_005"
    AUTH_006 = "AUTH_006"
    AUTH_007 = "AUTH_007"
    AUTH_008 = "AUTH_008"
    ACTIVITY_002 = "ACTIVITY_002"
    PLUGIN_001 = "PLUGIN_001"
    CHAT_001 = "CHAT_001"
    CHAT_002 = "CHAT_002"
    CHAT_003 = "CHAT_003"
    CHAT_004 = "CHAT_004"

    @property
    def spec(self) -> ErrorSpec:
        return CATALOGUE[self]

    @property
    def status(self) -> int:
        return CATALOGUE[self].status


CATALOGUE: dict[ErrorCode, ErrorSpec] = {
    ErrorCode.VALIDATION_ERROR: ErrorSpec(400, _N("Request validation failed"), _N("The request is invalid.")),
    ErrorCode.NOT_AUTHENTICATED: ErrorSpec(
        401, _N("Authentication required"), _N("Authentication credentials were not provided or are invalid.")
    ),
    ErrorCode.PERMISSION_DENIED: ErrorSpec(
        403, _N("Permission denied"), _N("You do not have permission to perform this action.")
    ),
    ErrorCode.NOT_FOUND: ErrorSpec(404, _N("Not found"), _N("The requested resource does not exist.")),
    ErrorCode.METHOD_NOT_ALLOWED: ErrorSpec(
        405, _N("Method not allowed"), _N("This method is not allowed on this route.")
    ),
    ErrorCode.PAYLOAD_TOO_LARGE: ErrorSpec(
        413, _N("Payload too large"), _N("The request body is larger than the service accepts.")
    ),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: ErrorSpec(
        415, _N("Unsupported media type"), _N("The request body must be sent as application/json.")
    ),
    ErrorCode.RATE_LIMITED: ErrorSpec(429, _N("Too many requests"), _N("Request rate limit exceeded.")),
    ErrorCode.INTERNAL_ERROR: ErrorSpec(
        500, _N("Internal server error"), _N("An unexpected error occurred while handling the request.")
    ),
    ErrorCode.SERVICE_UNAVAILABLE: ErrorSpec(
        503, _N("Service unavailable"), _N("The database is unreachable; try again later.")
    ),
    ErrorCode.TENANT_002: ErrorSpec(409, _N("Tenant name already in use"), _N("A tenant with this name already exists.")),
    ErrorCode.TENANT_003: ErrorSpec(404, _N("Tenant not found"), _N("The tenant does not exist.")),
    ErrorCode.TENANT_008: ErrorSpec(409, _N("Tenant is not active"), _N("The tenant is not active.")),
    ErrorCode.AGENT_001: ErrorSpec(404, _N("Tenant not found"), _N("The tenant named for the agent does not exist.")),
    ErrorCode.AGENT_002: ErrorSpec(
        409, _N("Agent name already in use"), _N("An agent with this name already exists in this tenant.")
    ),
    ErrorCode.AGENT_004: ErrorSpec(404, _N("Agent not found"), _N("The agent does not exist.")),
    ErrorCode.AGENT_011: ErrorSpec(
        400, _N("Agent config references a system provider"), _N("The agent config references a system provider.")
    ),
    ErrorCode.AGENT_012: ErrorSpec(400, _N("Agent config invalid"), _N("The agent config is invalid.")),
    ErrorCode.AGENT_013: ErrorSpec(409, _N("Agent is not active"), _N("The agent is not active.")),
    ErrorCode.AGENT_014: ErrorSpec(
        404, _N("Configuration version not found"), _N("The agent has no configuration version with this number.")
    ),
    ErrorCode.KEY_001: ErrorSpec(404, _N("API key not found"), _N("The API key does not exist.")),
    ErrorCode.KEY_002: ErrorSpec(
        409, _N("API key name already in use"), _N("An API key with this name already exists in this tenant.")
    ),
    ErrorCode.KEY_003: ErrorSpec(
        409, _N("Operation not allowed in the key's status"), _N("The operation is not allowed in the key's current status.")
    ),
    ErrorCode.AUTH_001: ErrorSpec(401, _N("Invalid API key format"), _N("The API key format is invalid.")),
    ErrorCode.AUTH_002: ErrorSpec(401, _N("API key expired"), _N("The API key has expired.")),
    ErrorCode.AUTH_003: ErrorSpec(403, _N("Permission not granted"), _N("The API key lacks the required permission.")),
    ErrorCode.AUTH_004: ErrorSpec(401, _N("API key disabled"), _N("The API key is disabled.")),
    ErrorCode.AUTH_005: ErrorSpec(401, _N("API key not found"), _N("The API key is unknown.")),
    ErrorCode.AUTH_006: ErrorSpec(403, _N("Tenant not active"), _N("The API key's tenant is not active.")),
    ErrorCode.AUTH_007: ErrorSpec(403, _N("Agent not active"), _N("The API key's agent is not active.")),
    ErrorCode.AUTH_008: ErrorSpec(
        429, _N("API key rate limit reached"), _N("The API key's per-minute rate limit has been reached.")
    ),
    ErrorCode.ACTIVITY_002: ErrorSpec(404, _N("Heartbeat refused"), _N("The heartbeat was refused.")),
    ErrorCode.PLUGIN_001: ErrorSpec(404, _N("Plugin setting not found"), _N("The plugin setting does not exist.")),
    ErrorCode.CHAT_001: ErrorSpec(404, _N("Conversation not found"), _N("The conversation does not exist for this agent.")),
    ErrorCode.CHAT_002: ErrorSpec(
        502, _N("Upstream model failed"), _N("The language model returned an error or an unusable response.")
    ),
    ErrorCode.CHAT_003: ErrorSpec(504, _N("Upstream model timed out"), _N("The language model did not answer in time.")),
    ErrorCode.CHAT_004: ErrorSpec(
        429, _N("Too many chat requests in flight"),
        _N("Too many chat requests of this API key or tenant are in flight; retry later."),
    ),
}

assert set(CATALOGUE) == set(ErrorCode), "every error code needs a catalogue entry"
