"""Test settings: only what makes the suite faster or deterministic. Everything else is base.py."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
# Never read a settings file (a developer's `.env` with MAIMCONFIG_AUTH_MODE=open would change what the suite
# tests). Forced, not defaulted, and inherited by the servers and commands the tests start in subprocesses.
os.environ["MAIMCONFIG_ENV_FILE"] = ""

from maimconfig.settings.base import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://maimconfig-test")}  # noqa: F405
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
