"""Admin base classes shared by every app: writes through the domain services, or no writes at all."""

from contextlib import contextmanager

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from core.exceptions import ApplicationError
from core.models import OperatorToken
from core.secret_page import secret_once_response


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
    """Browse only: the rows are written by the services (bots through the API, audited writes, config
    versions), never added, changed or deleted here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- Operator tokens (spec §1.13) -------------------------------------------------------------------




class OperatorTokenAddForm(forms.ModelForm):
    class Meta:
        model = OperatorToken
        fields = ("user", "expires_at")

    def validate_unique(self):
        """Adding a token for a user who has one replaces it (like `create_operator --rotate`)."""


@admin.register(OperatorToken)
class OperatorTokenAdmin(admin.ModelAdmin):
    """Operator tokens: listed by display prefix only (the hash is never shown). Adding one gives the chosen
    staff user a new token (replacing theirs), shown once on a `no-store` page; deleting one revokes it."""

    list_display = ("prefix_display", "user", "created_at", "expires_at", "last_used_at")
    list_select_related = ("user",)
    search_fields = ("user__username", "prefix")
    list_filter = ("expires_at",)
    form = OperatorTokenAddForm
    fields = ("user", "expires_at")
    readonly_fields = ("created_at", "last_used_at")

    @admin.display(description=_("token"), ordering="prefix")
    def prefix_display(self, obj: OperatorToken) -> str:
        return f"{obj.prefix}…"

    def has_change_permission(self, request, obj=None):
        return False  # a token is replaced (add) or revoked (delete), never edited

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = get_user_model().objects.filter(is_active=True, is_staff=True).order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        from core.services import operator_token_grant

        row, token = operator_token_grant(user=form.cleaned_data["user"],
                                          expires_at=form.cleaned_data.get("expires_at"))
        obj.pk = row.pk
        request._new_operator_token = (row, token)

    def response_add(self, request, obj, post_url_continue=None):
        created = getattr(request, "_new_operator_token", None)
        if created is None:
            return super().response_add(request, obj, post_url_continue)
        row, token = created
        return secret_once_response(
            request, title=_("New operator token"), back_url="../",
            rows=[{"label": row.user.get_username(), "secret": token, "key_id": row.pk,
                   "note": _("Send it as 'Authorization: Token <token>'. Any previous token of this user "
                             "stopped working.")}],
            admin_site=self.admin_site)
