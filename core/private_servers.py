"""Private MariaDB and Redis servers for fault-injection tests and `make chaos` (never the shared ones).

A `PrivateMariaDB` is a throw-away `mariadbd` with its own data directory, socket and port; a
`PrivateRedis` a throw-away `redis-server`. Both can be stopped, started again on the same data, killed
and torn down, which is what the outage experiments need; the shared servers on 3306/6379 are never
touched. Imports nothing from Django (the chaos script uses it before any settings exist).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MARIADBD = shutil.which("mariadbd") or shutil.which("mysqld") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
MARIADB_CLIENT = shutil.which("mariadb") or shutil.which("mysql")
REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        return True
    except OSError:
        return False


def mariadb_available() -> bool:
    return bool(INSTALL_DB and MARIADB_CLIENT and os.path.exists(MARIADBD))


def redis_available() -> bool:
    return bool(REDIS_SERVER)


class _ChildServer:
    """A server process this module starts in its own session (a Ctrl-C of the test or chaos run does not
    reach it; teardown stops it explicitly), waited for until it answers, stopped with `TERM` and, after
    `timeout`, killed."""

    process: subprocess.Popen | None = None
    base: Path | None = None
    _kill_group = False  # kill the whole process group (a gunicorn master and its workers)

    def _spawn(self, args, *, what: str, log_hint: Path, timeout: float, interval: float, ready, **popen) -> None:
        popen.setdefault("stdout", subprocess.DEVNULL)
        popen.setdefault("stderr", subprocess.DEVNULL)
        self.process = subprocess.Popen(args, start_new_session=True, **popen)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{what} exited; see {log_hint}")
            if ready():
                return
            time.sleep(interval)
        raise RuntimeError(f"{what} did not start in time")

    def stop(self, timeout: float = 30) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            if self._kill_group:
                os.killpg(self.process.pid, signal.SIGKILL)
            else:
                self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def destroy(self) -> None:
        self.stop()
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)


class PrivateMariaDB(_ChildServer):
    """`mariadbd` on 127.0.0.1:`port` with data in `base_dir` (created; removed by `destroy`)."""

    def __init__(self, port: int | None = None, base_dir: str | None = None, max_connections: int = 200):
        self.port = port or free_port()
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="maimconfig-mariadb-"))
        self.datadir = self.base / "data"
        self.socket = self.base / "mariadb.sock"
        self.max_connections = max_connections
        self.process: subprocess.Popen | None = None

    def install(self) -> None:
        if self.datadir.exists():
            return
        subprocess.run([INSTALL_DB, "--no-defaults", f"--datadir={self.datadir}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def start(self, timeout: float = 60) -> None:
        self.install()
        args = [MARIADBD, "--no-defaults", f"--datadir={self.datadir}", "--user=root", f"--port={self.port}",
                "--bind-address=127.0.0.1", f"--socket={self.socket}", f"--pid-file={self.base / 'mariadb.pid'}",
                "--skip-log-bin", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M",
                f"--max-connections={self.max_connections}", "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci", f"--log-error={self.base / 'error.log'}"]
        self._spawn(args, what="private mariadbd", log_hint=self.base / "error.log", timeout=timeout, interval=0.1,
                    ready=lambda: port_open(self.port) and self._ping())

    def _ping(self) -> bool:
        result = subprocess.run([MARIADB_CLIENT, "-h127.0.0.1", f"-P{self.port}", "-uroot", "-e", "SELECT 1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
        return result.returncode == 0

    def sql(self, statement: str, database: str | None = None) -> str:
        """Run SQL as root (the client's tab-separated output)."""
        args = [MARIADB_CLIENT, "-h127.0.0.1", f"-P{self.port}", "-uroot", "-N", "-B", "-e", statement]
        if database:
            args.append(database)
        return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout

    def create_app_user(self, database: str, user: str = "app", password: str = "app-pw") -> str:
        """A database and a NON-admin user with all rights on it (root ignores `read_only`). Returns its URL."""
        self.sql(f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; "
                 f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{password}'; "
                 f"CREATE USER IF NOT EXISTS '{user}'@'localhost' IDENTIFIED BY '{password}'; "
                 f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%'; "
                 f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'localhost'; "
                 # the test database Django creates for a test run (`test_<name>`)
                 f"GRANT ALL PRIVILEGES ON `test\\_{database}`.* TO '{user}'@'%'; "
                 f"GRANT ALL PRIVILEGES ON `test\\_{database}`.* TO '{user}'@'localhost'; FLUSH PRIVILEGES")
        return self.url(database, user, password)

    def url(self, database: str, user: str = "root", password: str = "") -> str:
        credentials = f"{user}:{password}" if password else user
        return f"mysql://{credentials}@127.0.0.1:{self.port}/{database}"

    def set_read_only(self, on: bool) -> None:
        self.sql(f"SET GLOBAL read_only = {1 if on else 0}")

    def stop(self, timeout: float = 60) -> None:
        super().stop(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


class PrivateRedis(_ChildServer):
    """`redis-server` on 127.0.0.1:`port`; `persistent` keeps an append-only file across restarts."""

    def __init__(self, port: int | None = None, base_dir: str | None = None, persistent: bool = True):
        self.port = port or free_port()
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="maimconfig-redis-"))
        self.persistent = persistent
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.base),
                "--save", "", "--appendonly", "yes" if self.persistent else "no", "--appendfsync", "always",
                "--daemonize", "no", "--logfile", str(self.base / "redis.log")]
        self._spawn(args, what="private redis-server", log_hint=self.base / "redis.log", timeout=timeout,
                    interval=0.05, ready=lambda: port_open(self.port))

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self, timeout: float = 20) -> None:
        super().stop(timeout)


ROOT = Path(__file__).resolve().parents[1]


def gunicorn_command(python: str) -> list[str]:
    """`gunicorn -c gunicorn.conf.py`: the config names the application (the lane dispatcher)."""
    return [python, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--no-control-socket"]


class ServiceProcess(_ChildServer):
    """The service under gunicorn with the project's config, on loopback, its log written to a file."""

    _kill_group = True

    def __init__(self, env: dict[str, str], python: str, log_path: Path, port: int | None = None):
        self.port = port or free_port()
        # No control socket: its default path is shared by every gunicorn master of the user.
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "maimconfig.settings.base",
                    "GUNICORN_BIND": f"127.0.0.1:{self.port}", "GUNICORN_CMD_ARGS": "--no-control-socket", **env}
        self.python = python
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes to it until it stops
        try:
            self._spawn(gunicorn_command(self.python), what="the service", log_hint=self.log_path, timeout=timeout,
                        interval=0.1, ready=lambda: port_open(self.port), cwd=ROOT, env=self.env, stdout=log,
                        stderr=log)
        finally:
            log.close()

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signum)

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        result = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True)
        return [int(pid) for pid in result.stdout.split()]
