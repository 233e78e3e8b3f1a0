"""Log formatting: JSON lines by default, every line carrying the request id (spec §1.15); repeated
failures summarised instead of written one by one (`RepeatSummaryFilter`)."""

import json
import logging
import os
import threading
import time
from datetime import datetime, timezone

from core.context import request_id_var


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line. Extra attributes passed with `extra=` are included."""

    _RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
        }
        for key, value in record.__dict__.items():
            if key not in self._RESERVED and key not in entry and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RepeatSummaryFilter(logging.Filter):
    """Rate-limited failure logging (issue 15): an outage must be visible, not bury the disk.

    Attached to the log handlers. For records at WARNING and above, the FIRST occurrence of each kind is
    written in full (with its traceback); further occurrences of that kind within `window` seconds are
    counted, not written, and when the window ends one line says "… (…and 2,641 more in the last 10 s)".
    While repeats keep coming, every window ends with such a summary and no further traceback; after a
    whole window without one, the next occurrence is "first" again. So an outage writes at most about
    one line per kind per window per process, whatever the request rate.

    A kind is the record's `failure_kind` (set by the exception handler: `database_unreachable`,
    `database_read_only`, …, `unhandled_exception`) together with its logger, level, message template
    (not its arguments) and exception type. Every occurrence, written or not, is counted in the
    `maimconfig_failures_total{kind}` metric (`kind` = `failure_kind`, else `other`).
    `window` = 0 turns summarising off (every record is written).
    """

    MAX_KINDS = 512

    def __init__(self, window: float = 10.0, min_level: int = logging.WARNING, name: str = "", clock=time.monotonic):
        super().__init__(name)
        self.window = float(window)
        self.min_level = min_level
        self.clock = clock
        self._reset()
        if hasattr(os, "register_at_fork"):
            # gunicorn forks workers after the application is loaded (preload_app): the child starts with
            # no windows and no flusher thread (threads do not survive fork; a held lock must not either).
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple, _Window] = {}
        self._flusher: threading.Thread | None = None

    @staticmethod
    def _kind_key(record: logging.LogRecord) -> tuple:
        exc_type = record.exc_info[0].__qualname__ if record.exc_info and record.exc_info[0] else ""
        return (getattr(record, "failure_kind", None), record.name, record.levelno, str(record.msg), exc_type,
                getattr(record, "status_code", None))

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_repeat_summary", False) or record.levelno < self.min_level:
            return True
        _count_failure(getattr(record, "failure_kind", None) or "other")
        if self.window <= 0:
            return True
        key = self._kind_key(record)
        now = self.clock()
        overdue = None
        with self._lock:
            state = self._windows.get(key)
            if state is not None and now - state.started >= self.window:
                # The flusher has not closed this window yet: close it here, in order.
                overdue = self._close(key, state, now)
                state = self._windows.get(key)
            if state is None:
                if len(self._windows) >= self.MAX_KINDS:
                    self._forget_quiet(now)
                if len(self._windows) >= self.MAX_KINDS:
                    return True
                self._windows[key] = _Window(now, record)
                written = True
            else:
                state.suppressed += 1
                written = False
                self._ensure_flusher()
        if overdue is not None:
            self._emit(overdue)
        return written

    def _close(self, key: tuple, state: "_Window", now: float) -> logging.LogRecord | None:
        """End `state`'s window (lock held): a summary record if it suppressed anything, else forget it."""
        if state.suppressed == 0:
            del self._windows[key]
            return None
        summary = state.summary(self.window)
        # Repeats are still coming: the next window continues quietly (no second traceback).
        state.started, state.suppressed = now, 0
        return summary

    def _forget_quiet(self, now: float) -> None:
        for key in [key for key, state in self._windows.items()
                    if state.suppressed == 0 and now - state.started >= self.window]:
            del self._windows[key]

    def _ensure_flusher(self) -> None:
        if self._flusher is None or not self._flusher.is_alive():
            self._flusher = threading.Thread(target=self._flush_loop, name="log-repeat-summary", daemon=True)
            self._flusher.start()

    def flush_due(self) -> bool:
        """Close every window that has ended (writing its summary); False once no window is left."""
        with self._lock:
            now = self.clock()
            due = [(key, state) for key, state in self._windows.items() if now - state.started >= self.window]
            summaries = [summary for key, state in due if (summary := self._close(key, state, now))]
            remaining = bool(self._windows)
            if not remaining:
                self._flusher = None
        for summary in summaries:
            self._emit(summary)
        return remaining

    def _flush_loop(self) -> None:
        # Polls at most every second: summaries are written even when no further record arrives.
        while self.flush_due():
            time.sleep(min(1.0, max(0.05, self.window / 4)))

    @staticmethod
    def _emit(summary: logging.LogRecord) -> None:
        logging.getLogger(summary.name).handle(summary)


class _Window:
    """One kind's current window; keeps what the summary line needs, not the record (its traceback
    frames would keep a request's objects alive)."""

    __slots__ = ("started", "suppressed", "name", "levelno", "pathname", "lineno", "text", "failure_kind")

    def __init__(self, started: float, first: logging.LogRecord):
        self.started = started
        self.suppressed = 0
        self.name, self.levelno, self.pathname, self.lineno = first.name, first.levelno, first.pathname, first.lineno
        try:
            self.text = first.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not break logging
            self.text = str(first.msg)
        self.failure_kind = getattr(first, "failure_kind", None)

    def summary(self, window: float) -> logging.LogRecord:
        record = logging.LogRecord(self.name, self.levelno, self.pathname, self.lineno,
                                   "%s (…and %s more in the last %s s)",
                                   (self.text, f"{self.suppressed:,}", f"{window:g}"), None)
        record._repeat_summary = True
        record.repeated = self.suppressed
        record.request_id = None
        if self.failure_kind:
            record.failure_kind = self.failure_kind
        return record


def _count_failure(kind: str) -> None:
    from core.metrics import FAILURES

    FAILURES.labels(kind=kind).inc()
