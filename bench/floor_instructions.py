"""Django's per-request floor in instructions (`make bench-floor`): run under valgrind's callgrind by
`bench/run_floor_bench.sh`, which subtracts a run of `0` requests from a run of N (the same start-up in
both) and divides by N.

The request is the sync lane's: `GET /?via=django` (the root route with a query string, which the
operational fast lane leaves to Django), built as `core.lanes.SyncLane` builds it and answered by the
service's WSGI handler in a thread prepared as a sync-lane thread is. Instructions, unlike seconds, do not
move with the load of a shared machine: this is the figure to compare changes to Django's request cycle
with (issue 11). Metric updates are buffered as in a gunicorn worker.

    python bench/floor_instructions.py N
"""

import os
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="maimconfig-floor-metrics-"))

from maimconfig.asgi import application  # noqa: E402,F401 - sets Django up as a worker does

from core.handlers import ServiceWSGIHandler, prepare_thread  # noqa: E402
from core.lanes import _wsgi_environ  # noqa: E402

WARM_UP = 200
SCOPE = {
    "type": "http", "method": "GET", "path": "/", "query_string": b"via=django", "root_path": "",
    "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
    "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000), "scheme": "http", "http_version": "1.1",
}


def _serve(handler, count: int) -> None:
    prepare_thread()
    for _ in range(count):
        result = handler(_wsgi_environ(SCOPE, b""), lambda status, headers, exc_info=None: None)
        b"".join(result)
        result.close()


def main() -> None:
    count = WARM_UP + int(sys.argv[1])
    thread = threading.Thread(target=_serve, args=(ServiceWSGIHandler(), count))
    thread.start()
    thread.join()


if __name__ == "__main__":
    main()
