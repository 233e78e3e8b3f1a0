import os

import django

from maimconfig.startup import require_secret_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maimconfig.settings.base")

django.setup(set_prefix=False)

from core.handlers import ServiceWSGIHandler  # noqa: E402 - needs the app registry

application = ServiceWSGIHandler()  # Django's WSGI handler without a transaction on safe methods
require_secret_key()

from core import background  # noqa: E402

background.serve()  # this worker's write-behind thread (pending key uses, queued usage-log entries)
