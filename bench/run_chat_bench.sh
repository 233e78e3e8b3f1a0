#!/usr/bin/env bash
# Chat-lane benchmark (`make bench-chat`, issue 10): the default serving configuration (gunicorn.conf.py, the
# ASGI lane dispatcher) on MariaDB + Redis, a slow upstream on loopback (bench/chat_slow_upstream.py: answers
# after 5 s; streams 10 chunks over 5 s), BENCH_CHATS chat requests in flight at once while validate-api-key
# and agent-key heartbeats run at BENCH_BOT_RATE req/s each (bench/chat_load.py).
# Targets: >= 99.9 % answered correctly, chat p99 <= 7 s, validate/heartbeat p99 <= 50 ms with no errors,
# MariaDB connections of the service <= 40, total RSS <= 1.5 GiB.
#
# Environment (all optional):
#   BENCH_DATABASE_URL  default mysql://root@127.0.0.1:3306/maimconfig_bench_chat (created if missing)
#   BENCH_CACHE_URL     default redis://127.0.0.1:6379/1        BENCH_PORT (8207)  BENCH_UPSTREAM_PORT (8208)
#   BENCH_CHATS (1000)  BENCH_BOT_RATE (50)  BENCH_TENANTS (8)  BENCH_AGENTS_PER_TENANT (5)
#   GUNICORN_WORKERS, MAIMCONFIG_SYNC_THREADS, MAIMCONFIG_CHAT_DB_THREADS: the serving defaults unless set
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
GUNICORN=${GUNICORN:-.venv/bin/gunicorn}
PORT=${BENCH_PORT:-8207}
UPSTREAM_PORT=${BENCH_UPSTREAM_PORT:-8208}

export DATABASE_URL=${BENCH_DATABASE_URL:-mysql://root@127.0.0.1:3306/maimconfig_bench_chat}
export CACHE_URL=${BENCH_CACHE_URL:-redis://127.0.0.1:6379/1}
export SECRET_KEY=${SECRET_KEY:-bench-chat-not-secret} DEBUG=0 LOG_LEVEL=WARNING
export MAIMCONFIG_AUTH_THROTTLE_RATE=1000000000/min   # the per-IP throttle would stop a one-IP benchmark
export MAIMCONFIG_LLM_ALLOWED_HOSTS=127.0.0.1        # the slow upstream listens on loopback
export GUNICORN_BIND=127.0.0.1:$PORT
unset GUNICORN_ACCESSLOG GUNICORN_THREADS

DB_NAME=""
if [[ $DATABASE_URL == mysql://* ]]; then
  DB_NAME=$("$PY" -c 'import os, urllib.parse as u; print(u.urlparse(os.environ["DATABASE_URL"]).path.lstrip("/"))')
  mariadb -h 127.0.0.1 -u root -e \
    "CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
fi
"$PY" manage.py migrate --noinput -v0

WORK=$(mktemp -d)
GPID="" UPID=""
trap 'kill $GPID $UPID 2>/dev/null; wait $GPID 2>/dev/null || true; rm -rf "$WORK"' EXIT
export BENCH_UPSTREAM_LOG="$WORK/arrivals.txt"  # when each chat reached the upstream (chat_load.py reports it)
"$PY" bench/chat_slow_upstream.py "$UPSTREAM_PORT" >"$WORK/upstream.log" 2>&1 &
UPID=$!
"$PY" bench/chat_bench_setup.py "http://127.0.0.1:$UPSTREAM_PORT/v1" "${BENCH_TENANTS:-8}" \
  "${BENCH_AGENTS_PER_TENANT:-5}" > "$WORK/agents.txt"

ulimit -n 65536 2>/dev/null || ulimit -n 8192 2>/dev/null || true
"$GUNICORN" -c gunicorn.conf.py >"$WORK/gunicorn.log" 2>&1 &
GPID=$!
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null
# /health answers as soon as the first worker serves; the others may still be warming up and starting their
# chat processes. The benchmark measures a running service, not its start-up: give every worker time to start.
sleep "${BENCH_SETTLE_SECONDS:-3}"

echo "serving: gunicorn.conf.py defaults (workers=${GUNICORN_WORKERS:-min(cpus,3)}); database ${DATABASE_URL%%:*}; cache ${CACHE_URL%%:*}"
"$PY" bench/chat_load.py "http://127.0.0.1:$PORT" "$WORK/agents.txt" "$GPID" "$DB_NAME" "$UPID"
if grep -qi "error\|traceback" "$WORK/gunicorn.log"; then
  echo "--- server log (errors) ---"; grep -i -m 20 "error\|traceback" "$WORK/gunicorn.log" || true
fi
