# MaimConfig: `make run` serves the service on SQLite; `make test` runs the test suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: run test test-mariadb lint install system-deps browser-deps check-migrations bench-auth bench-activity clean

# System libraries mysqlclient compiles against (Debian/Ubuntu); installed only when missing.
system-deps:
	@if ! pkg-config --exists mysqlclient 2>/dev/null && ! pkg-config --exists libmariadb 2>/dev/null; then \
		echo "Installing default-libmysqlclient-dev and pkg-config (needed by mysqlclient)"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			default-libmysqlclient-dev pkg-config build-essential; \
	fi

# Debian's Chromium for the admin browser test (Playwright drives it; no browser download).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

$(VENV)/.installed: requirements.txt requirements-test.txt | system-deps
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements-test.txt
	@touch $@

install: system-deps $(VENV)/.installed

# A local .env with a random SECRET_KEY, created once (never committed).
.env:
	@sed "s|^SECRET_KEY=.*|SECRET_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')|" .env.example > .env
	@echo "Created .env with a random SECRET_KEY"

run: install .env
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py ensure_first_operator
	$(PY) manage.py collectstatic --noinput -v0
	$(VENV)/bin/gunicorn -c gunicorn.conf.py

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test-mariadb: install
	DATABASE_URL=$${DATABASE_URL:-mysql://root@127.0.0.1:3306/maimconfig} $(VENV)/bin/pytest --create-db $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .

check-migrations: install
	SECRET_KEY=check $(PY) manage.py makemigrations --check --dry-run

bench-auth: install
	bench/run_auth_bench.sh

bench-activity: install
	bench/run_activity_bench.sh

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
