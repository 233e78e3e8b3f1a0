"""The one application exception. Services raise it; `core.exception_handlers` renders it."""

from contextlib import contextmanager
from typing import Any

from core.errors import ErrorCode


class ApplicationError(Exception):
    """A domain error with a catalogue code.

    `error` overrides the catalogue's default sentence (never put exception text or secrets in it);
    `status` overrides the catalogue status where the spec gives one code two statuses (ACTIVITY_002);
    `data` is the envelope payload for the codes that carry details; `tenant_id` is the tenant already
    resolved when the error happened (spec §1.3); `headers` are added to the response.
    """

    def __init__(
        self,
        code: ErrorCode,
        error: str | None = None,
        *,
        status: int | None = None,
        data: Any = None,
        tenant_id: str | None = None,
        headers: dict[str, str] | None = None,
        message: str | None = None,
    ):
        self.code = code
        self.error = error or code.spec.error
        self.status = status or code.status
        self.data = data
        self.tenant_id = tenant_id
        self.headers = headers or {}
        self.message = message or code.spec.message
        super().__init__(self.error)


def validation_error(errors: dict[str, list[str]], code: ErrorCode = ErrorCode.VALIDATION_ERROR,
                     tenant_id: str | None = None) -> ApplicationError:
    """An error carrying `data.errors` keyed by field path (VALIDATION_ERROR, AGENT_012, AGENT_011)."""
    first_path, first_messages = next(iter(errors.items()))
    return ApplicationError(
        code,
        f"{first_path}: {first_messages[0]}",
        data={"errors": errors},
        tenant_id=tenant_id,
    )


@contextmanager
def tenant_resolved(tenant_id: str | None):
    """Body/query validation after the path's object was found: a DRF `ValidationError` raised inside
    becomes VALIDATION_ERROR carrying that object's tenant in the envelope (spec §1.3)."""
    from rest_framework.exceptions import ValidationError

    from core.validation import NON_FIELD, flatten_errors

    try:
        yield
    except ValidationError as exc:
        raise validation_error(flatten_errors(exc.detail) or {NON_FIELD: ["Invalid input."]},
                               tenant_id=tenant_id) from None
