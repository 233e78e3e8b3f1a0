# MaimConfig service image, built in two stages:
#   builder  python:3.11-slim + a C compiler and the MariaDB client headers: builds mysqlclient (and any other
#            wheel without a binary) into a virtual environment from requirements.txt (runtime packages only;
#            test tools live in requirements-test.txt and never enter the image).
#   runtime  python:3.11-slim + the MariaDB client library only: the virtual environment copied from the
#            builder, no compiler, no headers, no test tools; a non-root user; static files collected at build.
# The first start on an empty database creates the operator `admin` and prints its password and token once
# (like `make run`); later starts print nothing. The command is the entry point `make run` uses.

FROM python:3.11-slim AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential pkg-config default-libmysqlclient-dev \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt


FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=maimconfig.settings.base \
    GUNICORN_BIND=0.0.0.0:8000

# libmariadb3: the client library mysqlclient was linked against in the builder; curl: the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmariadb3 curl \
    && rm -rf /var/lib/apt/lists/*

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY manage.py gunicorn.conf.py /app/
COPY maimconfig /app/maimconfig
COPY core /app/core
COPY console /app/console
COPY catalogue /app/catalogue
COPY tenants /app/tenants
COPY agents /app/agents
COPY apikeys /app/apikeys
COPY activity /app/activity
COPY plugins /app/plugins
COPY chat /app/chat
COPY metering /app/metering
COPY audit /app/audit
COPY readcache /app/readcache
COPY config /app/config
COPY locale /app/locale

RUN SECRET_KEY=build-only python manage.py collectstatic --noinput -v0 \
    && useradd --create-home --uid 10001 maimconfig \
    && mkdir -p /app/data && chown -R maimconfig /app/data

USER maimconfig
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8000/health || exit 1

# Migrations (idempotent), the first operator on an empty database, then the same server `make run` starts.
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py ensure_first_operator && exec gunicorn -c gunicorn.conf.py"]
