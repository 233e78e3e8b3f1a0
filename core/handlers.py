"""The service's WSGI handler: Django's, with request transactions only where a request can write, and a
lean middleware stack for API calls that carry no cookie.

`ATOMIC_REQUESTS` stays on (style guide: every write of a request commits or rolls back as a whole), but a
safe request (`GET`, `HEAD`, `OPTIONS`) runs without a transaction: its reads autocommit one statement at a
time, so a `GET` of one object costs authentication plus one query per object shown, and no
`BEGIN`/`COMMIT` round trips (issue 11). Safe routes write nothing that needs atomicity: the only write a
`GET` can make is the single-statement use count of an agent key, which must stay counted anyway.

**Lean stack.** Bots and API clients send no cookie. For them the browser-session middleware
(`LEAN_SKIPPED`: sessions, CSRF, the admin-login throttle, `request.user`, messages, static files) has
nothing to read and nothing to write, yet it was a third of the cost of a small request. A request whose
path is an API or operational route (`LEAN_PREFIXES`, `LEAN_PATHS`) and that carries no `Cookie` header runs
through `settings.MIDDLEWARE` without those classes; every other request (the admin console, the docs, any
request with a cookie) runs through the whole stack. The answers are the same but for one header: the
full stack adds `Cookie` to `Vary` when DRF's session authentication looked for a session, which a request
without a cookie cannot have; the lean stack adds it to the same answers, so a shared cache
sees the same `Vary` either way (`core.middleware.SessionVaryMiddleware` takes the session middleware's
place in the chain, so the header's order is kept too).

**Django's request cycle, trimmed** (issue 11: Django's per-request floor). `ServiceWSGIHandler.__call__` is
Django's, but for three things: the request signals go through `core.request_signals` (one plain call each
while their receivers are Django's own), the header list is read from the response's header store, and the
answer it returns finishes the request the same way (`_Answer`). Each sync-lane thread creates its database
and cache handles when it starts (`prepare_thread`), and the per-method view wrapper below is built once
per view.

Served by the sync lane (`core.lanes.build_application`) and by `maimconfig/wsgi.py`.
"""

import threading

from django.conf import settings
from django.core.cache import caches
from django.core.handlers.wsgi import WSGIHandler, get_script_name
from django.db import connections
from django.http.response import HttpResponseBase
from django.urls import URLResolver, get_resolver, set_script_prefix
from django.urls.resolvers import LocalePrefixPattern
from django.utils.functional import Promise

from core import request_signals

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Middleware that serves browsers only: skipped for cookie-less API requests (module docstring).
LEAN_SKIPPED = frozenset({
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.login_throttle.AdminLoginThrottleMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
})
# ... what takes the place of one of them, and the lean versions of the middleware that stays (the same
# answers, cheaper: `core.middleware`, "lean stack's versions").
LEAN_REPLACED = {
    "django.contrib.sessions.middleware.SessionMiddleware": "core.middleware.SessionVaryMiddleware",
    "django.middleware.security.SecurityMiddleware": "core.middleware.LeanSecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware": "core.middleware.LeanCorsMiddleware",
    "django.middleware.locale.LocaleMiddleware": "core.middleware.LeanLocaleMiddleware",
    "django.middleware.common.CommonMiddleware": "core.middleware.LeanCommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware": "core.middleware.LeanXFrameOptionsMiddleware",
}
LEAN_PREFIXES = ("/api/", "/v1/")
LEAN_PATHS = frozenset({"/", "/health", "/health/", "/info", "/info/", "/metrics", "/metrics/"})

_load_lock = threading.Lock()


def prepare_thread() -> None:
    """A sync-lane thread's first step (`core.lanes.SyncLane`): its handle on every database and cache
    (Django's per-thread `DatabaseWrapper` and cache backend objects, not network connections: those open on
    first use, as before).

    At the end of every request Django walks the handles of the current thread (`close_old_connections`,
    `close_caches`, `core.request_signals`); an alias without one is an `AttributeError` raised and caught
    inside asgiref's thread-local storage, ~3 µs each. A thread that has served a few requests has them
    anyway; created up front, a request that touches neither (the root route, an answer from the read
    cache) no longer pays for their absence.
    """
    for alias in connections:
        connections[alias]
    for alias in caches:
        caches[alias]


def lean_eligible(environ) -> bool:
    """Whether a request may skip the browser-session middleware (module docstring)."""
    if environ.get("HTTP_COOKIE"):
        return False
    path = environ.get("PATH_INFO", "")
    return path.startswith(LEAN_PREFIXES) or path in LEAN_PATHS


_MAX_REMEMBERED_PATHS = 4096


def _resolution_is_pure(resolver) -> bool:
    """Whether resolving a path with `resolver` depends on nothing but the path: no language prefix
    pattern and no route or regular expression given as a lazy (translated) string, at any depth."""
    stack = [resolver]
    while stack:
        for entry in stack.pop().url_patterns:
            pattern = entry.pattern
            if isinstance(pattern, LocalePrefixPattern) or isinstance(
                    getattr(pattern, "_route", None) or getattr(pattern, "_regex", None), Promise):
                return False
            if isinstance(entry, URLResolver):
                stack.append(entry)
    return True


