"""Settings for MaimConfig, read from the environment (django-environ).

Every setting an operator may change is an environment variable documented in `.env.example` and in the
README's configuration table. There is no production settings module: production differences come from
the environment. `maimconfig.settings.test` only speeds the test suite up.
"""

import os
import secrets
from pathlib import Path

import environ
from corsheaders.defaults import default_headers as corsheaders_default_headers
from django.core.exceptions import ImproperlyConfigured

from maimconfig.version import VERSION

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = BASE_DIR / "data"

env = environ.Env()
# The settings file read at start-up (variables already set in the environment win); relative paths are
# resolved against the repository root, and an empty value reads none. The test settings set it empty, so
# the suite never depends on a developer's `.env` (`make run` writes one).
_env_file_name = os.environ.get("MAIMCONFIG_ENV_FILE", ".env")
if _env_file_name:
    _env_file = Path(_env_file_name) if Path(_env_file_name).is_absolute() else BASE_DIR / _env_file_name
    if _env_file.exists():
        environ.Env.read_env(str(_env_file))

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
# Without a key (and DEBUG off) the service refuses to start: `maimconfig.startup.require_secret_key` stops
# the WSGI/ASGI application and every manage.py command that could serve, sign or encrypt. Commands that
# only inspect the code (makemigrations --check, check, collectstatic, spectacular) still run, on a
# throw-away key that nothing is ever signed or encrypted with.
# The `.env.example` placeholder counts as missing: a copied example must not run in production with a
# published key (issue 12, item 17).
SECRET_KEY_PLACEHOLDERS = frozenset({"change-me", "changeme", "change_me"})
SECRET_KEY_MISSING = (not SECRET_KEY or SECRET_KEY.strip().lower() in SECRET_KEY_PLACEHOLDERS) and not DEBUG
if not SECRET_KEY or SECRET_KEY_MISSING:
    SECRET_KEY = (
        "unset-" + secrets.token_hex(32) if SECRET_KEY_MISSING
        else "dev-only-insecure-secret-key-do-not-use-in-production"  # noqa: S105
    )
# Django's own rotation list (signatures, sessions); provider keys encrypted under a key derived from one of
# these still decrypt (agents.configdoc.secrets).
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

# `testserver` (Django's test client host) is not a production default: the test runner adds it itself.
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])

# --- Product settings -----------------------------------------------------------------------------
MAIMCONFIG_VERSION = VERSION
MAIMCONFIG_AUTH_MODE = env.str("MAIMCONFIG_AUTH_MODE", default="operator").strip().lower()
if MAIMCONFIG_AUTH_MODE not in ("operator", "open"):
    raise ImproperlyConfigured(
        f"MAIMCONFIG_AUTH_MODE must be 'operator' or 'open', not {MAIMCONFIG_AUTH_MODE!r}."
    )
