"""The one page that shows a freshly minted secret: rendered as the answer of the POST that created it (no
redirect, so the secret is never stored in a message, a session or a cookie), marked `no-store` so no
browser or proxy cache keeps it, and never linked to again."""

from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _


def secret_once_response(request, *, title, rows: list[dict], back_url: str, admin_site) -> TemplateResponse:
    """`rows`: one dict per secret with `label` (what it belongs to), `secret`, and optional `note`."""
    context = {
        **admin_site.each_context(request),
        "title": title,
        "rows": rows,
        "back_url": back_url,
        "warning": _("Copy the secret now: it is shown only on this page and cannot be displayed again. "
                     "Only a hash is stored."),
    }
    response = TemplateResponse(request, "core/secret_once.html", context)
    response["Cache-Control"] = "no-store, max-age=0"
    response["Pragma"] = "no-cache"
    response["Referrer-Policy"] = "no-referrer"
    return response