class _RememberedResolutionMixin:
    """URL resolution remembered per path: `resolve(path)` is a pure function of the URL configuration
    and the path, and walking the patterns cost a small request ~10 µs at the root and more for the API
    routes behind several `include()`s (issue 11). The remembered matches live on the resolver object,
    so a new URL configuration (`clear_url_caches`, e.g. `override_settings(ROOT_URLCONF=...)`) starts
    afresh; a request with its own `urlconf`, and a path that resolves to nothing (404), take Django's path
    every time. Paths carry identifiers, so the memory is bounded: emptied when it holds
    `_MAX_REMEMBERED_PATHS` paths. A match is shared by the requests of one path; nothing in the service
    changes one (Django passes views a copy of its keyword arguments). A configuration whose resolution
    depends on the active language (`i18n_patterns`, a route given as a lazy translation) is never
    remembered (`_resolution_is_pure`).
    """

    def resolve_request(self, request):
        if hasattr(request, "urlconf"):
            return super().resolve_request(request)
        resolver = get_resolver()
        remembered = resolver.__dict__.get("_remembered_matches")
        if remembered is None:
            remembered = {} if _resolution_is_pure(resolver) else False
            remembered = resolver.__dict__.setdefault("_remembered_matches", remembered)
        if remembered is False:
            return super().resolve_request(request)
        path = request.path_info
        match = remembered.get(path)
        if match is None:
            match = resolver.resolve(path)
            if len(remembered) >= _MAX_REMEMBERED_PATHS:
                remembered.clear()
            remembered[path] = match
        request.resolver_match = match
        return match


class _PerMethodAtomicMixin:
    """A safe request runs its view without the request transaction (module docstring).

    Django wraps the view for every request (`transaction.atomic(using)(view)`: a decorator object and a
    `functools.wraps` copy, ~3 µs); the wrapped view depends only on the view and the database settings, so
    it is built once per view and remembered while `connections.settings` is the same object. Views are
    the URL configuration's, so the memory is bounded by it (and emptied past `_MAX_REMEMBERED_VIEWS`).
    """

    _MAX_REMEMBERED_VIEWS = 1024

    def make_view_atomic(self, view):
        databases = connections.settings
        remembered = self.__dict__.get("_atomic_views")
        if remembered is None or remembered[0] is not databases:
            remembered = self._atomic_views = (databases, {})
        views = remembered[1]
        wrapped = views.get(view)
        if wrapped is None:
            wrapped = self._per_method(view)
            if len(views) >= self._MAX_REMEMBERED_VIEWS:
                views.clear()
            views[view] = wrapped
        return wrapped

    def _per_method(self, view):
        atomic_view = super().make_view_atomic(view)
        if atomic_view is view:  # non_atomic_requests view, or ATOMIC_REQUESTS off
            return view

        def per_method(request, *args, **kwargs):
            if request.method in SAFE_METHODS:
                return view(request, *args, **kwargs)
            return atomic_view(request, *args, **kwargs)

        return per_method


class _LeanHandler(_RememberedResolutionMixin, _PerMethodAtomicMixin, WSGIHandler):
    """`settings.MIDDLEWARE` without `LEAN_SKIPPED`, built once when the worker starts.

    Django builds a handler's chain from `settings.MIDDLEWARE`; the lean list is put in its place only for
    the duration of this construction, under a lock (nothing else reads the setting once the worker serves).
    """

    def load_middleware(self, is_async=False):
        with _load_lock:
            full = settings.MIDDLEWARE
            settings.MIDDLEWARE = [LEAN_REPLACED.get(path, path) for path in full if path not in LEAN_SKIPPED]
            try:
                super().load_middleware(is_async)
            finally:
                settings.MIDDLEWARE = full


class _Answer:
    """What `ServiceWSGIHandler` returns for a plain response: its body, and `close()`, which is
    `HttpResponseBase.close` with `request_finished` sent through `core.request_signals`."""

    __slots__ = ("response", "sender")

    def __init__(self, response, sender):
        self.response = response
        self.sender = sender

    def __iter__(self):
        return iter(self.response)

    def close(self):
        response = self.response
        for closer in response._resource_closers:  # HttpResponseBase.close (Django 5.2)
            try:
                closer()
            except Exception:
                pass
        response._resource_closers.clear()
        response.closed = True
        request_signals.finished(self.sender)


class ServiceWSGIHandler(_RememberedResolutionMixin, _PerMethodAtomicMixin, WSGIHandler):
    def __init__(self):
        super().__init__()
        self._lean = _LeanHandler()

    def __call__(self, environ, start_response):
        """`WSGIHandler.__call__`, with the request signals sent through `core.request_signals` and the
        header list read from the header mapping's store (the pairs `response.items()` yields, without a
        mapping view and a lookup per header). A response that streams a file, or has its own `close`,
        is finished by Django's code."""
        set_script_prefix(get_script_name(environ))
        request_signals.started(self.__class__, environ)
        request = self.request_class(environ)
        response = self.get_response(request)
        response._handler_class = self.__class__
        headers = [*response.headers._store.values()]
        if response.cookies:
            headers.extend(("Set-Cookie", c.output(header="")) for c in response.cookies.values())
        start_response("%d %s" % (response.status_code, response.reason_phrase), headers)
        if getattr(response, "file_to_stream", None) is not None and environ.get("wsgi.file_wrapper"):
            response.file_to_stream.close = response.close
            return environ["wsgi.file_wrapper"](response.file_to_stream, response.block_size)
        if type(response).close is not HttpResponseBase.close:
            return response
        return _Answer(response, self.__class__)

    def get_response(self, request):
        if lean_eligible(request.META):
            return self._lean.get_response(request)
        return super().get_response(request)
