import os

import django

from maimconfig.startup import require_secret_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maimconfig.settings.base")

django.setup(set_prefix=False)

from core.handlers import ServiceWSGIHandler  # noqa: E402 - needs the app registry

application = ServiceWSGIHandler()  # Django's WSGI handler without a transaction on safe methods
require_secret_key()

from apikeys.usage import serve_flusher  # noqa: E402

serve_flusher()  # this worker writes pending uses to the database (apikeys.usage) and flushes at exit
