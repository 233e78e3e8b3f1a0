#!/usr/bin/env python3
"""`make chaos`: fault injection under load, on loopback, with PRIVATE MariaDB and Redis (issue 15).

Starts its own `mariadbd` (own data directory and port; the service connects as a NON-admin user, because
root ignores `read_only`) and its own persistent `redis-server`, migrates, seeds a tenant, an agent and
keys through the API, and serves the project with its gunicorn config (2 workers, instance A; instance B
on another port for the two-instance experiment). Eight client threads cycle validate / agent-key
heartbeat / GET tenant against A while the experiments run one after another:

  baseline        nothing injected
  mariadb-stop    MariaDB stopped for 10 s, then started
  redis-stop      Redis stopped for 10 s, then started (append-only file: pending counts survive)
  read-only       SET GLOBAL read_only = 1 for 10 s (the service's user is not an admin)
  kill-9          SIGKILL of one worker (gunicorn starts a new one)
  hup             SIGHUP to the master (reload: new workers, old ones stopped once the new ones serve)
  two-instances   revocation via A refused on the next request via B; a per-key limit shared by A and B

and prints one table: requests, statuses by code, recovery seconds (dependency back → last failure),
usage expected vs counted (per key: answered uses ≤ counted ≤ answered + failed-in-flight), log lines
written, p99. The load pauses between experiments so each one's usage is read exactly. Whatever happens
(error, Ctrl-C, SIGTERM), the servers it started are stopped and their data removed; the shared MariaDB and
Redis are never touched. Options: --seconds (outage length, default 10), --keep (keep the data directory).
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.private_servers import PrivateMariaDB, PrivateRedis, ServiceProcess  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
CLIENTS = 8
OPS = ("validate", "heartbeat", "get_tenant")


# --- HTTP ------------------------------------------------------------------------------------------

def request(port: int, method: str, path: str, body=None, token: str | None = None, timeout: float = 30):
    """One request on a new connection: (status, parsed body or None); status 0 = no answer."""
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"{'Bearer' if token.startswith('mmc_') else 'Token'} {token}"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, None
    except (OSError, http.client.HTTPException):
        return 0, None
    finally:
        connection.close()


# --- load ------------------------------------------------------------------------------------------

class Load:
    """CLIENTS threads cycling OPS against one instance; records (start, end, op, status, outcome)."""

    def __init__(self, port: int, seed: dict):
        self.port = port
        self.seed = seed
        self.records: list[tuple[float, float, str, int, str]] = []
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.stopping = False
        self.busy = 0
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(CLIENTS)]

    def start(self):
        self.running.set()
        for thread in self.threads:
            thread.start()

    def pause(self):
        """Stop issuing requests and wait for the in-flight ones to finish."""
        self.running.clear()
        deadline = time.monotonic() + 60
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.02)

    def resume(self):
        self.running.set()

    def stop(self):
        self.stopping = True
        self.running.set()

    def _one(self, op: str):
        seed = self.seed
        if op == "validate":
            status, body = request(self.port, "POST", "/api/v2/auth/validate-api-key", {"api_key": seed["validate_key"]})
            valid = bool(status == 200 and body and (body.get("data") or {}).get("valid"))
            return status, "use" if valid else (body or {}).get("error_code") or "-"
        if op == "heartbeat":
            status, body = request(self.port, "PUT", "/api/v2/agent-activity", {"ttl_seconds": 300},
                                   token=seed["heartbeat_key"])
            return status, "use" if status == 200 else (body or {}).get("error_code") or "-"
        status, body = request(self.port, "GET", f"/api/v2/tenants/{seed['tenant_id']}", token=seed["operator"])
        return status, "ok" if status == 200 else (body or {}).get("error_code") or "-"

    def _client(self, number: int):
        index = number
        while True:
            self.running.wait()
            if self.stopping:
                return
            with self.lock:
                if not self.running.is_set():
                    continue
                self.busy += 1
            op = OPS[index % len(OPS)]
            index += 1
            started = time.monotonic()
            try:
                status, outcome = self._one(op)
            finally:
                with self.lock:
                    self.busy -= 1
            with self.lock:
                self.records.append((started, time.monotonic(), op, status, outcome))

    def since(self, mark: int):
        with self.lock:
            return self.records[mark:]

    def mark(self) -> int:
        with self.lock:
            return len(self.records)


def manage(env: dict, *args: str) -> str:
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stderr[-3000:]}")
    return result.stdout


# --- the run ---------------------------------------------------------------------------------------

class Chaos:
    def __init__(self, seconds: float, keep: bool, only: list[str] | None = None):
        self.seconds = seconds
        self.keep = keep
        self.only = only or []
        self.mariadb = PrivateMariaDB(max_connections=200)
        self.redis = PrivateRedis(persistent=True)
        self.services: list[ServiceProcess] = []
        self.rows: list[dict] = []
        self.log_dir = Path(self.mariadb.base) / "logs"

    # setup
    def start(self):
        self.log_dir.mkdir(parents=True, exist_ok=True)
        print(f"private MariaDB on :{self.mariadb.port}, Redis on :{self.redis.port}; data in {self.mariadb.base}",
              flush=True)
        self.mariadb.start()
        self.redis.start()
        self.database_url = self.mariadb.create_app_user("chaos", user="maimconfig", password="chaos-pw")
        self.env = {"SECRET_KEY": "chaos-secret-key", "DATABASE_URL": self.database_url,
                    "CACHE_URL": self.redis.url(0), "GUNICORN_WORKERS": "2", "LOG_LEVEL": "INFO",
                    "LOG_FORMAT": "json", "MAIMCONFIG_AUTH_MODE": "operator", "GUNICORN_GRACEFUL_TIMEOUT": "20"}
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "maimconfig.settings.base", **self.env}
        manage(env, "migrate", "--noinput", "-v0")
        operator = manage(env, "create_operator", "chaos-operator").strip().splitlines()[-1]
        self.a = self._service("a")
        self.seed = self._seed(operator)

    def _service(self, name: str) -> ServiceProcess:
        service = ServiceProcess(self.env, PYTHON, self.log_dir / f"service-{name}.log")
        service.start()
        self._wait_serving(service)
        self.services.append(service)
        return service

    @staticmethod
    def _wait_serving(service: ServiceProcess, timeout: float = 120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if request(service.port, "GET", "/health", timeout=5)[0] == 200:
                return
            time.sleep(0.2)
        raise RuntimeError(f"instance on :{service.port} is not healthy")

    def _seed(self, operator: str) -> dict:
        port = self.a.port

        def ok(status_body):
            status, body = status_body
            if status != 200:
                raise RuntimeError(f"seeding failed: {status} {body}")
            return body["data"]

        tenant = ok(request(port, "POST", "/api/v2/tenants", {"tenant_name": "Chaos", "tenant_type": "enterprise"},
                            token=operator))
        agent = ok(request(port, "POST", "/api/v2/agents", {"tenant_id": tenant["tenant_id"], "name": "Chaos Bot"},
                           token=operator))

        def key(name, **extra):
            return ok(request(port, "POST", "/api/v2/api-keys", {"agent_id": agent["agent_id"], "name": name,
                                                                  "permissions": ["chat"], **extra}, token=operator))

        validate, heartbeat, revoke = key("validate"), key("heartbeat"), key("revoke")
        limited = key("limited", rate_limit_per_minute=30)
        return {"operator": operator, "tenant_id": tenant["tenant_id"], "agent_id": agent["agent_id"],
                "validate_key": validate["api_key"], "validate_id": validate["id"],
                "heartbeat_key": heartbeat["api_key"], "heartbeat_id": heartbeat["id"],
                "revoke_key": revoke["api_key"], "revoke_id": revoke["id"],
                "limited_key": limited["api_key"], "limited_id": limited["id"]}

    def usage(self, key_id: str) -> int | None:
        """The key's usage_count via the API; None (reported) when it cannot be read for 30 s."""
        deadline = time.monotonic() + 30
        status, body = 0, None
        while time.monotonic() < deadline:
            status, body = request(self.a.port, "GET", f"/api/v2/api-keys/{key_id}", token=self.seed["operator"])
            if status == 200:
                return body["data"]["usage_count"]
            time.sleep(0.5)
        print(f"  usage_count unreadable: last answer {status} {json.dumps(body)[:300]}", flush=True)
        return None

    def log_lines(self) -> int:
        total = 0
        for path in self.log_dir.glob("service-*.log"):
            with open(path, "rb") as handle:
                total += sum(1 for _ in handle)
        return total

    # experiments
    def experiment(self, name: str, inject, load: Load, settle: float = 3.0):
        """Run `inject()` under load (it returns the monotonic time the fault was lifted, or None)."""
        usage_before = {key: self.usage(self.seed[f"{key}_id"]) for key in ("validate", "heartbeat")}
        lines_before = self.log_lines()
        mark = load.mark()
        load.resume()
        started = time.monotonic()
        restored_at = inject()
        time.sleep(settle)
        load.pause()
        ended = time.monotonic()
        records = load.since(mark)
        # Usage: an answered use must be counted; a use whose answer was lost (connection cut, 5xx) may be.
        usage = {}
        for key, op in (("validate", "validate"), ("heartbeat", "heartbeat")):
            answered = sum(1 for r in records if r[2] == op and r[4] == "use")
            unknown = sum(1 for r in records if r[2] == op and (r[3] == 0 or r[3] >= 500))
            after = self.usage(self.seed[f"{key}_id"])
            counted = None if after is None or usage_before[key] is None else after - usage_before[key]
            usage[key] = (answered, unknown, counted)
        failures_after = [r[1] for r in records if (r[3] == 0 or r[3] >= 500) and restored_at and r[0] >= restored_at]
        recovery = (max(failures_after) - restored_at) if failures_after else 0.0
        latencies = sorted(r[1] - r[0] for r in records)
        p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0.0
        row = {"experiment": name, "requests": len(records), "seconds": ended - started,
               "statuses": Counter(r[3] for r in records), "recovery": recovery if restored_at else None,
               "usage": usage, "log_lines": self.log_lines() - lines_before, "p99_ms": p99 * 1000}
        self.rows.append(row)
        print(format_row(row), flush=True)
        return row

    def wanted(self, name: str) -> bool:
        return not self.only or name in self.only

    def run(self):
        self.start()
        load = Load(self.a.port, self.seed)
        load.start()
        load.pause()
        seconds = self.seconds

        self.experiment("baseline", lambda: time.sleep(seconds) or None, load)

        def mariadb_stop():
            time.sleep(1)
            self.mariadb.stop()
            time.sleep(seconds)
            self.mariadb.start()
            return time.monotonic()
        if self.wanted("mariadb-stop"):
            self.experiment("mariadb-stop", mariadb_stop, load, settle=5)

        def redis_stop():
            time.sleep(1)
            self.redis.stop()
            time.sleep(seconds)
            self.redis.start()
            return time.monotonic()
        if self.wanted("redis-stop"):
            self.experiment("redis-stop", redis_stop, load, settle=5)

        def read_only():
            time.sleep(1)
            self.mariadb.set_read_only(True)
            time.sleep(seconds)
            self.mariadb.set_read_only(False)
            return time.monotonic()
        if self.wanted("read-only"):
            self.experiment("read-only", read_only, load, settle=5)

        def kill_worker():
            time.sleep(1)
            workers = self.a.worker_pids()
            if workers:
                os.kill(workers[0], signal.SIGKILL)
            time.sleep(seconds)
            return None
        if self.wanted("kill-9"):
            self.experiment("kill-9", kill_worker, load)

        def hup():
            time.sleep(1)
            self.a.signal(signal.SIGHUP)
            time.sleep(seconds)
            return None
        if self.wanted("hup"):
            self.experiment("hup", hup, load)

        def two_instances():
            self.revocations = two_instance_checks(self.a.port, self.b.port, self.seed)
            return None
        if self.wanted("two-instances"):
            self.b = self._service("b")
            self.experiment("two-instances", two_instances, load)
        load.stop()

    def teardown(self):
        for service in self.services:
            try:
                service.stop()
            except Exception as exc:  # noqa: BLE001 - keep tearing down
                print(f"stopping a service: {exc}", file=sys.stderr)
        self.services.clear()
        for server in (self.redis, self.mariadb):
            try:
                server.stop() if self.keep else server.destroy()
            except Exception as exc:  # noqa: BLE001
                print(f"stopping a private server: {exc}", file=sys.stderr)


