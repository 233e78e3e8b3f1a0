"""Two gunicorn masters on loopback sharing one database (and, on MariaDB, one Redis), as two instances of
the service would (issue 16 items 4 and 5; spec §1.15):

* concurrent uses of one key through both servers add exactly their number to `usage_count`, as the
  API shows it and, once flushed, as stored in the database;
* every revocation made through server A is refused on the very next request through server B, after B
  has warmed its view of the key: disable, enable, rotation with and without grace, `expires_at`, tenant
  and agent deactivation and deletion, key deletion.

Runs on SQLite with the local-memory cache (the default setup) and, with `DATABASE_URL=mysql://…`, on
MariaDB + Redis (`CACHE_URL=redis://…`). Each server is the default serving configuration
(`gunicorn.conf.py`: the ASGI lane dispatcher) with one worker.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings as django_settings

ROOT = Path(__file__).resolve().parents[2]
THREADS = 8
PER_THREAD = 25


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None, token=None, key=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Token {token}")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait_up(port, proc, log):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} exited: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.2)
    raise RuntimeError(f"server on {port} did not start: {log.read_text()[-3000:]}")


def _backend_env(tmp_path) -> dict:
    """SQLite + local memory in the default run; MariaDB + Redis when the suite runs on MariaDB."""
    db = django_settings.DATABASES["default"]
    if not db["ENGINE"].endswith("mysql"):
        return {"DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}", "CACHE_URL": "locmemcache://two"}
    cache = django_settings.CACHES["default"]
    if not cache["BACKEND"].startswith("django_redis."):
        pytest.skip("the MariaDB run of this test needs CACHE_URL=redis://…")
    import MySQLdb

    name = db["NAME"].removeprefix("test_") + "_two_servers"
    port = int(db.get("PORT") or 3306)
    admin = MySQLdb.connect(host=db["HOST"] or "127.0.0.1", port=port, user=db["USER"], passwd=db["PASSWORD"] or "")
    try:
        cursor = admin.cursor()
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        admin.close()
    location = cache["LOCATION"]
    return {"DATABASE_URL": f"mysql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{port}/{name}",
            "CACHE_URL": location if isinstance(location, str) else location[0]}


@pytest.fixture
def servers(tmp_path):
    backend = _backend_env(tmp_path)
    env = {**os.environ, **backend, "SECRET_KEY": "two-servers-test", "DEBUG": "0", "LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "maimconfig.settings.base", "MAIMCONFIG_USAGE_FLUSH_SECONDS": "0.2",
           "MAIMCONFIG_AUTH_THROTTLE_RATE": "100000/min"}
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    token = subprocess.run([python, "manage.py", "create_operator", "bench-op"], cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True).stdout.strip().splitlines()[-1]
    gunicorn = str(Path(python).with_name("gunicorn"))
    ports = (_free_port(), _free_port())
    procs = []
    try:
        logs = [tmp_path / f"server-{port}.log" for port in ports]
        for port, log in zip(ports, logs, strict=True):
            procs.append(subprocess.Popen(
                [gunicorn, "-c", "gunicorn.conf.py"], cwd=ROOT,
                env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1"},
                stdout=log.open("w"), stderr=subprocess.STDOUT))
        for port, proc, log in zip(ports, procs, logs, strict=True):
            _wait_up(port, proc, log)

        def stored_usage(key_id: str) -> int:
            out = subprocess.run(
                [python, "manage.py", "shell", "-c",
                 f"from apikeys.models import ApiKey; print(ApiKey.objects.get(pk='{key_id}').usage_count)"],
                cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
            return int(out.strip().splitlines()[-1])

        yield {"ports": ports, "token": token, "stored_usage": stored_usage,
               "redis": backend["CACHE_URL"].startswith("redis")}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


class Fleet:
    """Tenants, agents and keys made through the API of server A."""

    def __init__(self, port, token):
        self.port, self.token, self.n = port, token, 0

    def key(self, **fields) -> dict:
        self.n += 1
        status, tenant = call(self.port, "POST", "/api/v2/tenants",
                              {"tenant_name": f"T{self.n}-{time.time_ns()}", "tenant_type": "personal"}, self.token)
        assert status == 200, tenant
        tenant_id = tenant["data"]["tenant_id"] if "tenant_id" in tenant["data"] else tenant["data"]["id"]
        status, agent = call(self.port, "POST", "/api/v2/agents", {"tenant_id": tenant_id, "name": "A"}, self.token)
        assert status == 200, agent
        agent_id = agent["data"]["agent_id"] if "agent_id" in agent["data"] else agent["data"]["id"]
        status, key = call(self.port, "POST", "/api/v2/api-keys",
                           {"agent_id": agent_id, "name": "k", **fields}, self.token)
        assert status == 200, key
        return {"tenant_id": tenant_id, "agent_id": agent_id, "key_id": key["data"]["id"],
                "raw": key["data"]["api_key"]}


def verdict(port, raw) -> str:
    status, body = call(port, "POST", "/api/v2/auth/validate-api-key", {"api_key": raw})
    assert status == 200, body
    return body["error_code"] or "valid"


def test_concurrent_uses_through_two_servers_are_exact(servers):
    a, b = servers["ports"]
    key = Fleet(a, servers["token"]).key(permissions=["config"])
    results = []
    lock = threading.Lock()

    def hammer(index):
        mine = []
        for i in range(PER_THREAD):
            port = (a, b)[(index + i) % 2]
            if i % 3 == 2:  # agent-key heartbeats count too
                status, body = call(port, "PUT", "/api/v2/agent-activity", {"ttl_seconds": 60}, key=key["raw"])
                mine.append(status == 200 and body["success"])
            else:
                status, body = call(port, "POST", "/api/v2/auth/validate-api-key", {"api_key": key["raw"]})
                mine.append(status == 200 and body["data"]["valid"])
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = sum(results)
    assert accepted == THREADS * PER_THREAD  # nothing refused: every one of them is a counted use
    for port in (a, b):
        status, body = call(port, "GET", f"/api/v2/api-keys/{key['key_id']}", token=servers["token"])
        assert status == 200 and body["data"]["usage_count"] == accepted
    deadline = time.monotonic() + 20  # with Redis: the flushers move everything within a few periods
    while servers["stored_usage"](key["key_id"]) != accepted and time.monotonic() < deadline:
        time.sleep(0.5)
    assert servers["stored_usage"](key["key_id"]) == accepted


def test_revocation_through_one_server_is_refused_by_the_other_at_once(servers):
    a, b = servers["ports"]
    token = servers["token"]
    fleet = Fleet(a, token)

    def warm(key):
        assert verdict(b, key["raw"]) == "valid" and verdict(b, key["raw"]) == "valid"

    # disable, then enable
    key = fleet.key()
    warm(key)
    assert call(a, "POST", f"/api/v2/api-keys/{key['key_id']}/disable", {}, token)[0] == 200
    assert verdict(b, key["raw"]) == "AUTH_004"
    assert call(a, "POST", f"/api/v2/api-keys/{key['key_id']}/enable", {}, token)[0] == 200
    assert verdict(b, key["raw"]) == "valid"
    # expires_at in the past, then cleared
    warm(key)
    assert call(a, "PATCH", f"/api/v2/api-keys/{key['key_id']}", {"expires_at": "2000-01-01T00:00:00Z"},
                token)[0] == 200
    assert verdict(b, key["raw"]) == "AUTH_002"
    assert call(a, "PATCH", f"/api/v2/api-keys/{key['key_id']}", {"expires_at": None}, token)[0] == 200
    assert verdict(b, key["raw"]) == "valid"
    # rotation without grace
    warm(key)
    status, body = call(a, "POST", f"/api/v2/api-keys/{key['key_id']}/rotate", {"grace_seconds": 0}, token)
    assert status == 200
    assert verdict(b, key["raw"]) == "AUTH_005" and verdict(b, body["data"]["api_key"]) == "valid"
    # rotation with grace: the old secret works through B until the grace ends, then never again
    key = fleet.key()
    warm(key)
    status, body = call(a, "POST", f"/api/v2/api-keys/{key['key_id']}/rotate", {"grace_seconds": 2}, token)
    assert status == 200
    grace_ends = time.time() + 2
    status, old = call(b, "POST", "/api/v2/auth/validate-api-key", {"api_key": key["raw"]})
    assert old["data"]["valid"] is True and old["data"]["using_previous_secret"] is True
    time.sleep(max(0.0, grace_ends - time.time()) + 0.3)
    assert verdict(b, key["raw"]) == "AUTH_005" and verdict(b, body["data"]["api_key"]) == "valid"
    # key deletion
    warm(key := fleet.key())
    assert call(a, "DELETE", f"/api/v2/api-keys/{key['key_id']}", None, token)[0] == 200
    assert verdict(b, key["raw"]) == "AUTH_005"
    # tenant deactivated (suspended), then active again; agent deactivated
    warm(key := fleet.key())
    assert call(a, "PATCH", f"/api/v2/tenants/{key['tenant_id']}", {"status": "suspended"}, token)[0] == 200
    assert verdict(b, key["raw"]) == "AUTH_006"
    assert call(a, "PATCH", f"/api/v2/tenants/{key['tenant_id']}", {"status": "active"}, token)[0] == 200
    assert verdict(b, key["raw"]) == "valid"
    assert call(a, "PATCH", f"/api/v2/agents/{key['agent_id']}", {"status": "inactive"}, token)[0] == 200
    assert verdict(b, key["raw"]) == "AUTH_007"
    # agent deleted, tenant deleted (cascades)
    warm(key := fleet.key())
    assert call(a, "DELETE", f"/api/v2/agents/{key['agent_id']}", None, token)[0] == 200
    assert verdict(b, key["raw"]) == "AUTH_005"
    warm(key := fleet.key())
    assert call(a, "DELETE", f"/api/v2/tenants/{key['tenant_id']}", None, token)[0] == 200
    assert verdict(b, key["raw"]) == "AUTH_005"
