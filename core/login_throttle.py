"""Admin login throttling per client IP and per username (issue 12, item 16).

Failed logins are counted in the Django cache in fixed windows of `MAIMCONFIG_ADMIN_LOGIN_WINDOW_SECONDS`:
per username (case-folded) and per client IP. Once either count reaches its limit, further login POSTs for
that username or from that IP are answered 429 with `Retry-After` before the password is checked, until the
window ends; a successful login clears its username's count. The client IP is the socket address, or the
`X-Forwarded-For` entry chosen by `MAIMCONFIG_NUM_PROXIES`, like the `/auth` throttle (spec §1.14).

Like every cache-held counter, the counts are per worker process with the local-memory cache and shared
across workers and instances with Redis (`CACHE_URL=redis://…`, the production configuration).
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.dispatch import receiver
from django.http import HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import escape
from django.utils.translation import gettext as _


def client_ip(request) -> str:
    """The socket address, or the X-Forwarded-For entry `MAIMCONFIG_NUM_PROXIES` selects (0 = ignore it)."""
    proxies = settings.MAIMCONFIG_NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies > 0 and forwarded:
        addresses = [a.strip() for a in forwarded.split(",") if a.strip()]
        if addresses:
            return addresses[-min(proxies, len(addresses))]
    return request.META.get("REMOTE_ADDR", "")


def _window() -> tuple[int, int]:
    length = settings.MAIMCONFIG_ADMIN_LOGIN_WINDOW_SECONDS
    now = time.time()
    number = int(now // length)
    return number, max(1, int((number + 1) * length - now))


def _keys(ip: str, username: str) -> list[tuple[str, int]]:
    number, _ = _window()
    # Hashed: a username or address never appears in a cache key (keys can show up in Redis tooling).
    digest = lambda value: hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]  # noqa: E731
    keys = [(f"maimconfig:adminlogin:ip:{digest(ip)}:{number}", settings.MAIMCONFIG_ADMIN_LOGIN_MAX_FAILURES_PER_IP)]
    if username:
        keys.append((f"maimconfig:adminlogin:user:{digest(username)}:{number}",
                     settings.MAIMCONFIG_ADMIN_LOGIN_MAX_FAILURES_PER_USER))
    return keys


def _username(value) -> str:
    return str(value or "").strip().casefold()


def blocked(request, username: str) -> int | None:
    """Seconds to wait when the IP or the username has used up its failures in this window, else None."""
    counts = cache.get_many([key for key, _ in _keys(client_ip(request), _username(username))])
    for key, limit in _keys(client_ip(request), _username(username)):
        if counts.get(key, 0) >= limit:
            return _window()[1]
    return None


def record_failure(request, username: str) -> None:
    _, remaining = _window()
    for key, _limit in _keys(client_ip(request), _username(username)):
        cache.add(key, 0, timeout=remaining + 5)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=remaining + 5)


def clear_username(username: str) -> None:
    number, _ = _window()
    digest = hashlib.sha256(_username(username).encode("utf-8")).hexdigest()[:32]
    cache.delete(f"maimconfig:adminlogin:user:{digest}:{number}")


def _is_admin_login(request) -> bool:
    try:
        return request.path == reverse("admin:login")
    except NoReverseMatch:
        return False


@receiver(user_login_failed, dispatch_uid="maimconfig-admin-login-failed")
def _on_failure(sender, credentials, request=None, **kwargs):
    if request is not None and _is_admin_login(request):
        record_failure(request, credentials.get("username", ""))


@receiver(user_logged_in, dispatch_uid="maimconfig-admin-login-ok")
def _on_success(sender, request=None, user=None, **kwargs):
    if request is not None and user is not None and _is_admin_login(request):
        clear_username(user.get_username())


class AdminLoginThrottleMiddleware:
    """Answers 429 to a login POST of the admin once its IP or username is over the limit."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and _is_admin_login(request):
            wait = blocked(request, request.POST.get("username", ""))
            if wait is not None:
                message = _("Too many failed logins. Try again in %(seconds)d seconds.") % {"seconds": wait}
                response = HttpResponse(f"<!doctype html><title>429</title><p>{escape(message)}</p>", status=429,
                                        content_type="text/html; charset=utf-8")
                response["Retry-After"] = str(wait)
                response["Cache-Control"] = "no-store"
                return response
        return self.get_response(request)
