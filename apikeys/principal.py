"""What an agent-key-authenticated request carries as `request.auth` and `request.user`."""

from django.contrib.auth.models import AnonymousUser

# Route permission -> the key permissions that grant it (spec §1.13: `config_read` is the original's name).
PERMISSION_EQUIVALENTS: dict[str, frozenset[str]] = {"config": frozenset({"config", "config_read"})}


class AgentKeyPrincipal:
    """`request.auth` of a request authenticated with an agent key.

    Attributes: `is_agent_key` (always True), `api_key_id`, `tenant_id`, `agent_id`, `permissions`
    (tuple of str), `rate_limit_per_minute` (int or None), `using_previous_secret` (bool), and `api_key`,
    the verified key (`apikeys.selectors.KeyRecord`: hashes only, never the secret; with
    `tenant_status`/`agent_status`).
    """

    is_agent_key = True

    def __init__(self, api_key, *, using_previous_secret: bool = False):
        self.api_key = api_key
        self.api_key_id: str = api_key.pk
        self.tenant_id: str = api_key.tenant_id
        self.agent_id: str = api_key.agent_id
        self.permissions: tuple[str, ...] = tuple(api_key.permissions or ())
        self.rate_limit_per_minute: int | None = api_key.rate_limit_per_minute
        self.using_previous_secret = using_previous_secret

    def has_permission(self, permission: str) -> bool:
        """True when the key grants the ROUTE permission `permission` (`config` also via `config_read`)."""
        granted = PERMISSION_EQUIVALENTS.get(permission, frozenset({permission}))
        return any(p in granted for p in self.permissions)

    def __repr__(self) -> str:
        return f"<AgentKeyPrincipal {self.api_key_id} agent={self.agent_id}>"


class AgentKeyUser(AnonymousUser):
    """`request.user` of an agent-key request: not a Django user (not staff, not authenticated as one)."""

    def __init__(self, principal: AgentKeyPrincipal):
        super().__init__()
        self.principal = principal
        self.api_key_id = principal.api_key_id
        self.tenant_id = principal.tenant_id
        self.agent_id = principal.agent_id

    def __str__(self) -> str:
        return f"agent-key:{self.api_key_id}"
