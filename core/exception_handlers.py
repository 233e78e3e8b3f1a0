"""The one exception handler of the API: every error becomes the envelope with a catalogue code.

DRF calls `api_exception_handler` for exceptions raised in views, authentication, permissions and
throttles. Exceptions that escape DRF (for example while opening the request's transaction) are
caught by `core.middleware.ApiExceptionMiddleware`, which uses `response_for_unhandled` below.
"""

import logging
import math

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from core import db_errors
from core.envelope import (
    WWW_AUTHENTICATE,
    apply_legacy_status,
    error_response,
    is_openai_path,
    openai_error_body,
)
from core.errors import ErrorCode
from core.exceptions import ApplicationError, validation_error
from core.races import vanished_agent
from core.validation import NON_FIELD, flatten_errors

logger = logging.getLogger("maimconfig.api")



def to_application_error(exc: BaseException) -> ApplicationError | None:
    """Map a known exception to an ApplicationError; None for an unexpected one."""
    if isinstance(exc, ApplicationError):
        return exc
    if isinstance(exc, drf.ParseError):
        return validation_error({NON_FIELD: ["Malformed JSON: the body could not be parsed."]})
    if isinstance(exc, drf.ValidationError):
        errors = flatten_errors(exc.detail) or {NON_FIELD: ["Invalid input."]}
        return validation_error(errors)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {NON_FIELD: exc.messages}
        return validation_error(flatten_errors(detail))
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        return ApplicationError(ErrorCode.NOT_AUTHENTICATED, str(exc.detail) if isinstance(
            exc, drf.AuthenticationFailed) else None)
    if isinstance(exc, (drf.PermissionDenied, DjangoPermissionDenied)):
        return ApplicationError(ErrorCode.PERMISSION_DENIED)
    if isinstance(exc, (drf.NotFound, Http404)):
        return ApplicationError(ErrorCode.NOT_FOUND)
    if isinstance(exc, drf.MethodNotAllowed):
        return ApplicationError(ErrorCode.METHOD_NOT_ALLOWED)
    if isinstance(exc, drf.UnsupportedMediaType):
        return ApplicationError(ErrorCode.UNSUPPORTED_MEDIA_TYPE)
    if isinstance(exc, drf.Throttled):
        wait = max(1, math.ceil(exc.wait or 1))
        return ApplicationError(ErrorCode.RATE_LIMITED, data={"retry_after": wait},
                                headers={"Retry-After": str(wait)})
    failure = db_errors.classify(exc)
    if failure is not None:
        wait = db_errors.RETRY_AFTER_SECONDS[failure]
        return ApplicationError(ErrorCode.SERVICE_UNAVAILABLE, db_errors.unavailable_message(failure),
                                headers={"Retry-After": str(wait)})
    refusal = db_errors.classify_integrity(exc)
    if refusal is not None:
        # A service should have turned this into its resource's code; logged (summarised) to find it.
        logger.warning("Integrity error reached the exception handler", exc_info=(type(exc), exc, exc.__traceback__),
                       extra={"failure_kind": "database_integrity"})
        if refusal.status == 409:
            return ApplicationError(ErrorCode.CONFLICT)
        return validation_error({NON_FIELD: [gettext("The database refused a value of this request.")]})
    return None


def _log_unexpected(exc: BaseException) -> None:
    """Log a 5xx cause with its traceback. Repeats of one kind are summarised by the log handler's
    `core.logging.RepeatSummaryFilter` (an outage must be visible, not bury the disk); the kind is the
    database failure (`database_read_only`, …) or `unhandled_exception`."""
    failure = db_errors.classify(exc)
    if failure is not None:
        logger.error("Database unavailable (%s)", failure.value, exc_info=(type(exc), exc, exc.__traceback__),
                     extra={"failure_kind": failure.value})
    else:
        logger.error("Unhandled exception", exc_info=(type(exc), exc, exc.__traceback__),
                     extra={"failure_kind": "unhandled_exception"})


def _agent_key_tenant_id(request) -> str | None:
    """The key's tenant of an agent-key request (resolved at authentication, spec §1.3), else None.

    Reads the already-set `_auth` only: touching `request.auth` here would re-run authentication for an
    error raised before it (content negotiation, throttling order) and could raise again.
    """
    auth = getattr(request, "_auth", None) if request is not None else None
    return auth.tenant_id if getattr(auth, "is_agent_key", False) else None


def api_exception_handler(exc, context):
    app_error = vanished_agent(exc, context.get("request")) or to_application_error(exc)
    if app_error is None:
        _log_unexpected(exc)
        app_error = ApplicationError(ErrorCode.INTERNAL_ERROR)
    elif app_error.code == ErrorCode.SERVICE_UNAVAILABLE:
        _log_unexpected(exc)
    set_rollback()
    request = context.get("request")
    if request is not None and is_openai_path(request.path):
        param = None
        if app_error.data and isinstance(app_error.data, dict) and "errors" in app_error.data:
            param = next(iter(app_error.data["errors"]), None)
        response = Response(openai_error_body(app_error.code.value, app_error.status, app_error.error, param),
                            status=app_error.status)
        response.openai_error = True
    else:
        response = Response(app_error.data, status=app_error.status)
        response.api_error_code = app_error.code.value
        response.api_error = app_error.error
        response.api_message = app_error.message
        response.api_tenant_id = None if app_error.status in (401, 403) else (
            app_error.tenant_id or _agent_key_tenant_id(request))
    for name, value in app_error.headers.items():
        response[name] = value
    if app_error.status == 401:
        response["WWW-Authenticate"] = WWW_AUTHENTICATE
    apply_legacy_status(request, response, app_error.code.value)
    return response


def response_for_unhandled(request, exc: BaseException):
    """A JSON error for an exception that escaped DRF (never HTML, never exception text)."""
    app_error = to_application_error(exc)
    if app_error is None:
        _log_unexpected(exc)
        return error_response(request, ErrorCode.INTERNAL_ERROR)
    if app_error.code == ErrorCode.SERVICE_UNAVAILABLE:
        _log_unexpected(exc)
    return error_response(request, app_error.code, app_error.error, data=app_error.data,
                          headers=app_error.headers, status=app_error.status, message=app_error.message,
                          tenant_id=app_error.tenant_id or _agent_key_tenant_id(request))