def two_instance_checks(port_a: int, port_b: int, seed: dict, rounds: int = 20) -> dict:
    """Revocation via A refused by B on the next request; a 30/min limit shared by A and B."""
    operator = seed["operator"]
    wrong = 0
    for _ in range(rounds):
        request(port_a, "POST", f"/api/v2/api-keys/{seed['revoke_id']}/disable", {}, token=operator)
        _, body = request(port_b, "POST", "/api/v2/auth/validate-api-key",
                          {"api_key": seed["revoke_key"], "check_rate_limit": False})
        wrong += bool(body and body["data"]["valid"])
        request(port_a, "POST", f"/api/v2/api-keys/{seed['revoke_id']}/enable", {}, token=operator)
        _, body = request(port_b, "POST", "/api/v2/auth/validate-api-key",
                          {"api_key": seed["revoke_key"], "check_rate_limit": False})
        wrong += not (body and body["data"]["valid"])
    verdicts = Counter()
    for number in range(40):
        _, body = request(port_a if number % 2 else port_b, "POST", "/api/v2/auth/validate-api-key",
                          {"api_key": seed["limited_key"]})
        verdicts["valid" if body and body["data"]["valid"] else (body or {}).get("error_code") or "error"] += 1
    result = {"revocation_rounds": rounds, "revocation_wrong": wrong, "limited_valid": verdicts["valid"],
              "limited_refused": verdicts["AUTH_008"]}
    print(f"  two instances: {wrong} wrong verdicts in {2 * rounds} revocation checks; 40 uses of a 30/min key "
          f"via A and B: {verdicts['valid']} valid, {verdicts['AUTH_008']} AUTH_008", flush=True)
    return result


