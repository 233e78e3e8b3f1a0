"""Usage counting for the verdict endpoint, combined per process (spec §1.15 exactness kept).

Every accepted use is one `+1`, written with one atomic `UPDATE … SET usage_count = usage_count + k`
BEFORE the request answers. When several requests of one worker process count the same key at the same
time, those that arrive while an UPDATE of that key is in flight are combined into the next one (`k` of
them, "flat combining"): the stored total stays exact (N accepted uses add exactly N), each request
still waits until its own increment is committed, and one hot key no longer queues every request of the
process on the same row lock and commit. Used only outside transactions (autocommit): inside a request
transaction the increment is a plain UPDATE of that transaction (`apikeys.services.apikey_record_use`).
"""

import threading
from datetime import datetime

_cond = threading.Condition()
_states: dict[str, "_KeyState"] = {}


class _Batch:
    __slots__ = ("count", "last_used_at", "done", "error")

    def __init__(self):
        self.count = 0
        self.last_used_at: datetime | None = None
        self.done = False
        self.error: BaseException | None = None


class _KeyState:
    __slots__ = ("batch", "flushing")

    def __init__(self):
        self.batch: _Batch | None = None
        self.flushing = False


def record_use_combined(api_key_id: str, now: datetime, write) -> None:
    """Count one use of `api_key_id`; `write(api_key_id, k, last_used_at)` runs the UPDATE (+k)."""
    with _cond:
        state = _states.get(api_key_id)
        if state is None:
            state = _states[api_key_id] = _KeyState()
        if state.batch is None:
            state.batch = _Batch()
        batch = state.batch
        batch.count += 1
        if batch.last_used_at is None or now > batch.last_used_at:
            batch.last_used_at = now
        while not batch.done:
            if not state.flushing and state.batch is batch:
                state.flushing = True
                state.batch = None
                break
            _cond.wait()
        else:
            if batch.error is not None:
                raise batch.error
            return
    # This thread flushes the batch (its own use and those combined into it).
    error = None
    try:
        write(api_key_id, batch.count, batch.last_used_at)
    except BaseException as exc:  # noqa: BLE001 - handed to every request of the batch
        error = exc
    with _cond:
        batch.error = error
        batch.done = True
        state.flushing = False
        if state.batch is None:
            _states.pop(api_key_id, None)
        _cond.notify_all()
    if error is not None:
        raise error
