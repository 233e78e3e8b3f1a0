import os

from django.core.wsgi import get_wsgi_application

from maimconfig.startup import require_secret_key

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maimconfig.settings.base")

application = get_wsgi_application()
require_secret_key()

from apikeys.usage import serve_flusher  # noqa: E402

serve_flusher()  # this worker writes pending uses to the database (apikeys.usage) and flushes at exit
