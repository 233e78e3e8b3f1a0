"""Rotation in the operators' console: a "Rotate" button on a key's page and a bulk action, both with a
grace period, both answering with the one-time secret page (`core.secret_page`); and the creation of a
key answering with that page too (never a message, which Django may keep in a cookie)."""

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext, gettext_lazy as _, ngettext

from apikeys import services
from core.secret_page import secret_once_response
from core.admin import error_lines
from core.exceptions import ApplicationError

GRACE_CHOICES = [
    (0, _("None: the current secret stops working now")),
    (300, _("5 minutes")),
    (3600, _("1 hour")),
    (86400, _("24 hours")),
]


class RotateForm(forms.Form):
    grace_seconds = forms.TypedChoiceField(
        label=_("Grace period"), choices=GRACE_CHOICES, coerce=int, initial=3600,
        help_text=_("How long the current secret keeps working beside the new one, so bots can be updated."))


class ApiKeyConsoleMixin:
    """Mixed into ApiKeyAdmin (before ServiceModelAdmin)."""

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/rotate/", self.admin_site.admin_view(self.rotate_view),
                 name="%s_%s_rotate" % info),
            *super().get_urls(),
        ]

    def _changelist_url(self) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist",
                       current_app=self.admin_site.name)

    def _change_url(self, key) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[quote(key.pk)],
                       current_app=self.admin_site.name)

    def _secret_rows(self, rotated: list, grace_seconds: int) -> list[dict]:
        note = (gettext("The previous secret keeps working for %(seconds)s seconds.") % {"seconds": grace_seconds}
                if grace_seconds else gettext("The previous secret no longer works."))
        return [{"key_id": key.pk, "label": f"{key.name} ({key.pk})", "secret": raw_key, "note": note}
                for key, raw_key in rotated]

    def rotate_view(self, request, object_id):
        key = self.get_object(request, unquote(object_id))
        if key is None:
            raise Http404
        if not self.has_change_permission(request, key):
            raise PermissionDenied
        form = RotateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            grace = form.cleaned_data["grace_seconds"]
            try:
                with transaction.atomic():
                    rotated, raw_key = services.apikey_rotate(api_key=key, grace_seconds=grace)
            except (ApplicationError, ValidationError) as exc:
                for line in error_lines(exc):
                    form.add_error(None, line)
            else:
                return secret_once_response(request, title=gettext("API key rotated"),
                                            rows=self._secret_rows([(rotated, raw_key)], grace),
                                            back_url=self._change_url(rotated), admin_site=self.admin_site)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Rotate API key %(name)s") % {"name": key.name},
            "opts": self.opts, "original": key, "form": form, "keys": [key],
            "back_url": self._change_url(key),
        }
        return TemplateResponse(request, "console/apikey_rotate.html", context)

    def rotate_keys(self, request, queryset):
        """Bulk rotation: a confirmation page with the grace period first, then the secrets page."""
        keys = list(queryset)
        if "apply" not in request.POST:
            context = {
                **self.admin_site.each_context(request),
                "title": ngettext("Rotate %(count)d API key", "Rotate %(count)d API keys", len(keys))
                % {"count": len(keys)},
                "opts": self.opts, "form": RotateForm(), "keys": keys, "bulk": True,
                "back_url": self._changelist_url(),
            }
            return TemplateResponse(request, "console/apikey_rotate.html", context)
        form = RotateForm(request.POST)
        if not form.is_valid():
            self.message_user(request, gettext("Choose a grace period."), messages.ERROR)
            return None
        grace = form.cleaned_data["grace_seconds"]
        rotated, refused = [], []
        for key in keys:
            try:
                with transaction.atomic():
                    rotated.append(services.apikey_rotate(api_key=key, grace_seconds=grace))
            except (ApplicationError, ValidationError) as exc:
                refused.append(f"{key.name} ({key.pk}): {'; '.join(error_lines(exc))}")
        for line in refused:
            self.message_user(request, line, messages.ERROR)
        if not rotated:
            return None
        return secret_once_response(request, title=gettext("API keys rotated"),
                                    rows=self._secret_rows(rotated, grace), back_url=self._changelist_url(),
                                    admin_site=self.admin_site)

    rotate_keys.short_description = _("Rotate selected API keys (new secrets, with a grace period)")
    rotate_keys.allowed_permissions = ("change",)

    def response_add(self, request, obj, post_url_continue=None):
        created = getattr(request, "_console_new_secret", None)
        if created is None:
            return super().response_add(request, obj, post_url_continue)
        key, raw_key = created
        rows = [{"key_id": key.pk, "label": f"{key.name} ({key.pk})", "secret": raw_key, "note": ""}]
        return secret_once_response(request, title=gettext("API key created"), rows=rows,
                                    back_url=self._change_url(key), admin_site=self.admin_site)


KNOWN_PERMISSIONS = ("chat", "config", "plugins")


class PermissionsWidget(forms.MultiWidget):
    """The known permissions as checkboxes plus a text box for any other (comma-separated). The value is
    the comma-separated text `PermissionsFormField` parses, so the rules stay the API's."""

    def __init__(self, attrs=None):
        super().__init__([
            forms.CheckboxSelectMultiple(choices=[(name, name) for name in KNOWN_PERMISSIONS],
                                         attrs={"class": "known-permissions"}),
            forms.TextInput(attrs={"size": 40, "placeholder": _("other permissions, comma-separated"),
                                   "class": "extra-permissions"}),
        ], attrs)

    def decompress(self, value):
        items = [item.strip() for item in (value or "").split(",") if item.strip()]
        return [[item for item in items if item in KNOWN_PERMISSIONS],
                ", ".join(item for item in items if item not in KNOWN_PERMISSIONS)]

    def value_from_datadict(self, data, files, name):
        if name in data and f"{name}_1" not in data:  # a plain comma-separated field (scripts, old forms)
            return data.get(name) or ""
        known, extra = super().value_from_datadict(data, files, name)
        return ", ".join([*(known or []), *([extra] if extra and extra.strip() else [])])

    def value_omitted_from_data(self, data, files, name):
        return False  # no box ticked and no text is "no permissions", not "field omitted"
