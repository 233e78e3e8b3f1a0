"""Reloads without a pause (issue 15): on HUP the old workers keep serving until every new worker serves.

A real gunicorn master with the project's config, on SQLite. The new workers of the reload are made slow
to boot (3 s more in `post_worker_init`, through a wrapper config): gunicorn's own order (stop the old
workers at once) leaves nobody serving during that time; with `core.graceful_reload` the old workers
exit only after every new worker listens, and every request sent meanwhile is answered.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from core.private_servers import ROOT, free_port, gunicorn_command, port_open

SLOW_BOOT_CONFIG = """
import time as _time
exec(open({config!r}).read())
_project_post_worker_init = post_worker_init

def post_worker_init(worker):
    _project_post_worker_init(worker)
    if worker.age > workers:  # a worker started by the reload
        _time.sleep(3)
"""


@pytest.fixture
def master(tmp_path):
    database = tmp_path / "reload.sqlite3"
    env = {**os.environ, "SECRET_KEY": "reload-test", "DATABASE_URL": f"sqlite:///{database}",
           "CACHE_URL": "locmemcache://reload", "MAIMCONFIG_AUTH_MODE": "open", "GUNICORN_WORKERS": "2",
           "DJANGO_SETTINGS_MODULE": "maimconfig.settings.base", "GUNICORN_CMD_ARGS": "--no-control-socket",
           "LOG_LEVEL": "INFO"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    config = tmp_path / "gunicorn_slow_reload.py"
    config.write_text(SLOW_BOOT_CONFIG.format(config=str(ROOT / "gunicorn.conf.py")))
    port = free_port()
    env["GUNICORN_BIND"] = f"127.0.0.1:{port}"
    command = gunicorn_command(sys.executable)
    command[command.index("gunicorn.conf.py")] = str(config)
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while not (port_open(port) and log_path.read_text(errors="replace").count("listening on") >= 2):
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.2)
        yield process, port, log_path
    finally:
        process.terminate()
        process.wait(timeout=60)


def gunicorn_events(log_path):
    """(pid, event) in log order: `listening` when a worker serves, `exiting` when it stops."""
    events = []
    for line in log_path.read_text(errors="replace").splitlines():
        match = re.match(r"\[[^]]+\] \[(\d+)\] \[\w+\] (.*)", line)
        if not match:
            continue
        pid, text = int(match.group(1)), match.group(2)
        if "listening on" in text:
            events.append((pid, "listening"))
        elif text.startswith("Worker exiting"):
            events.append((pid, "exiting"))
    return events


def test_old_workers_serve_until_the_new_ones_do(master):
    process, port, log_path = master
    old_workers = {pid for pid, event in gunicorn_events(log_path) if event == "listening"}
    assert len(old_workers) == 2

    answers, stop = [], threading.Event()

    def probe():
        while not stop.is_set():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/tenants", timeout=30) as response:
                    answers.append(response.status)
                    json.loads(response.read())
            except Exception as exc:  # noqa: BLE001 - a failed request is what the test looks for
                answers.append(repr(exc))
            time.sleep(0.02)

    threads = [threading.Thread(target=probe) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        os.kill(process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 120
        while True:
            events = gunicorn_events(log_path)
            new_listening = {pid for pid, event in events if event == "listening"} - old_workers
            if len(new_listening) == 2 and all((pid, "exiting") in events for pid in old_workers):
                break
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    events = gunicorn_events(log_path)
    new_workers = {pid for pid, event in events if event == "listening"} - old_workers
    assert len(new_workers) == 2
    last_new_listening = max(index for index, (pid, event) in enumerate(events)
                             if pid in new_workers and event == "listening")
    first_old_exit = min(index for index, (pid, event) in enumerate(events) if pid in old_workers and event == "exiting")
    assert last_new_listening < first_old_exit, events  # nobody stopped before everyone new served
    assert answers and all(answer == 200 for answer in answers), [a for a in answers if a != 200][:5]
