"""gunicorn settings for MaimConfig (`make run`, the Dockerfile and the benchmarks use this file).

Threaded workers (`gthread`) so that a streaming chat response occupies one thread, not a whole
worker: other requests keep being served while streams are open. Every value can be overridden with
the environment variables named below.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
