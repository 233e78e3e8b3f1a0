"""The ASGI application every gunicorn worker serves (`gunicorn.conf.py`): the lane dispatcher of
`core.lanes` (chat lane, fast lane, and Django's WSGI handler in a bounded thread pool).

One process-wide adjustment:

* **redis-py's library version** is looked up once: redis-py 8 reads its package metadata from disk
  (`importlib.metadata`, an e-mail header parse) for every new connection, and a burst of bot requests
  that grows the fast lane's connection pool did that on the event loop dozens of times.
"""

import functools
import os

import django

from core.metrics_export import use_cached_pid
from maimconfig.startup import require_secret_key

try:
    import redis.utils as _redis_utils
except ImportError:  # pragma: no cover - redis is in requirements.txt
    pass
else:
    _redis_utils.get_lib_version = functools.cache(_redis_utils.get_lib_version)

use_cached_pid()  # before Django creates any metric

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maimconfig.settings.base")
django.setup(set_prefix=False)

from core.lanes import build_application  # noqa: E402 - needs the app registry

application = build_application()
require_secret_key()

from core import background  # noqa: E402

background.serve()  # this worker's write-behind thread (pending key uses, queued usage-log entries)