MAIMCONFIG_MAX_BODY_BYTES = env.int("MAIMCONFIG_MAX_BODY_BYTES", default=1024 * 1024)
# Spec §16: domain-code errors answer HTTP 200 (real status in X-MaimConfig-Status), as the original did.
MAIMCONFIG_LEGACY_ERROR_STATUS = env.bool("MAIMCONFIG_LEGACY_ERROR_STATUS", default=False)
MAIMCONFIG_AUTH_THROTTLE_RATE = env.str("MAIMCONFIG_AUTH_THROTTLE_RATE", default="6000/min")
MAIMCONFIG_NUM_PROXIES = env.int("MAIMCONFIG_NUM_PROXIES", default=0)
MAIMCONFIG_NEW_AGENT_TTL_SECONDS = env.int("MAIMCONFIG_NEW_AGENT_TTL_SECONDS", default=43200)
MAIMCONFIG_CHAT_BATCH_MAX_ITEMS = env.int("MAIMCONFIG_CHAT_BATCH_MAX_ITEMS", default=20)
MAIMCONFIG_CHAT_BATCH_CONCURRENCY = env.int("MAIMCONFIG_CHAT_BATCH_CONCURRENCY", default=4)
MAIMCONFIG_CHAT_TIMEOUT_SECONDS = env.float("MAIMCONFIG_CHAT_TIMEOUT_SECONDS", default=60.0)
# Chat lane (api.md §10.7, §11.2; README "Serving model"): in-flight limits, the max_tokens cap, loopback or
# private hosts a provider base_url may name, and the serving pools of each worker (sync-lane threads and
# the chat lane's database threads: a worker holds at most their sum of database connections).
MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_KEY = env.int("MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_KEY", default=32)
MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_TENANT = env.int("MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_TENANT", default=256)
MAIMCONFIG_CHAT_MAX_TOKENS = env.int("MAIMCONFIG_CHAT_MAX_TOKENS", default=16384)
MAIMCONFIG_LLM_ALLOWED_HOSTS = env.list("MAIMCONFIG_LLM_ALLOWED_HOSTS", default=[])
MAIMCONFIG_SYNC_THREADS = env.int("MAIMCONFIG_SYNC_THREADS", default=6)
MAIMCONFIG_CHAT_DB_THREADS = env.int("MAIMCONFIG_CHAT_DB_THREADS", default=4)
# Chat requests per worker running their first database burst at once (chat.aio's admission gate).
MAIMCONFIG_CHAT_ADMISSION = env.int("MAIMCONFIG_CHAT_ADMISSION", default=2)
# Each gunicorn worker hands its chat connections to a chat process of its own at a lower CPU priority
# (core/chatproc.py); off: the worker serves chat itself.
MAIMCONFIG_CHAT_PROCESS = env.bool("MAIMCONFIG_CHAT_PROCESS", default=True)
# Threads per worker running the fast lane's heartbeat upserts (activity/fastlane.py).
MAIMCONFIG_FAST_HEARTBEAT_THREADS = env.int("MAIMCONFIG_FAST_HEARTBEAT_THREADS", default=2)
# Seconds a passing /health check is reused by the probes that follow (core/opslane.py); 0: every probe checks.
MAIMCONFIG_HEALTH_CACHE_SECONDS = env.float("MAIMCONFIG_HEALTH_CACHE_SECONDS", default=1.0)
MAIMCONFIG_SECRETS_KEY = env.str("MAIMCONFIG_SECRETS_KEY", default="")
# When set, /metrics answers only `Authorization: Bearer <this token>` (spec §13.5; core.metrics_export).
MAIMCONFIG_METRICS_TOKEN = env.str("MAIMCONFIG_METRICS_TOKEN", default="")
# Admin login throttle (core.login_throttle): failed logins allowed per username and per client IP in each window.
MAIMCONFIG_ADMIN_LOGIN_MAX_FAILURES_PER_USER = env.int("MAIMCONFIG_ADMIN_LOGIN_MAX_FAILURES_PER_USER", default=5)
MAIMCONFIG_ADMIN_LOGIN_MAX_FAILURES_PER_IP = env.int("MAIMCONFIG_ADMIN_LOGIN_MAX_FAILURES_PER_IP", default=20)
MAIMCONFIG_ADMIN_LOGIN_WINDOW_SECONDS = env.int("MAIMCONFIG_ADMIN_LOGIN_WINDOW_SECONDS", default=900)
# Earlier values of MAIMCONFIG_SECRETS_KEY, still accepted for decryption after a key change (comma-separated);
# `manage.py reencrypt_provider_keys` then rewrites every stored provider key under the current key.
MAIMCONFIG_SECRETS_KEY_FALLBACKS = env.list("MAIMCONFIG_SECRETS_KEY_FALLBACKS", default=[])
# Audit events older than this many days are deleted by `manage.py purge_audit_events` (issue 17).
MAIMCONFIG_AUDIT_RETENTION_DAYS = env.int("MAIMCONFIG_AUDIT_RETENTION_DAYS", default=365)
MAIMBOT_MODEL_CONFIG_PATH = env.str("MAIMBOT_MODEL_CONFIG_PATH", default="config/model_config.toml")
MAIMBOT_BOT_CONFIG_TEMPLATE_PATH = env.str(
    "MAIMBOT_BOT_CONFIG_TEMPLATE_PATH", default="config/bot_config.toml"
)

# --- Applications -----------------------------------------------------------------------------------
INSTALLED_APPS = [
    "console",  # before the admin: its templates (branding, dashboard) override the admin's
    "console.admin_config.ConsoleAdminConfig",  # django.contrib.admin with the console's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "django_prometheus",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "catalogue",
    "tenants",
    "agents",
    "apikeys",
    "activity",
    "plugins",
    "chat",
    "metering",
    "audit",
    "readcache",  # stands on apikeys; no app imports it
]

