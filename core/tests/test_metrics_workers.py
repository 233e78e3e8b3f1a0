"""Issue 12, item 16 (metrics half), spec §13.5: `/metrics` covers every gunicorn worker, whichever answers
the scrape, and `MAIMCONFIG_METRICS_TOKEN` guards it. A real gunicorn (2 workers) on loopback."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from core.metrics_export import configure_multiprocess_dir

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).parent / "gunicorn"
TOKEN = "metrics-test-token-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Connection": "close", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS", "MAIMCONFIG_METRICS", "GUNICORN"))}
    env.update({
        "SECRET_KEY": "metrics-test-secret", "DJANGO_SETTINGS_MODULE": "maimconfig.settings.base",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "CACHE_URL": "locmemcache://metrics-test",
        "MAIMCONFIG_ENV_FILE": "", "ALLOWED_HOSTS": "127.0.0.1", "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2", "MAIMCONFIG_METRICS_TOKEN": TOKEN, "MAIMCONFIG_METRICS_DIR": str(tmp_path / "prom"),
        "LOG_LEVEL": "WARNING",
    })
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    (tmp_path / "prom").mkdir()
    (tmp_path / "prom" / "counter_stale.db").write_bytes(b"left over by a previous run")
    process = subprocess.Popen([str(GUNICORN), "-c", "gunicorn.conf.py"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if get(base + "/health")[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError("gunicorn did not start: " + process.stderr.read().decode()[-3000:])
        time.sleep(0.3)
    yield base, tmp_path / "prom"
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def requests_total(text: str) -> float:
    match = re.search(r"^django_http_requests_before_middlewares_total (\S+)$", text, re.M)
    assert match, text[:2000]
    return float(match.group(1))


def test_metrics_cover_every_worker_and_need_the_token(server):
    base, directory = server
    assert not (directory / "counter_stale.db").exists(), "the directory is emptied at start"
    for _ in range(60):
        assert get(base + "/")[0] == 200
    totals = []
    for _ in range(6):
        status, text = get(base + "/metrics", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
        totals.append(requests_total(text))
    # Every scrape counts the 60 requests, whichever of the two workers answered it (each worker alone saw
    # only its share). The scrapes themselves add one each.
    assert min(totals) >= 60, totals
    assert get(base + "/metrics")[0] == 401
    assert get(base + "/metrics", {"Authorization": "Bearer wrong"})[0] == 401


def test_configure_keeps_the_directory_on_a_config_reload(tmp_path):
    environ = {"MAIMCONFIG_METRICS_DIR": str(tmp_path / "m")}
    path = configure_multiprocess_dir(environ)
    Path(path, "counter_1.db").write_bytes(b"x")
    assert configure_multiprocess_dir(environ) == path  # gunicorn HUP re-reads the config in the same master
    assert Path(path, "counter_1.db").exists()


_CACHED_PID_SCRIPT = r"""
import os, sys
from core.metrics_export import use_cached_pid
use_cached_pid()
from prometheus_client import Counter
counter = Counter("cached_pid_probe", "probe")
real_getpid = os.getpid
calls = []
os.getpid = lambda: calls.append(1) or real_getpid()
counter.inc()
os.getpid = real_getpid
assert calls == [], "an update asked the system for the pid"
child = os.fork()
if child == 0:
    counter.inc(5)  # a fork is still noticed: the child writes its own file
    os._exit(0)
os.waitpid(child, 0)
files = sorted(os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
print(",".join(files), os.getpid(), child)
"""


def test_metric_updates_use_a_cached_pid_that_follows_forks(tmp_path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", _CACHED_PID_SCRIPT], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    files, parent, child = done.stdout.split()
    assert f"counter_{parent}.db" in files.split(",") and f"counter_{child}.db" in files.split(",")
