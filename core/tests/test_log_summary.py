"""Rate-limited failure logging (issue 15): first occurrence in full, repeats counted and summarised,
every occurrence in the `maimconfig_failures_total` metric."""

import logging
import time

import pytest
from prometheus_client import REGISTRY

from core.logging import JsonFormatter, RepeatSummaryFilter


class ListHandler(logging.Handler):
    def __init__(self, summary_filter):
        super().__init__()
        self.lines: list[str] = []
        self.formatter = JsonFormatter()
        self.addFilter(summary_filter)

    def emit(self, record):
        self.lines.append(self.format(record))


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def logged():
    """A private logger writing through a RepeatSummaryFilter (10 s window) on a clock the test moves."""
    clock = FakeClock()
    summary_filter = RepeatSummaryFilter(window=10, clock=clock)
    handler = ListHandler(summary_filter)
    logger = logging.getLogger(f"test.repeat.{time.perf_counter_ns()}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return logger, handler, clock


def failures(kind: str) -> float:
    return REGISTRY.get_sample_value("maimconfig_failures_total", {"kind": kind}) or 0.0


def raise_and_log(logger, kind: str, path: str = "/api/v2/tenants"):
    try:
        raise ConnectionError(f"connection refused while serving {path}")
    except ConnectionError:
        logger.error("Database unavailable: %s", path, exc_info=True, extra={"failure_kind": kind})


def wait_for(predicate, seconds: float = 3.0):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def test_first_occurrence_in_full_then_one_summary_per_window(logged):
    logger, handler, clock = logged
    before = failures("probe_outage")
    for number in range(2642):
        raise_and_log(logger, "probe_outage", f"/api/v2/tenants/{number}")
    assert len(handler.lines) == 1
    assert "Traceback" in handler.lines[0] and "/api/v2/tenants/0" in handler.lines[0]
    assert failures("probe_outage") - before == 2642  # the metric counts them all

    clock.now += 9
    time.sleep(0.3)
    assert len(handler.lines) == 1  # the window has not ended
    clock.now += 1
    # No further record is needed: the background flusher writes the summary when the window ends.
    assert wait_for(lambda: len(handler.lines) == 2)
    summary = handler.lines[1]
    assert "/api/v2/tenants/0 (…and 2,641 more in the last 10 s)" in summary
    assert "Traceback" not in summary and '"repeated": 2641' in summary and '"failure_kind": "probe_outage"' in summary

    # Still failing: the next window summarises again, without a second traceback.
    for _ in range(5):
        raise_and_log(logger, "probe_outage")
    assert len(handler.lines) == 2
    clock.now += 10
    assert wait_for(lambda: len(handler.lines) == 3)
    assert "…and 5 more in the last 10 s" in handler.lines[2] and "Traceback" not in handler.lines[2]

    # A whole quiet window later, the next occurrence is "first" again: written with its traceback.
    clock.now += 10
    raise_and_log(logger, "probe_outage")
    assert len(handler.lines) == 4 and "Traceback" in handler.lines[3]


def test_kinds_are_summarised_separately_and_info_is_never_held_back(logged):
    logger, handler, clock = logged
    for _ in range(3):
        raise_and_log(logger, "probe_read_only")
        raise_and_log(logger, "probe_lock_timeout")
        logger.info("served %s", "/api/v2/tenants")
    written = [line for line in handler.lines if "Traceback" in line]
    assert len(written) == 2
    assert sum('"message": "served /api/v2/tenants"' in line for line in handler.lines) == 3
    clock.now += 10
    assert wait_for(lambda: sum("(…and 2 more in the last 10 s)" in line for line in handler.lines) == 2)


def test_window_zero_writes_every_record():
    handler = ListHandler(RepeatSummaryFilter(window=0))
    logger = logging.getLogger(f"test.repeat.off.{time.perf_counter_ns()}")
    logger.propagate = False
    logger.addHandler(handler)
    for _ in range(20):
        raise_and_log(logger, "probe_off")
    assert len(handler.lines) == 20


def test_the_console_handler_of_the_settings_summarises():
    """The project's LOGGING wires the filter into the console handler with the configured window."""
    from django.conf import settings

    console = settings.LOGGING["handlers"]["console"]
    assert "repeat_summary" in console["filters"]
    assert settings.LOGGING["filters"]["repeat_summary"]["window"] == settings.MAIMCONFIG_LOG_REPEAT_WINDOW_SECONDS
