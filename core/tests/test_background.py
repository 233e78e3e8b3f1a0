"""core.background: one write-behind thread per worker runs every registered task, survives a failing task,
runs each task's final round when it stops, and restarts in a forked child."""

import threading
import time

import pytest

from core import background

# `stop()` closes the caller's obsolete database connections, as a stopping worker does.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tasks(settings):
    settings.MAIMCONFIG_USAGE_FLUSH_SECONDS = 0.05
    saved_tasks, saved_state = dict(background._tasks), dict(background._state)
    background._tasks.clear()  # the apps' own tasks are set aside (and not run) while this test runs
    background.stop()  # no thread of an earlier test
    background._state.update(thread=None, stop=None, wanted=False, forked=False)
    yield background
    background.stop()
    background._tasks.clear()
    background._tasks.update(saved_tasks)
    background._state.update(saved_state, thread=None, stop=None)


def _recorder():
    calls = []
    return calls, lambda: calls.append(threading.current_thread().name)


def _wait_for(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def test_every_task_runs_in_one_thread_and_a_failing_task_stops_none(tasks, caplog):
    first, tick_first = _recorder()
    second, tick_second = _recorder()

    def broken():
        raise RuntimeError("database gone")

    tasks.register("first", tick_first)
    tasks.register("broken", broken)
    tasks.register("second", tick_second)
    tasks.start()
    assert _wait_for(lambda: len(first) >= 2 and len(second) >= 2)
    assert set(first) == set(second) == {"maimconfig-write-behind"}  # one thread: one database connection
    assert [t.name for t in threading.enumerate()].count("maimconfig-write-behind") == 1
    assert "Write-behind task 'broken' failed" in caplog.text


def test_stop_runs_each_final_round_once_in_the_caller_and_ends_the_thread(tasks):
    ticks, tick = _recorder()
    finals, final = _recorder()
    tasks.register("queue", tick, final=final)
    tasks.start()
    thread = tasks._state["thread"]
    assert _wait_for(lambda: ticks)
    tasks.stop()
    assert not thread.is_alive()
    assert finals == [threading.current_thread().name]
    settled = len(ticks)
    time.sleep(0.2)
    assert len(ticks) == settled  # nothing runs after the stop


def test_a_task_without_a_final_round_runs_its_tick_at_stop(tasks):
    ticks, tick = _recorder()
    tasks.register("counts", tick)
    tasks.stop()
    assert ticks == [threading.current_thread().name]


def test_registering_a_name_again_replaces_its_task(tasks):
    old, tick_old = _recorder()
    new, tick_new = _recorder()
    tasks.register("counts", tick_old)
    tasks.register("counts", tick_new)
    tasks.run_once()
    assert (old, len(new)) == ([], 1)


def test_a_forked_worker_starts_its_own_thread_on_first_use(tasks, monkeypatch):
    ticks, tick = _recorder()
    tasks.register("counts", tick)
    tasks.ensure_running()
    assert tasks._state["thread"] is None  # not a serving process: nothing starts
    tasks._state["wanted"] = True  # a serving process…
    tasks._after_fork_in_child()  # …forked (what os.register_at_fork runs in the child)
    tasks.ensure_running()
    assert _wait_for(lambda: ticks)
