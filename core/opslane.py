"""The operational routes on the event loop: `GET`/`HEAD` of `/`, `/info` and `/health` (spec §13).

Load balancers, uptime monitors and orchestrators call these routes far more often than anyone reads them,
and the service this one replaces answers them as constants. Here they are `core.lanes` fast handlers
(registered by `CoreConfig.ready()`, with or without Redis): a plain request is answered on the event loop
with the bytes and headers Django would send (`core.fastlane.ResponseShape`), without a thread hop or the
middleware stack. Anything else DECLINES and Django answers as before: another method, a body, a query
string, a cookie or a browser's cross-site marker, a disallowed `Host`, an HTTPS redirect.

`/` and `/info` are constant per process (`/info` names the database vendor, read once in a thread: the
loop never touches the database). `/health` still checks the database and the cache (spec §13.2), but a
burst of probes shares the checks: a passing result is reused for `MAIMCONFIG_HEALTH_CACHE_SECONDS` (1 s;
0 checks on every probe, through Django), and the probes that arrive while a check runs wait for that
check instead of starting their own. Only a fully healthy result is answered here; when a check fails or
reports a problem, Django runs the checks again for that probe and answers it with the 503 (or the
`read_only` note) and the problems, so an outage is never hidden behind the cache for longer than its
freshness window.
"""

from __future__ import annotations

import asyncio
import time

from django.conf import settings
from django.db import connection
from rest_framework.renderers import JSONRenderer

from core import fastlane, views
from core.fastlane import Declined

ROOT_PATH = "/"
INFO_PATH = "/info"
HEALTH_PATH = "/health"
_METHODS = ("GET", "HEAD")


def _plain(scope, body: bytes) -> tuple[dict[bytes, bytes], str, bool]:
    """The request headers, language and security of a request this lane answers, else Declined."""
    if body or scope.get("query_string"):
        raise Declined
    headers = fastlane.request_headers(scope)
    secure = fastlane.request_checks(scope, headers)
    return headers, fastlane.language_for(headers.get(b"accept-language")), secure


async def _answer(scope, send, *, path: str, headers: dict[bytes, bytes], language: str, secure: bool,
                  payload: bytes) -> None:
    started = time.perf_counter()
    shape = fastlane.shape_for(path, content_type=b"application/json")  # DRF's JSONRenderer, as OpsView
    request_id = fastlane.request_id_of(headers)
    await fastlane.send_json(send, shape, payload, language=language, secure=secure, request_id=request_id)
    shape.metrics.record(method=scope["method"], secure=secure,
                         ajax=headers.get(b"x-requested-with") == b"XMLHttpRequest", request_length=0,
                         response_length=len(payload), started=started)


# --- / and /info: constants ----------------------------------------------------------------------------------

_info_bodies: dict[tuple, bytes] = {}


def _info_settings() -> tuple:
    """The settings `/info` shows besides the database vendor (its body is cached under them)."""
    return (settings.MAIMCONFIG_AUTH_MODE, settings.MAIMCONFIG_LEGACY_ERROR_STATUS, settings.MAIMCONFIG_VERSION,
            settings.CACHES["default"]["BACKEND"], settings.DATABASES["default"]["ENGINE"])


def _info_payload() -> bytes:
    try:
        return JSONRenderer().render(views.info_document())
    finally:
        connection.close()  # an executor thread's connection: not kept open for a constant


async def root_handler(scope, body: bytes, send) -> bool:
    """`GET`/`HEAD /`: the self-description `core.views.root` sends (module docstring)."""
    try:
        headers, language, secure = _plain(scope, body)
    except Declined:
        return False
    await _answer(scope, send, path=ROOT_PATH, headers=headers, language=language, secure=secure,
                  payload=views.root_body())
    return True


async def info_handler(scope, body: bytes, send) -> bool:
    """`GET`/`HEAD /info` (spec §13.3), rendered once per process (module docstring)."""
    try:
        headers, language, secure = _plain(scope, body)
    except Declined:
        return False
    key = _info_settings()
    payload = _info_bodies.get(key)
    if payload is None:  # the database vendor is read from the database once, off the loop
        payload = _info_bodies[key] = await asyncio.get_running_loop().run_in_executor(None, _info_payload)
    await _answer(scope, send, path=INFO_PATH, headers=headers, language=language, secure=secure,
                  payload=payload)
    return True


# --- /health: shared checks ----------------------------------------------------------------------------------

class _HealthChecks:
    """The last passing result of this process's checks, and the check in flight (module docstring)."""

    def __init__(self) -> None:
        self.passed_at = float("-inf")  # time.monotonic() of the last check that found everything healthy
        self.running: asyncio.Future | None = None

    def fresh(self) -> bool:
        return time.monotonic() - self.passed_at < settings.MAIMCONFIG_HEALTH_CACHE_SECONDS

    async def healthy(self) -> bool:
        """Whether everything is healthy: the last result while it is fresh, else the (shared) check."""
        if self.fresh():
            return True
        if self.running is None or self.running.get_loop() is not asyncio.get_running_loop():
            self.running = asyncio.ensure_future(self._check())
        return await asyncio.shield(self.running)

    async def _check(self) -> bool:
        started = time.monotonic()
        try:
            problems = await asyncio.get_running_loop().run_in_executor(None, views.health_problems)
        finally:
            self.running = None
        if problems:
            return False
        self.passed_at = max(self.passed_at, started)
        return True


checks = _HealthChecks()


async def health_handler(scope, body: bytes, send) -> bool:
    """`GET`/`HEAD /health` (spec §13.2) from the shared checks; Django answers any other outcome."""
    if settings.MAIMCONFIG_HEALTH_CACHE_SECONDS <= 0:
        return False
    try:
        headers, language, secure = _plain(scope, body)
    except Declined:
        return False
    if not await checks.healthy():
        return False
    payload = JSONRenderer().render(views.health_document({}))
    await _answer(scope, send, path=HEALTH_PATH, headers=headers, language=language, secure=secure,
                  payload=payload)
    return True


def register() -> None:
    """Register the three routes' handlers (called by `CoreConfig.ready()`)."""
    from core.lanes import register_fast_handler

    for method in _METHODS:
        register_fast_handler(method, ROOT_PATH, root_handler)
        register_fast_handler(method, INFO_PATH, info_handler)
        register_fast_handler(method, HEALTH_PATH, health_handler)