MIDDLEWARE = [
    # Outermost: stores the answer as sent, for the fast lane (readcache; with Redis only).
    "readcache.middleware.ReadCacheMiddleware",
    "core.http_metrics.PrometheusBeforeMiddleware",
    "core.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # The language of the admin and of API `message`/`error` (spec §1.3): the `django_language` cookie set
    # by the admin's switcher, else Accept-Language (zh, zh-CN, zh-Hans, zh-SG -> zh-hans), else English.
    # Before the body guard, so a refused body is answered in the caller's language too.
    "django.middleware.locale.LocaleMiddleware",
    "core.middleware.ApiBodyGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.login_throttle.AdminLoginThrottleMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apikeys.middleware.AgentKeyUsageMiddleware",
    "core.middleware.ApiExceptionMiddleware",
    "core.http_metrics.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "maimconfig.urls"
WSGI_APPLICATION = "maimconfig.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------
DATA_DIR.mkdir(exist_ok=True)
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'maimconfig.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = True
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    # Django's backend, with a health check that trusts a connection in steady use (core/db/mysql/base.py).
    DATABASES["default"]["ENGINE"] = "core.db.mysql"
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options.setdefault("charset", "utf8mb4")
    _options.setdefault("init_command", "SET sql_mode='STRICT_TRANS_TABLES', time_zone='+00:00'")
    _options.setdefault("isolation_level", "read committed")
    _options.setdefault("connect_timeout", 2)
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several gunicorn processes write to one file: IMMEDIATE transactions take the write lock up front,
    # so a busy database makes a writer wait (up to `timeout`) instead of failing with "database is
    # locked"; WAL lets readers run beside the writer.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options.setdefault("timeout", 20)
    _options.setdefault("transaction_mode", "IMMEDIATE")
    _options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------------------
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://maimconfig")}

# django-redis' default (keep the pooled connections at the end of a request), named for the same reason as
# CORS_URLS_REGEX: django-redis reads it when Django closes the caches at the end of every request.
DJANGO_REDIS_CLOSE_CONNECTION = False
if CACHES["default"]["BACKEND"].startswith("django_redis."):
    # Short socket timeouts: an unreachable Redis must fail fast so the bot lane falls back to the database
    # (apikeys.redisstate); a healthy Redis answers in well under a millisecond.
    _cache_options = CACHES["default"].setdefault("OPTIONS", {})
    _cache_options.setdefault("SOCKET_CONNECT_TIMEOUT", env.float("REDIS_CONNECT_TIMEOUT", default=0.5))
    _cache_options.setdefault("SOCKET_TIMEOUT", env.float("REDIS_TIMEOUT", default=0.5))
# While Redis is unreachable, per-key limits and the /auth throttle `allow` (default) or `deny` requests.
MAIMCONFIG_RATELIMIT_ON_CACHE_FAILURE = env.str("MAIMCONFIG_RATELIMIT_ON_CACHE_FAILURE", default="allow").strip().lower()
if MAIMCONFIG_RATELIMIT_ON_CACHE_FAILURE not in ("allow", "deny"):
    raise ImproperlyConfigured("MAIMCONFIG_RATELIMIT_ON_CACHE_FAILURE must be 'allow' or 'deny', "
                               f"not {MAIMCONFIG_RATELIMIT_ON_CACHE_FAILURE!r}.")
# With Redis, uses counted there are written to the database at least this often (spec §1.15).
MAIMCONFIG_USAGE_FLUSH_SECONDS = env.float("MAIMCONFIG_USAGE_FLUSH_SECONDS", default=1.0)

# --- Auth -----------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
CSRF_FAILURE_VIEW = "core.views.csrf_failure"

# --- HTTPS behind a proxy (README "Security"; `manage.py check --deploy` is clean once these are set) ---------
# The header a TLS-terminating proxy sets, e.g. `X-Forwarded-Proto: https`. Only set it when the proxy always
# sets (or strips) that header: a client could otherwise claim HTTPS.
_proxy_ssl_header = env.str("SECURE_PROXY_SSL_HEADER", default="").strip()
if _proxy_ssl_header:
    _header_name, _, _header_value = _proxy_ssl_header.partition(":")
    if not _header_value.strip():
        raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must look like 'X-Forwarded-Proto: https'.")
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _header_name.strip().upper().replace("-", "_"), _header_value.strip())
# Origins allowed to POST the admin's forms when they differ from the Host (scheme included: https://admin.example).
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Load balancers and Prometheus often probe over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health/?$", r"^metrics/?$"]
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- I18N / time ----------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
# Operators and bots read English or Simplified Chinese; the catalogue is locale/zh_Hans (`make messages`).
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files (served by WhiteNoise, also under gunicorn) ---------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Django itself refuses bodies over this size; the API middleware answers 413 before that.
DATA_UPLOAD_MAX_MEMORY_SIZE = MAIMCONFIG_MAX_BODY_BYTES

