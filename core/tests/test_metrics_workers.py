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

from core.graceful_reload import WARM_UP_PATHS
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
    answered = 0  # requests Django served (and so counted) while the server started
    while True:
        try:
            status = get(base + "/health")[0]
            answered += 1
            if status == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError("gunicorn did not start: " + process.stderr.read().decode()[-3000:])
        time.sleep(0.3)
    state = {"answered": answered, "stopped": False}

    def stop() -> None:
        if not state["stopped"]:
            state["stopped"] = True
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    yield base, tmp_path / "prom", state, stop
    stop()


def requests_total(text: str) -> float:
    match = re.search(r"^django_http_requests_before_middlewares_total (\S+)$", text, re.M)
    assert match, text[:2000]
    return float(match.group(1))


def scrape(base: str) -> float:
    status, text = get(base + "/metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    return requests_total(text)


def test_metrics_cover_every_worker_and_need_the_token(server):
    base, directory, state, stop = server
    assert not (directory / "counter_stale.db").exists(), "the directory is emptied at start"
    for _ in range(60):
        assert get(base + "/")[0] == 200
    # Each worker writes its updates at least once a second (core.metrics_export: buffered), and the one
    # that answers a scrape writes its own first: the first scrape may lag behind the other worker by up
    # to that second, after which every scrape counts the 60 requests, whichever of the two workers
    # answered it (each worker alone saw only its share). The scrapes themselves add one each.
    scrapes = 1
    deadline = time.monotonic() + 30
    while scrape(base) < 60:
        scrapes += 1
        assert time.monotonic() < deadline, "a worker's updates never reached the files"
        time.sleep(0.2)
    totals = [scrape(base) for _ in range(6)]
    scrapes += 6
    assert min(totals) >= 60, totals
    assert get(base + "/metrics")[0] == 401
    assert get(base + "/metrics", {"Authorization": "Bearer wrong"})[0] == 401
    # A graceful stop writes what each worker still buffered: the files count every request exactly.
    stop()
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    expected = 2 * len(WARM_UP_PATHS) + state["answered"] + 60 + scrapes + 2  # each worker's warm-up too
    assert registry.get_sample_value("django_http_requests_before_middlewares_total") == expected
    assert registry.get_sample_value("django_http_responses_before_middlewares_total") == expected


def test_configure_keeps_the_directory_on_a_config_reload(tmp_path):
    environ = {"MAIMCONFIG_METRICS_DIR": str(tmp_path / "m")}
    path = configure_multiprocess_dir(environ)
    Path(path, "counter_1.db").write_bytes(b"x")
    assert configure_multiprocess_dir(environ) == path  # gunicorn HUP re-reads the config in the same master
    assert Path(path, "counter_1.db").exists()


_CACHED_PID_SCRIPT = r"""
import os, sys
from core.metrics_export import flush_metrics, use_cached_pid
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
    counter.inc(5)  # a fork is still noticed: the child writes its own file (when its buffer is flushed)
    flush_metrics()
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


_BUFFER_SCRIPT = r"""
import os, sys
from core import metrics_export
metrics_export.FLUSH_SECONDS = 3600  # no periodic flush during the checks below; flushed by hand
metrics_export.use_cached_pid()
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

def on_disk(name, labels=None):
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry.get_sample_value(name, labels or {}) or 0.0

counter = Counter("buffer_probe", "probe", ["kind"])
histogram = Histogram("buffer_latency", "probe", buckets=(0.1, 1.0))
gauge = Gauge("buffer_gauge", "probe", multiprocess_mode="livesum")
for _ in range(7):
    counter.labels(kind="a").inc()
counter.labels(kind="b").inc(2.5)
histogram.observe(0.05)
histogram.observe(0.5)
histogram.observe(5)
gauge.inc(4)
assert on_disk("buffer_probe_total", {"kind": "a"}) == 0, "an increment is written at once"
assert counter.labels(kind="a")._value.get() == 7, "get() sees the pending increments"
gauge.set(10)  # written through, replacing the pending increment
assert on_disk("buffer_gauge") == 10
metrics_export.flush_metrics()
assert on_disk("buffer_probe_total", {"kind": "a"}) == 7
assert on_disk("buffer_probe_total", {"kind": "b"}) == 2.5
assert on_disk("buffer_latency_bucket", {"le": "0.1"}) == 1
assert on_disk("buffer_latency_bucket", {"le": "1.0"}) == 2
assert on_disk("buffer_latency_count") == 3 and on_disk("buffer_latency_sum") == 5.55
assert on_disk("buffer_gauge") == 10
metrics_export.flush_metrics()
assert on_disk("buffer_probe_total", {"kind": "a"}) == 7, "a second flush adds nothing"
counter.labels(kind="a").inc(3)  # pending in the parent when it forks
child = os.fork()
if child == 0:
    counter.labels(kind="a").inc(100)
    metrics_export.flush_metrics()  # writes the child's own 100, not the parent's pending 3
    os._exit(0)
os.waitpid(child, 0)
assert on_disk("buffer_probe_total", {"kind": "a"}) == 107
metrics_export.flush_metrics()
assert on_disk("buffer_probe_total", {"kind": "a"}) == 110
# One request's updates in one step (core.http_metrics.add_updates): the same amounts as one inc each.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maimconfig.settings.base")
from core.http_metrics import add_updates, observation
assert hasattr(type(counter.labels(kind="d")._value), "inc_many"), "buffered values take a request's updates at once"
add_updates([(counter.labels(kind="d")._value, 1), (counter.labels(kind="e")._value, 2),
             *observation(histogram, 0.5), (counter.labels(kind="d")._value, 1)])
assert on_disk("buffer_probe_total", {"kind": "d"}) == 0, "an update is written at once"
metrics_export.flush_metrics()
assert on_disk("buffer_probe_total", {"kind": "d"}) == 2 and on_disk("buffer_probe_total", {"kind": "e"}) == 2
assert on_disk("buffer_latency_bucket", {"le": "1.0"}) == 3 and on_disk("buffer_latency_count") == 4
counter.labels(kind="c").inc()  # left pending: written by the exit hook
print("ok")
"""

_PERIODIC_SCRIPT = r"""
import time
from core import metrics_export
metrics_export.FLUSH_SECONDS = 0.05
metrics_export.use_cached_pid()
from prometheus_client import CollectorRegistry, Counter, multiprocess

counter = Counter("periodic_probe", "probe")
counter.inc(3)
deadline = time.monotonic() + 30
while True:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    if registry.get_sample_value("periodic_probe_total") == 3:
        break
    assert time.monotonic() < deadline, "the flusher thread never wrote the increments"
    time.sleep(0.02)
print("ok")
"""


def _run_probe(script: str, directory: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_buffered_updates_reach_the_files_exactly_once_when_flushed(tmp_path):
    """Updates are kept in memory (no file write on the request path) and written exactly once per flush;
    a gauge's set writes through; a forked child does not write its parent's pending increments; the exit
    hook writes what is left."""
    from prometheus_client import CollectorRegistry, multiprocess

    done = _run_probe(_BUFFER_SCRIPT, tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(tmp_path))
    assert registry.get_sample_value("buffer_probe_total", {"kind": "c"}) == 1


def test_a_worker_flushes_its_buffer_periodically(tmp_path):
    done = _run_probe(_PERIODIC_SCRIPT, tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
