"""Admin base classes shared by every app: writes through the domain services, or no writes at all."""

from contextlib import contextmanager

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect

from core.exceptions import ApplicationError


def error_lines(exc: ApplicationError | ValidationError) -> list[str]:
    """The readable sentences of a refused service call (`path: message` for field errors)."""
    if isinstance(exc, ValidationError):
        return exc.messages
    errors = exc.data.get("errors") if isinstance(exc.data, dict) else None
    if not errors:
        return [exc.error]
    return [f"{path}: {message}" for path, messages_ in errors.items() for message in messages_]


class _ServiceRefused(Exception):
    """Raised inside save_model to stop the admin's save after a refused service call."""


class ServiceModelAdmin(admin.ModelAdmin):
    """A ModelAdmin whose writes call the same services as the API.

    Wrap service calls in `with self.service_call(request):`. A refusal (ApplicationError or
    ValidationError) becomes an error message; the admin's transaction is rolled back and the form page
    is shown again, so nothing is saved and no success message appears.
    """

    @contextmanager
    def service_call(self, request):
        try:
            yield
        except (ApplicationError, ValidationError) as exc:
            self.message_user(request, "; ".join(error_lines(exc)), messages.ERROR)
            raise _ServiceRefused from exc

    def changeform_view(self, request, *args, **kwargs):
        try:
            return super().changeform_view(request, *args, **kwargs)
        except _ServiceRefused:
            return HttpResponseRedirect(request.get_full_path())


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Browse only: rows are written by bots through the API."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
