"""Admin base classes shared by every app: writes through the domain services, or no writes at all."""

from contextlib import contextmanager

from django.contrib import admin
from django.core.exceptions import ValidationError

from core.exceptions import ApplicationError


def error_lines(exc: ApplicationError | ValidationError) -> list[str]:
    """The readable sentences of a refused service call (`path: message` for field errors)."""
    if isinstance(exc, ValidationError):
        return exc.messages
    return [f"{path}: {message}" if path else message for path, message in error_fields(exc)]


def error_fields(exc: ApplicationError | ValidationError) -> list[tuple[str | None, str]]:
    """`(field path or None, sentence)` pairs of a refused service call, for attaching to a form."""
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return [(None if path == "__all__" else path, message)
                    for path, messages_ in exc.message_dict.items() for message in messages_]
        return [(None, message) for message in exc.messages]
    errors = exc.data.get("errors") if isinstance(exc.data, dict) else None
    if not errors:
        return [(None, exc.error)]
    return [(path, message) for path, messages_ in errors.items() for message in messages_]


class _ServiceRefused(Exception):
    """Raised inside save_model to stop the admin's save after a refused service call."""


class ServiceModelAdmin(admin.ModelAdmin):
    """A ModelAdmin whose writes call the same services as the API.

    Wrap service calls in `with self.service_call(request):`. A refusal (ApplicationError or
    ValidationError) rolls the admin's transaction back, and the form is shown again with what the
    operator typed and the refusal as its errors (on the field it names, else above the form): nothing
    is saved and no success message appears.

    How: the refusal surfaces in `save_model`, after the form has validated, where Django's admin has
    no way back to an invalid form. So the view runs a second time on the same POST, with a form that
    adds the refusal to its own validation; an invalid form is never saved, so the second pass only
    renders.
    """

    @contextmanager
    def service_call(self, request):
        try:
            yield
        except (ApplicationError, ValidationError) as exc:
            raise _ServiceRefused(exc) from exc

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except _ServiceRefused as refused:
            request._service_refusal = refused.args[0]
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        refusal = getattr(request, "_service_refusal", None)
        if refusal is None:
            return form_class

        class RefusedForm(form_class):
            def clean(self):
                cleaned = super().clean()
                for path, message in error_fields(refusal):
                    field = path.split(".")[0] if path else None
                    self.add_error(field if field in self.fields else None,
                                   message if field in self.fields or not path else f"{path}: {message}")
                return cleaned

        return RefusedForm


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """Browse only: rows are written by bots through the API."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
