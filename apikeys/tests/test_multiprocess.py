"""Revocation across processes (spec §1.15): two gunicorn servers share one database; a disable, rotate
or delete done through one is refused by the other on the very next request. Real HTTP on loopback."""

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

SETUP = """
from core.services import operator_token_issue
from django.contrib.auth import get_user_model
from tenants.services import tenant_create
from agents.models import Agent
from core.models import casefold_name
from apikeys.services import apikey_create
import json
user = get_user_model().objects.create_user(username="op", is_staff=True)
token = operator_token_issue(user=user)[1]
tenant = tenant_create(tenant_name="T", tenant_type="personal")
agent = Agent.objects.create(id="agent_00000000000a", tenant=tenant, name="A", name_key="a")
key, raw = apikey_create(agent_id=agent.id, name="k")
print(json.dumps({"token": token, "key_id": key.id, "raw": raw}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(port, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait_up(port, proc, log):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not start")


@pytest.fixture
def two_servers(tmp_path):
    ports = (_free_port(), _free_port())
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}", "SECRET_KEY": "mp-test",
           "DJANGO_SETTINGS_MODULE": "maimconfig.settings.base", "DEBUG": "0", "LOG_LEVEL": "WARNING",
           "CACHE_URL": "locmemcache://mp"}
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run([python, "manage.py", "shell", "-c", SETUP], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout
    info = json.loads(out.strip().splitlines()[-1])
    gunicorn = str(Path(python).with_name("gunicorn"))
    procs = []
    try:
        logs = [tmp_path / f"server-{port}.log" for port in ports]
        for port, log in zip(ports, logs, strict=True):
            procs.append(subprocess.Popen(
                [gunicorn, "-c", "gunicorn.conf.py", "maimconfig.wsgi:application"], cwd=ROOT,
                env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "2"},
                stdout=log.open("w"), stderr=subprocess.STDOUT))
        for port, proc, log in zip(ports, procs, logs, strict=True):
            _wait_up(port, proc, log)
        yield {**info, "ports": ports}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_revocation_reaches_the_other_process_at_once(two_servers):
    a, b = two_servers["ports"]
    token, key_id, raw = two_servers["token"], two_servers["key_id"], two_servers["raw"]

    def verdict(port, key=raw):
        status, body = _call(port, "POST", "/api/v2/auth/validate-api-key", {"api_key": key})
        assert status == 200
        return body["error_code"] or "valid"

    assert verdict(b) == "valid" and verdict(a) == "valid"
    assert _call(a, "POST", f"/api/v2/api-keys/{key_id}/disable", {}, token)[0] == 200
    assert verdict(b) == "AUTH_004"
    assert _call(b, "POST", f"/api/v2/api-keys/{key_id}/enable", {}, token)[0] == 200
    assert verdict(a) == "valid"
    status, body = _call(a, "POST", f"/api/v2/api-keys/{key_id}/rotate", {"grace_seconds": 0}, token)
    assert status == 200
    new_raw = body["data"]["api_key"]
    assert verdict(b) == "AUTH_005" and verdict(b, new_raw) == "valid"
    # four valid verdicts through two processes: the stored count is exact
    assert _call(a, "GET", f"/api/v2/api-keys/{key_id}", None, token)[1]["data"]["usage_count"] == 4
    assert _call(b, "DELETE", f"/api/v2/api-keys/{key_id}", None, token)[0] == 200
    assert verdict(a, new_raw) == "AUTH_005"
    assert _call(a, "GET", f"/api/v2/api-keys/{key_id}", None, token)[0] == 404