# --- CORS -----------------------------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = env.list("MAIMCONFIG_CORS_ALLOWED_ORIGINS", default=[])
CORS_ALLOW_CREDENTIALS = "*" not in CORS_ALLOWED_ORIGINS
if "*" in CORS_ALLOWED_ORIGINS:
    CORS_ALLOWED_ORIGINS = []
    CORS_ALLOW_ALL_ORIGINS = True
CORS_EXPOSE_HEADERS = [
    "X-Request-ID",
    "X-MaimConfig-Status",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
]
# Request headers a browser client may send cross-origin besides django-cors-headers' defaults.
CORS_ALLOW_HEADERS = (*corsheaders_default_headers, "x-request-id", "x-maimconfig-legacy-errors")
# Every path (django-cors-headers' default), named here: the middleware reads it on every request, and an
# unset setting is a raised and caught AttributeError each time instead of a cached attribute.
CORS_URLS_REGEX = r"^.*$"

# --- REST framework -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apikeys.authentication.AgentKeyAuthentication",
        "core.authentication.OperatorTokenAuthentication",
        "core.authentication.OperatorSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.permissions.IsOperator"],
    "DEFAULT_RENDERER_CLASSES": ["core.renderers.EnvelopeJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.EnvelopePagination",
    "DEFAULT_METADATA_CLASS": "core.metadata.MinimalMetadata",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.negotiation.FirstRendererFallbackNegotiation",
    "EXCEPTION_HANDLER": "core.exception_handlers.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.schema.ApiAutoSchema",
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_RATES": {"auth": MAIMCONFIG_AUTH_THROTTLE_RATE},
    # 0 means "no proxy: the socket address is the client" (spec §1.14). DRF reads None as "trust the whole
    # X-Forwarded-For header", which let a client pick its own throttle identity (issue 12, item 2).
    "NUM_PROXIES": MAIMCONFIG_NUM_PROXIES,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "MaimConfig API",
    "DESCRIPTION": (
        "Control plane for MaiMBot: tenants, agents, agent configuration, API keys, heartbeats, "
        "plugin settings, usage log and chat. Every `/api` response is the nine-key envelope.\n\n"
        "Clients of the original MaimConfig: refusals with a domain code (`TENANT_*`, `AGENT_*`, `KEY_*`, "
        "`ACTIVITY_*`, `PLUGIN_*`, `CHAT_001`) answer HTTP 200 with `success: false` when the request sends "
        "`X-MaimConfig-Legacy-Errors: 1` (or the server sets `MAIMCONFIG_LEGACY_ERROR_STATUS`); the real "
        "status is then in the `X-MaimConfig-Status` response header. Every list also carries the "
        "original's `total`, `page`, `size` and `pages`."
    ),
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v[12]",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.add_error_responses",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ApiKeyStatusEnum": "apikeys.models.ApiKey.Status",
        "TenantStatusEnum": "tenants.models.Tenant.Status",
        "AgentStatusEnum": "agents.models.Agent.Status",
        "AgentConfigVersionSourceEnum": "agents.models.AgentConfigVersion.Source",
        "ApiKeyWritableStatusEnum": [("active", "active"), ("disabled", "disabled")],
    },
}

# --- Logging --------------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="json").lower()
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be 'json' or 'text', not {LOG_FORMAT!r}.")
# Repeated failures (WARNING and above) of one kind within this many seconds are summarised in one line
# instead of written one by one (core.logging.RepeatSummaryFilter); 0 writes every one.
MAIMCONFIG_LOG_REPEAT_WINDOW_SECONDS = env.float("MAIMCONFIG_LOG_REPEAT_WINDOW_SECONDS", default=10.0)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "core.logging.RequestIdFilter"},
        "repeat_summary": {"()": "core.logging.RepeatSummaryFilter", "window": MAIMCONFIG_LOG_REPEAT_WINDOW_SECONDS},
    },
    "formatters": {
        "json": {"()": "core.logging.JsonFormatter"},
        "text": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id", "repeat_summary"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
# A disallowed `Host` is the client's mistake (the answer is a 400): Django logs it at ERROR, we at WARNING.
LOGGING["filters"]["warning_level"] = {"()": "core.security.WarningLevelFilter"}
LOGGING["loggers"]["django.security.DisallowedHost"] = {
    "handlers": ["console"], "level": "WARNING", "propagate": False, "filters": ["warning_level"],
}
