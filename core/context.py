"""Per-request context shared by logging, the envelope and the exception handler."""

import contextvars
import random
import re

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def request_id_from_header(value: str | None) -> str:
    """The client's X-Request-ID when it is well formed (spec §1.4), else a fresh UUID4."""
    if value and _REQUEST_ID_RE.match(value):
        return value
    return new_request_id()


# Version 4, variant RFC 4122: the bits `uuid.uuid4()` sets.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_request_id() -> str:
    """A random UUID4 from the process's Mersenne Twister (`random`), not from `os.urandom`.

    A request id only needs to be unique, not unpredictable: it is echoed to the caller and logged, and
    authorises nothing. `uuid.uuid4()` reads `os.urandom`, a system call that releases the GIL; with the
    sync lane's threads busy, getting the GIL back cost a request a wait of up to the interpreter's switch
    interval (seen as the top line of a sampling profile of a loaded worker, issue 11). `random` is
    reseeded from the OS in every forked worker (CPython does it after `fork`), so workers do not share
    a sequence.
    """
    value = "%032x" % ((random.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET)  # str(uuid.UUID(int=...)), directly
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"

# perf_counter() value at the start of the request; 0.0 outside a request.
request_started_var: contextvars.ContextVar[float] = contextvars.ContextVar("request_started", default=0.0)

# The request being served (set and reset by RequestContextMiddleware), so code far from the view (the
# audit trail recorded by services) can tell who is acting. None outside a request.
current_request_var: contextvars.ContextVar = contextvars.ContextVar("current_request", default=None)
# An explicit actor for work done outside a request (`command:<name>` while a management command runs,
# see `acting_as`). A request's own credential always wins over it.
actor_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("actor", default=None)

SYSTEM_ACTOR = "system"


class acting_as:  # noqa: N801 - used like contextlib's lower-case context managers
    """`with acting_as("command:issue_api_key"): ...`: writes inside are attributed to that actor."""

    def __init__(self, actor: str):
        self.actor = actor
        self._token = None

    def __enter__(self):
        self._token = actor_var.set(self.actor)
        return self

    def __exit__(self, *exc_info):
        actor_var.reset(self._token)
        return False


def _request_actor(request) -> str:
    """`agent_key:<key id>` or `operator:<username>` from the credential DRF (or the admin session) set on
    the Django request; an anonymous caller can only write in open auth mode: `operator:anonymous`."""
    auth = getattr(request, "auth", None)
    if getattr(auth, "is_agent_key", False):
        return f"agent_key:{auth.api_key_id}"
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return f"operator:{user.get_username()}"
    return "operator:anonymous"


def current_actor() -> str:
    """Who is writing: the request's credential, else the explicit actor (a command), else `system`."""
    request = current_request_var.get()
    if request is not None:
        return _request_actor(request)
    return actor_var.get() or SYSTEM_ACTOR


def current_request_id() -> str | None:
    """The id of the request being served (spec §1.4), or None outside a request."""
    request = current_request_var.get()
    return getattr(request, "request_id", None) if request is not None else None
