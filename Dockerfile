# MaimConfig service image: python:3.11-slim, mysqlclient built against Debian's client library,
# a non-root user, static files collected at build time, gunicorn with the repository's config.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=maimconfig.settings.base \
    GUNICORN_BIND=0.0.0.0:8000

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config default-libmysqlclient-dev curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt /app/requirements.txt
RUN pip install -r /app/requirements.txt

COPY manage.py gunicorn.conf.py /app/
COPY maimconfig /app/maimconfig
COPY core /app/core
COPY catalogue /app/catalogue
COPY tenants /app/tenants
COPY agents /app/agents
COPY apikeys /app/apikeys
COPY activity /app/activity
COPY plugins /app/plugins
COPY chat /app/chat
COPY config /app/config

RUN SECRET_KEY=build-only python manage.py collectstatic --noinput -v0 \
    && useradd --create-home --uid 10001 maimconfig \
    && mkdir -p /app/data && chown -R maimconfig /app/data

USER maimconfig
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/health || exit 1

# Migrations run first (idempotent), then the same entry point `make run` uses.
CMD ["sh", "-c", "python manage.py migrate --noinput && exec gunicorn -c gunicorn.conf.py maimconfig.wsgi:application"]
