"""Database failures classified once (issue 15, spec §1.5), against a REAL private MariaDB in each state.

The service runs under gunicorn with the project's config, as a non-admin database user (root ignores
`read_only`), on a private `mariadbd` this module starts on its own port and data directory (the shared
server on 3306 is never touched). Each test puts that server in one state and checks the answer:
read-only → 503 for writes, reads keep working; a lock held elsewhere → lock wait timeout → 503; out of
connections → 503; server stopped → 503 and recovery without a restart. Every 503 carries `Retry-After`
and the envelope, and the log does not grow one traceback per request.
"""

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from core.private_servers import ROOT, PrivateMariaDB, ServiceProcess, mariadb_available

pytestmark = pytest.mark.skipif(not mariadb_available(), reason="needs mariadbd and mariadb-install-db")

MySQLdb = pytest.importorskip("MySQLdb")


def call(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, json.loads(error.read())


@pytest.fixture(scope="module")
def mariadb():
    server = PrivateMariaDB()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="module")
def service(mariadb, tmp_path_factory):
    url = mariadb.create_app_user("degrade_e2e")
    log_path = tmp_path_factory.mktemp("service") / "service.log"
    env = {"SECRET_KEY": "degrade-test", "DATABASE_URL": url, "CACHE_URL": "locmemcache://degrade",
           "MAIMCONFIG_AUTH_MODE": "open", "DB_CONN_MAX_AGE": "0", "GUNICORN_WORKERS": "1",
           "GUNICORN_THREADS": "4", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}
    process = ServiceProcess(env, sys.executable, log_path)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], check=True, cwd=ROOT,
                   env=process.env, timeout=600)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def tenant(service):
    status, _, body = call(service.base_url, "POST", "/api/v2/tenants",
                           {"tenant_name": f"degrade-{uuid.uuid4().hex[:8]}", "tenant_type": "personal"})
    assert status == 200, body
    return body["data"]


def root_connection(mariadb, database="degrade_e2e"):
    return MySQLdb.connect(host="127.0.0.1", port=mariadb.port, user="root", database=database)


def assert_unavailable(status, headers, body, retry_after: str, words: str):
    assert status == 503, body
    assert body["success"] is False and body["error_code"] == "SERVICE_UNAVAILABLE"
    assert headers.get("retry-after") == retry_after
    assert words in body["error"]
    assert "Traceback" not in json.dumps(body) and "1290" not in body["error"]


def log_lines(service, *needles):
    lines = service.log_path.read_text(errors="replace").splitlines()
    return [line for line in lines if all(needle in line for needle in needles)]


def test_read_only_database_refuses_writes_with_503_and_keeps_reads(mariadb, service, tenant):
    mariadb.set_read_only(True)
    try:
        answers = [call(service.base_url, "POST", "/api/v2/tenants",
                        {"tenant_name": f"ro-{number}", "tenant_type": "personal"}) for number in range(40)]
        for status, headers, body in answers:
            assert_unavailable(status, headers, body, "10", "read-only")
        status, _, body = call(service.base_url, "GET", f"/api/v2/tenants/{tenant['tenant_id']}")
        assert status == 200 and body["data"]["tenant_name"] == tenant["tenant_name"]
        status, _, health = call(service.base_url, "GET", "/health")  # SELECT 1 answers: healthy, and why not
        assert status == 200 and health["problems"] == {"database": "read_only"}
        # 40 failures, one traceback (the rest are counted and summarised at the end of the window).
        assert len(log_lines(service, "database_read_only", "Traceback")) == 1
        assert len(log_lines(service, "Service Unavailable")) <= 1
    finally:
        mariadb.set_read_only(False)
    status, _, body = call(service.base_url, "POST", "/api/v2/tenants",
                           {"tenant_name": f"rw-{uuid.uuid4().hex[:6]}", "tenant_type": "personal"})
    assert status == 200, body
    status, _, body = call(service.base_url, "GET", "/api/v2/tenants?page_size=100")
    assert not any(item["tenant_name"].startswith("ro-") for item in body["data"]["items"])


def test_lock_wait_timeout_is_503(mariadb, service, tenant):
    mariadb.sql("SET GLOBAL innodb_lock_wait_timeout = 1")
    holder = root_connection(mariadb)
    try:
        cursor = holder.cursor()
        cursor.execute("BEGIN")
        cursor.execute("SELECT id FROM tenants_tenant WHERE id = %s FOR UPDATE", [tenant["tenant_id"]])
        status, headers, body = call(service.base_url, "PUT", f"/api/v2/tenants/{tenant['tenant_id']}",
                                     {"description": "changed while locked"})
        assert_unavailable(status, headers, body, "1", "lock wait")
        holder.rollback()
    finally:
        holder.close()
        mariadb.sql("SET GLOBAL innodb_lock_wait_timeout = 50")
    status, _, body = call(service.base_url, "PUT", f"/api/v2/tenants/{tenant['tenant_id']}",
                           {"description": "changed after the lock"})
    assert status == 200 and body["data"]["description"] == "changed after the lock"


