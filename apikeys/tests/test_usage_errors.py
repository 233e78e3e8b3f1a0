"""Issue 15 item 5: when the combined usage UPDATE fails, every waiting request gets its OWN exception
(same type, so the handler classifies it the same way, chained to the failure), never one object
re-raised in several threads (whose traceback would then carry other requests' frames)."""

import threading
import time
import uuid

from django.db import OperationalError
from django.utils import timezone

from apikeys.usage import record_use_combined

THREADS = 6


def test_each_waiting_request_gets_its_own_exception_with_only_its_own_frames():
    key_id = f"key_{uuid.uuid4().hex[:12]}"
    entered = []
    caught: dict[int, BaseException] = {}

    def failing_write(api_key_id, count, last_used_at):
        # Hold the first UPDATE until every thread has joined the next batch, so that batch has waiters.
        deadline = time.monotonic() + 10
        while len(entered) < THREADS and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(0.05)
        raise OperationalError(2013, "Lost connection to server during query")

    def request(marker: int):
        entered.append(marker)
        try:
            record_use_combined(key_id, timezone.now(), failing_write)
        except BaseException as exc:  # noqa: BLE001 - inspected below
            caught[marker] = exc

    threads = [threading.Thread(target=request, args=(number,)) for number in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(caught) == list(range(THREADS))  # every request failed, none hung
    errors = list(caught.values())
    assert len({id(error) for error in errors}) == THREADS  # one object per request
    for marker, error in caught.items():
        assert isinstance(error, OperationalError) and error.args[0] == 2013  # still a 503 for the handler
        frames = []
        tb = error.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        # The request's own traceback holds its own frames only (another request's `marker` would show).
        markers = {frame.f_locals["marker"] for frame in frames if "marker" in frame.f_locals}
        assert markers == {marker}
    waiters = [error for error in errors if error.__cause__ is not None]
    assert waiters, "no request waited on another's UPDATE"
    assert all(isinstance(error.__cause__, OperationalError) for error in waiters)
