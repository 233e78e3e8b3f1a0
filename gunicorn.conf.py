"""gunicorn settings for MaimConfig (`make run`, the Dockerfile, docker-compose and the benchmarks use this file).

gunicorn's native ASGI worker serves `maimconfig.asgi:application`, the lane dispatcher of `core.lanes`
(README "Serving model"): chat requests wait for their upstream model on the event loop; every other
request runs in Django's WSGI handler in a bounded pool of `MAIMCONFIG_SYNC_THREADS` threads per worker.
uvloop and the C HTTP parser (gunicorn_h1c) are used when installed (they are in requirements.txt).
Each worker hands its chat connections to a chat process of its own at a lower CPU priority
(`core/chatproc.py`, started by `post_worker_init`; MAIMCONFIG_CHAT_PROCESS=false turns it off).

Database connections: at most workers x (MAIMCONFIG_SYNC_THREADS + MAIMCONFIG_CHAT_DB_THREADS +
MAIMCONFIG_FAST_HEARTBEAT_THREADS), 2 x (6 + 4 + 2) = 24 on a 2-core machine; the default worker count is capped
at 3 so the defaults stay within 40 (36). Each worker's chat process has a pool of its own (README "Serving
model": the bound and what was measured).
Every value can be overridden with the environment variables named below.
"""

import multiprocessing
import os

wsgi_app = "maimconfig.asgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", min(multiprocessing.cpu_count(), 3)))
worker_class = "asgi"
asgi_loop = os.environ.get("GUNICORN_ASGI_LOOP", "auto")  # uvloop when installed
http_parser = os.environ.get("GUNICORN_HTTP_PARSER", "auto")  # gunicorn_h1c when installed
asgi_lifespan = "on"  # shutdown callbacks (core.lanes.on_shutdown) run after in-flight requests finish
# Open connections per worker (each in-flight chat request holds one): chat requests are cheap coroutines.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "4000"))
# Seconds in-flight requests get to finish on a graceful stop or reload (a streamed chat can take a while).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "70"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
keepalive = 5
# Longest request line gunicorn accepts (its maximum; the default 4094 refuses with a bare 414 a GET whose
# query names a 100-character plugin in 4-byte UTF-8, percent-encoded).
limit_request_line = int(os.environ.get("GUNICORN_LIMIT_REQUEST_LINE", "8190"))
# gunicorn's runtime control socket (`gunicornc`) is off unless GUNICORN_CONTROL_SOCKET names a path: its default
# path is shared by every master of the user, so two instances on one machine would take it from each other.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()

# Reloads without a pause (`HUP`): old workers serve until the new ones do; new workers warm up first.
from core.graceful_reload import on_reload, post_worker_init, pre_fork  # noqa: E402,F401

# /metrics covers every worker (spec §13.5): one prometheus_client multiprocess directory per instance, set and
# emptied here in the master before any worker imports prometheus_client (core.metrics_export).
from core.metrics_export import configure_multiprocess_dir, flush_metrics, mark_worker_dead  # noqa: E402

configure_multiprocess_dir()


def child_exit(server, worker):
    mark_worker_dead(worker.pid)


def worker_exit(server, worker):
    flush_metrics()  # in the worker, on its way out: the metric updates it buffered reach its files
