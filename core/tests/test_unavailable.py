"""With the database unreachable, /health answers 503 and the API 503 SERVICE_UNAVAILABLE (a real
server process pointed at a database it cannot open; no mocking)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def server_without_database(tmp_path):
    port = free_port()
    env = {**os.environ, "SECRET_KEY": "x", "DJANGO_SETTINGS_MODULE": "maimconfig.settings.base",
           # a SQLite file inside a directory that does not exist: every connection attempt fails
           "DATABASE_URL": f"sqlite:///{tmp_path}/missing-dir/db.sqlite3", "CACHE_URL": "locmemcache://x",
           "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1", "LOG_LEVEL": "CRITICAL"}
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--no-control-socket"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_health_and_api_report_the_database_down(server_without_database):
    status, body = fetch(f"{server_without_database}/health")
    assert status == 503
    assert body["status"] == "unhealthy"
    assert body["services"]["database"] == "unhealthy" and body["services"]["cache"] == "healthy"
    status, body = fetch(f"{server_without_database}/api/v2/tenants", {"Authorization": "Token abc"})
    assert status == 503
    assert body["error_code"] == "SERVICE_UNAVAILABLE"
    assert "sqlite" not in json.dumps(body).lower()