def test_too_many_connections_is_503(mariadb, service, tenant):
    held = []
    mariadb.sql("SET GLOBAL max_connections = 10")  # the smallest value MariaDB accepts
    try:
        # Fill every slot as the application's (non-admin) user; root keeps its one extra slot.
        for _ in range(20):
            try:
                held.append(MySQLdb.connect(host="127.0.0.1", port=mariadb.port, user="app", password="app-pw",
                                            database="degrade_e2e"))
            except MySQLdb.OperationalError as error:
                assert error.args[0] == 1040
                break
        else:
            pytest.fail("max_connections was not reached")
        status, headers, body = call(service.base_url, "GET", f"/api/v2/tenants/{tenant['tenant_id']}")
        assert_unavailable(status, headers, body, "2", "out of connections")
    finally:
        for connection in held:
            connection.close()
        mariadb.sql("SET GLOBAL max_connections = 200")
    status, _, _ = call(service.base_url, "GET", f"/api/v2/tenants/{tenant['tenant_id']}")
    assert status == 200


def test_stopped_database_is_503_and_the_service_recovers_without_restart(mariadb, service, tenant):
    workers = service.worker_pids()
    mariadb.stop()
    try:
        for _ in range(20):
            status, headers, body = call(service.base_url, "GET", f"/api/v2/tenants/{tenant['tenant_id']}")
            assert_unavailable(status, headers, body, "5", "unreachable")
        status, _, health = call(service.base_url, "GET", "/health")
        assert status == 503 and health["services"]["database"] == "unhealthy"
    finally:
        mariadb.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, _, body = call(service.base_url, "GET", f"/api/v2/tenants/{tenant['tenant_id']}")
        if status == 200:
            break
        time.sleep(0.2)
    assert status == 200 and body["data"]["tenant_id"] == tenant["tenant_id"]
    assert service.worker_pids() == workers  # no worker restart
    assert len(log_lines(service, "database_unreachable", "Traceback")) == 1


# --- deadlocks: retried once where the caller owns the transaction, else 503 ----------------------------

@pytest.fixture
def deadlock_alias(mariadb, django_db_blocker):
    """A Django connection alias on the private server (a real MySQL backend, real deadlocks)."""
    import environ
    from django.db import connections

    mariadb.sql("CREATE DATABASE IF NOT EXISTS degrade_locks; "
                "CREATE TABLE IF NOT EXISTS degrade_locks.pair (id INT PRIMARY KEY, n INT) ENGINE=InnoDB; "
                "REPLACE INTO degrade_locks.pair VALUES (1, 0), (2, 0)")
    config = environ.Env.db_url_config(mariadb.url("degrade_locks"))
    config["OPTIONS"] = {"isolation_level": "read committed"}
    connections.settings["deadlocks"] = connections.configure_settings({"default": config})["default"]
    with django_db_blocker.unblock():
        yield "deadlocks"
    connections.settings.pop("deadlocks", None)


def crossed_updates(alias: str, first: int, second: int, barrier, decorate=None):
    """Lock row `first`, wait for the other thread to lock its row, then ask for row `second`."""
    from django.db import connections, transaction

    def work():
        barrier_passed = getattr(work, "barrier_passed", False)
        with transaction.atomic(using=alias):
            cursor = connections[alias].cursor()
            cursor.execute("UPDATE pair SET n = n + 1 WHERE id = %s", [first])
            if not barrier_passed:  # only the first attempt meets the other thread
                work.barrier_passed = True
                barrier.wait(timeout=10)
            cursor.execute("UPDATE pair SET n = n + 1 WHERE id = %s", [second])

    return decorate(work, using=alias) if decorate else work


def run_crossed(alias, decorate=None):
    import threading

    from django.db import connections

    barrier = threading.Barrier(2)
    outcomes = {}

    def run(name, first, second):
        try:
            crossed_updates(alias, first, second, barrier, decorate)()
            outcomes[name] = "committed"
        except Exception as exc:  # noqa: BLE001 - inspected by the test
            outcomes[name] = exc
        finally:
            connections[alias].close()

    threads = [threading.Thread(target=run, args=("a", 1, 2)), threading.Thread(target=run, args=("b", 2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_a_deadlock_victim_is_classified_and_answers_503(deadlock_alias):
    from core.db_errors import DbFailure, classify
    from core.exception_handlers import to_application_error

    outcomes = run_crossed(deadlock_alias)
    errors = [value for value in outcomes.values() if value != "committed"]
    assert len(errors) == 1 and list(outcomes.values()).count("committed") == 1
    victim = errors[0]
    assert classify(victim) is DbFailure.DEADLOCK
    app_error = to_application_error(victim)
    assert (app_error.code.value, app_error.status, app_error.headers) == ("SERVICE_UNAVAILABLE", 503, {"Retry-After": "1"})


def test_retry_on_deadlock_replays_the_victims_own_transaction(mariadb, deadlock_alias):
    from core.db_errors import retry_on_deadlock

    before = mariadb.sql("SELECT SUM(n) FROM pair", "degrade_locks").strip()
    outcomes = run_crossed(deadlock_alias, decorate=lambda work, using: retry_on_deadlock(work, using=using))
    assert outcomes == {"a": "committed", "b": "committed"}
    after = mariadb.sql("SELECT SUM(n) FROM pair", "degrade_locks").strip()
    assert int(after) - int(before) == 4  # both transactions, each exactly once


def test_retry_on_deadlock_does_not_retry_inside_an_outer_transaction(deadlock_alias):
    from django.db import transaction

    from core.db_errors import DbFailure, classify, retry_on_deadlock

    def outer(work, using):
        inner = retry_on_deadlock(work, using=using)

        def wrapped():
            with transaction.atomic(using=using):  # e.g. the request's transaction
                inner()

        return wrapped

    outcomes = run_crossed(deadlock_alias, decorate=outer)
    errors = [value for value in outcomes.values() if value != "committed"]
    assert len(errors) == 1 and classify(errors[0]) is DbFailure.DEADLOCK
