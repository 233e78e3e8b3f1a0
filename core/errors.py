"""The error-code catalogue (spec §1.16): the only codes the API ever emits.

Each entry has the HTTP status, the short `message` and the default one-sentence `error`. Raise
`core.exceptions.ApplicationError(ErrorCode.X)` (optionally with a more specific sentence); the exception
handler turns it into the envelope. Nothing else in the project defines error codes or statuses.
"""

from dataclasses import dataclass
from enum import Enum

from django.utils.translation import gettext_noop


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
    CONFLICT = "CONFLICT"
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
    ErrorCode.VALIDATION_ERROR: ErrorSpec(400, gettext_noop("Request validation failed"), gettext_noop("The request is invalid.")),
    ErrorCode.NOT_AUTHENTICATED: ErrorSpec(
        401, gettext_noop("Authentication required"), gettext_noop("Authentication credentials were not provided or are invalid.")
    ),
    ErrorCode.PERMISSION_DENIED: ErrorSpec(
        403, gettext_noop("Permission denied"), gettext_noop("You do not have permission to perform this action.")
    ),
    ErrorCode.NOT_FOUND: ErrorSpec(404, gettext_noop("Not found"), gettext_noop("The requested resource does not exist.")),
    ErrorCode.METHOD_NOT_ALLOWED: ErrorSpec(
        405, gettext_noop("Method not allowed"), gettext_noop("This method is not allowed on this route.")
    ),
    ErrorCode.PAYLOAD_TOO_LARGE: ErrorSpec(
        413, gettext_noop("Payload too large"), gettext_noop("The request body is larger than the service accepts.")
    ),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: ErrorSpec(
        415, gettext_noop("Unsupported media type"), gettext_noop("The request body must be sent as application/json.")
    ),
    ErrorCode.RATE_LIMITED: ErrorSpec(429, gettext_noop("Too many requests"), gettext_noop("Request rate limit exceeded.")),
    ErrorCode.INTERNAL_ERROR: ErrorSpec(
        500, gettext_noop("Internal server error"), gettext_noop("An unexpected error occurred while handling the request.")
    ),
    ErrorCode.SERVICE_UNAVAILABLE: ErrorSpec(
        503, gettext_noop("Service unavailable"), gettext_noop("The database is unreachable; try again later.")
    ),
    # A database constraint refused a write no service turned into its resource's own code (issue 15):
    # a duplicate or a row that vanished meanwhile. Raised by the exception handler only.
    ErrorCode.CONFLICT: ErrorSpec(
        409, gettext_noop("Conflict"), gettext_noop("The request conflicts with the current state of the data; reload it and try again.")
    ),
    ErrorCode.TENANT_002: ErrorSpec(409, gettext_noop("Tenant name already in use"), gettext_noop("A tenant with this name already exists.")),
    ErrorCode.TENANT_003: ErrorSpec(404, gettext_noop("Tenant not found"), gettext_noop("The tenant does not exist.")),
    ErrorCode.TENANT_008: ErrorSpec(409, gettext_noop("Tenant is not active"), gettext_noop("The tenant is not active.")),
    ErrorCode.AGENT_001: ErrorSpec(404, gettext_noop("Tenant not found"), gettext_noop("The tenant named for the agent does not exist.")),
    ErrorCode.AGENT_002: ErrorSpec(
        409, gettext_noop("Agent name already in use"), gettext_noop("An agent with this name already exists in this tenant.")
    ),
    ErrorCode.AGENT_004: ErrorSpec(404, gettext_noop("Agent not found"), gettext_noop("The agent does not exist.")),
    ErrorCode.AGENT_011: ErrorSpec(
        400, gettext_noop("Agent config references a system provider"), gettext_noop("The agent config references a system provider.")
    ),
    ErrorCode.AGENT_012: ErrorSpec(400, gettext_noop("Agent config invalid"), gettext_noop("The agent config is invalid.")),
    ErrorCode.AGENT_013: ErrorSpec(409, gettext_noop("Agent is not active"), gettext_noop("The agent is not active.")),
    ErrorCode.AGENT_014: ErrorSpec(
        404, gettext_noop("Configuration version not found"), gettext_noop("The agent has no configuration version with this number.")
    ),
    ErrorCode.KEY_001: ErrorSpec(404, gettext_noop("API key not found"), gettext_noop("The API key does not exist.")),
    ErrorCode.KEY_002: ErrorSpec(
        409, gettext_noop("API key name already in use"), gettext_noop("An API key with this name already exists in this tenant.")
    ),
    ErrorCode.KEY_003: ErrorSpec(
        409, gettext_noop("Operation not allowed in the key's status"), gettext_noop("The operation is not allowed in the key's current status.")
    ),
    ErrorCode.AUTH_001: ErrorSpec(401, gettext_noop("Invalid API key format"), gettext_noop("The API key format is invalid.")),
    ErrorCode.AUTH_002: ErrorSpec(401, gettext_noop("API key expired"), gettext_noop("The API key has expired.")),
    ErrorCode.AUTH_003: ErrorSpec(403, gettext_noop("Permission not granted"), gettext_noop("The API key lacks the required permission.")),
    ErrorCode.AUTH_004: ErrorSpec(401, gettext_noop("API key disabled"), gettext_noop("The API key is disabled.")),
    ErrorCode.AUTH_005: ErrorSpec(401, gettext_noop("API key not found"), gettext_noop("The API key is unknown.")),
    ErrorCode.AUTH_006: ErrorSpec(403, gettext_noop("Tenant not active"), gettext_noop("The API key's tenant is not active.")),
    ErrorCode.AUTH_007: ErrorSpec(403, gettext_noop("Agent not active"), gettext_noop("The API key's agent is not active.")),
    ErrorCode.AUTH_008: ErrorSpec(
        429, gettext_noop("API key rate limit reached"), gettext_noop("The API key's per-minute rate limit has been reached.")
    ),
    ErrorCode.ACTIVITY_002: ErrorSpec(404, gettext_noop("Heartbeat refused"), gettext_noop("The heartbeat was refused.")),
    ErrorCode.PLUGIN_001: ErrorSpec(404, gettext_noop("Plugin setting not found"), gettext_noop("The plugin setting does not exist.")),
    ErrorCode.CHAT_001: ErrorSpec(404, gettext_noop("Conversation not found"), gettext_noop("The conversation does not exist for this agent.")),
    ErrorCode.CHAT_002: ErrorSpec(
        502, gettext_noop("Upstream model failed"), gettext_noop("The language model returned an error or an unusable response.")
    ),
    ErrorCode.CHAT_003: ErrorSpec(504, gettext_noop("Upstream model timed out"), gettext_noop("The language model did not answer in time.")),
    ErrorCode.CHAT_004: ErrorSpec(
        429, gettext_noop("Too many chat requests in flight"),
        gettext_noop("Too many chat requests of this API key or tenant are in flight; retry later."),
    ),
}

assert set(CATALOGUE) == set(ErrorCode), "every error code needs a catalogue entry"
