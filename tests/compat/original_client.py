"""A client written the way the original MaimConfig's clients are (its `test_api.py`, its documented
`requests` examples, and web backends built on it): `requests` against a base URL, `raise_for_status()`
before reading the envelope, then `success` / `error_code`, and strict response models.

Our own equivalent, written for the compatibility suite; nothing of the original is copied or fetched.
"""

from typing import Any

import requests
from pydantic import BaseModel, ConfigDict


class Refused(Exception):
    """The envelope said `success: false` (what the original's clients show to their users)."""

    def __init__(self, body: dict):
        self.body = body
        self.error_code = body.get("error_code")
        super().__init__(f"{self.error_code}: {body.get('message')}")


class OriginalClient:
    """One session against `base_url`; `legacy_errors=True` asks for the original's 200-on-refusal."""

    def __init__(self, base_url: str, *, legacy_errors: bool = False, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.timeout = timeout
        if legacy_errors:
            self.session.headers["X-MaimConfig-Legacy-Errors"] = "1"

    def raw(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, f"{self.base_url}{path}", timeout=self.timeout, **kwargs)

    def call(self, method: str, path: str, **kwargs) -> Any:
        """`raise_for_status()` first (any 4xx/5xx is a transport failure to these clients), then the
        envelope's verdict; returns `data`."""
        response = self.raw(method, path, **kwargs)
        response.raise_for_status()
        body = response.json()
        if not body["success"]:
            raise Refused(body)
        return body["data"]

    def close(self) -> None:
        self.session.close()


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class Pagination(_Strict):
    page: int
    page_size: int
    total: int
    total_pages: int
    has_next: bool
    has_prev: bool


class OriginalPage(_Strict):
    """A list `data` as the original's clients read it: `items` + `pagination`, or `total/page/size/pages`."""

    items: list[dict]
    pagination: Pagination
    total: int
    page: int
    size: int
    pages: int


class OriginalTenant(_Strict):
    tenant_id: str
    tenant_name: str
    tenant_type: str
    status: str
    tenant_config: dict | None
    created_at: str


class AgentConfig(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    persona: dict
    bot_overrides: dict
    config_overrides: dict


class OriginalAgent(_Strict):
    agent_id: str
    tenant_id: str
    name: str
    description: str | None
    template_id: str | None
    config: AgentConfig
    status: str
    created_at: str
    updated_at: str


class OriginalApiKey(_Strict):
    api_key_id: str
    tenant_id: str
    agent_id: str
    name: str
    description: str | None
    api_key: str
    permissions: list[str]
    status: str
    expires_at: str | None
    created_at: str


class OriginalPluginSetting(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    plugin_name: str
    enabled: bool
    config: dict
