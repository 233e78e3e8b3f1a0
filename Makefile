# MaimConfig: `make run` serves the service on SQLite; `make test` runs the test suite.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: run test test-mariadb lint install system-deps browser-deps bench-deps check-migrations bench-auth bench-activity bench-floor bench-inprocess bench-chat-inprocess bench-compare clean messages

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
	@# Chinese glyphs for the zh-CN screenshots of the console.
	@if ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei; \
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

# The access log on the console (one line per request); GUNICORN_ACCESSLOG= (empty) turns it off.
run: export GUNICORN_ACCESSLOG ?= -
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

# `manage.py check --deploy` in a production-like environment (HTTPS behind a proxy, secure cookies, HSTS):
# no warning may remain (README "Security"). The values are examples, not secrets.
# Bounded schemathesis run against a live server on loopback, with an operator token and an agent key
# (FUZZ_SECONDS per credential kind, default 75): no 5xx, every status documented, responses on schema.
.PHONY: fuzz
fuzz: install
	VENV=$(VENV) tests/fuzz/run.sh

.PHONY: check-deploy
check-deploy: install
	env DEBUG=false SECRET_KEY=ci-deploy-check-$$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n') \
	  ALLOWED_HOSTS=maimconfig.example SECURE_PROXY_SSL_HEADER='X-Forwarded-Proto: https' \
	  CSRF_TRUSTED_ORIGINS=https://maimconfig.example SECURE_SSL_REDIRECT=true SESSION_COOKIE_SECURE=true \
	  CSRF_COOKIE_SECURE=true SECURE_HSTS_SECONDS=31536000 SECURE_HSTS_INCLUDE_SUBDOMAINS=true \
	  SECURE_HSTS_PRELOAD=true $(PY) manage.py check --deploy --fail-level WARNING

# wrk, the load generator of the benchmarks (Debian's package), installed when missing.
bench-deps:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }

bench-auth: install bench-deps
	bench/run_auth_bench.sh

bench-activity: install bench-deps
	bench/run_activity_bench.sh

# The original and this project side by side in one run (issue 11; README "Side by side with the original"):
# start the original by hand, then `make bench-compare ORIGINAL_URL=http://127.0.0.1:8900 ORIGINAL_KEY=mmc_…`.
# Without ORIGINAL_URL only this project's side runs. BENCH_ROUNDS (3), BENCH_DURATION (8 s per figure).
bench-compare: install bench-deps
	ORIGINAL_URL="$(ORIGINAL_URL)" ORIGINAL_KEY="$(ORIGINAL_KEY)" bench/run_compare_bench.sh

# CPU time and SQL statements per request of the bot routes, in-process (no socket; robust on a busy box).
# Uses DATABASE_URL/CACHE_URL of the environment; BENCH_OPERATOR_TOKEN adds the operator routes.
bench-inprocess: install
	BENCH_N=$${BENCH_N:-300} $(PY) manage.py shell -c "$$(cat bench/inprocess.py)"

# Django's per-request floor in instructions (valgrind's callgrind; Debian's valgrind, installed when missing):
# deterministic, so a change to the request cycle is measured without the machine's noise. BENCH_N (1000).
bench-floor: install
	@command -v valgrind >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
	bench/run_floor_bench.sh

# Chat lane under load (issue 10): 1,000 chats in flight against a slow loopback upstream while key
# verification and heartbeats run at 50 req/s each; MariaDB + Redis (see bench/run_chat_bench.sh).
bench-chat: install
	bench/run_chat_bench.sh

# CPU time per chat request in-process (the ASGI app driven directly; an instant loopback upstream). Uses
# DATABASE_URL/CACHE_URL of the environment (migrated); BENCH_PROFILE=file writes a cProfile.
bench-chat-inprocess: install
	BENCH_N=$${BENCH_N:-300} $(PY) bench/chat_inprocess.py

# Extract every marked string into locale/zh_Hans/LC_MESSAGES/django.po (existing translations are kept,
# vanished ones dropped), then compile the .mo the service reads. Idempotent; both files are committed.
MESSAGES_IGNORE := --ignore='.venv/*' --ignore='staticfiles/*' --ignore='*/tests/*' --ignore='tests/*' \
	--ignore='bench/*' --ignore='data/*' --ignore='artifacts/*' --ignore='node_modules/*'
messages:
	SECRET_KEY=messages $(PY) manage.py console_texts -v0
	SECRET_KEY=messages $(PY) manage.py makemessages -l zh_Hans --no-obsolete --add-location=file $(MESSAGES_IGNORE)
	SECRET_KEY=messages $(PY) manage.py compilemessages -l zh_Hans --ignore='.venv/*'

# Fault injection under load with private MariaDB and Redis (bench/chaos.py; README "Operations").
.PHONY: chaos
chaos: install
	$(PY) bench/chaos.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