def format_usage(usage: dict) -> str:
    parts = []
    for key, (answered, unknown, counted) in usage.items():
        if counted is None:
            parts.append(f"{key} UNREADABLE")
            continue
        ok = answered <= counted <= answered + unknown
        expected = f"{answered}" if not unknown else f"{answered}–{answered + unknown}"
        parts.append(f"{key} {expected} vs {counted}{'' if ok else ' MISMATCH'}")
    return "; ".join(parts)


def format_row(row: dict) -> str:
    statuses = " ".join(f"{code or 'no-answer'}:{count}" for code, count in sorted(row["statuses"].items()))
    recovery = "–" if row["recovery"] is None else f"{row['recovery']:.1f}"
    return (f"| {row['experiment']} | {row['requests']} | {statuses} | {recovery} | {format_usage(row['usage'])} | "
            f"{row['log_lines']} | {row['p99_ms']:.0f} |")


HEADER = ("| experiment | requests | statuses by code | recovery s | usage expected vs counted | log lines | "
          "p99 ms |\n|---|---|---|---|---|---|---|")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each outage (default 10)")
    parser.add_argument("--keep", action="store_true", help="keep the private data directories")
    parser.add_argument("--only", nargs="*", help="run only these experiments (after the baseline)")
    args = parser.parse_args()
    chaos = Chaos(args.seconds, args.keep, args.only)
    done = threading.Event()

    def cleanup(*_):
        if not done.is_set():
            done.set()
            chaos.teardown()

    atexit.register(cleanup)

    def on_signal(signum, frame):
        cleanup()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(HEADER, flush=True)
    try:
        chaos.run()
    finally:
        cleanup()
    print("\n" + HEADER)
    for row in chaos.rows:
        print(format_row(row))
    five_hundreds = sum(count for row in chaos.rows for code, count in row["statuses"].items() if code == 500)
    mismatches = sum("MISMATCH" in format_usage(row["usage"]) or "UNREADABLE" in format_usage(row["usage"])
                     for row in chaos.rows)
    print(f"\n500s: {five_hundreds}; usage mismatches: {mismatches}; "
          f"revocation wrong verdicts: {getattr(chaos, 'revocations', {}).get('revocation_wrong', '?')}")
    return 1 if five_hundreds or mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
