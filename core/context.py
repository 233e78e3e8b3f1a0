"""Per-request context shared by logging, the envelope and the exception handler."""

import contextvars
import re
import uuid

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def request_id_from_header(value: str | None) -> str:
    """The client's X-Request-ID when it is well formed (spec §1.4), else a fresh UUID4."""
    if value and _REQUEST_ID_RE.match(value):
        return value
    return str(uuid.uuid4())

# perf_counter() value at the start of the request; 0.0 outside a request.
request_started_var: contextvars.ContextVar[float] = contextvars.ContextVar("request_started", default=0.0)
