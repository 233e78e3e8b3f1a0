#!/usr/bin/env bash
# Bounded schemathesis run against a live server on loopback (issue 12, "Fuzzing in CI"; `make fuzz`):
# a scratch SQLite database, gunicorn with the repository's config, then one run per credential kind
# (operator token, agent key). Checks: no 5xx, every status documented, every response on its schema and
# content type. Each run has a time budget (FUZZ_SECONDS, default 75 s per credential kind).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
SECONDS_PER_RUN=${FUZZ_SECONDS:-75}
WORK=$(mktemp -d)
PORT=$($VENV/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export DJANGO_SETTINGS_MODULE=maimconfig.settings.base MAIMCONFIG_ENV_FILE= SECRET_KEY=fuzz-$RANDOM-$RANDOM-$RANDOM \
  DATABASE_URL=sqlite:///$WORK/fuzz.sqlite3 CACHE_URL=locmemcache://fuzz ALLOWED_HOSTS=127.0.0.1 \
  GUNICORN_BIND=127.0.0.1:$PORT GUNICORN_WORKERS=1 MAIMCONFIG_METRICS_DIR=$WORK/metrics \
  MAIMCONFIG_AUTH_THROTTLE_RATE=1000000/min LOG_LEVEL=ERROR
SEED=$($VENV/bin/python tests/fuzz/fuzz_setup.py)
field() { echo "$SEED" | $VENV/bin/python -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
OPERATOR=$(field operator_token); AGENT=$(field agent_key)

$VENV/bin/gunicorn -c gunicorn.conf.py >"$WORK/server.log" 2>&1 &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.5
done

status=0
for credential in "Token $OPERATOR" "Bearer $AGENT"; do
  echo "== schemathesis as ${credential%% *} (${SECONDS_PER_RUN}s budget) =="
  $VENV/bin/st run "http://127.0.0.1:$PORT/openapi.json" \
    --header "Authorization: $credential" \
    --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "${FUZZ_MAX_EXAMPLES:-25}" --max-time "$SECONDS_PER_RUN" --workers 1 \
    --request-timeout 20 --seed "${FUZZ_SEED:-12}" --continue-on-failure --no-color \
    || status=1
done
if [ "$status" != 0 ]; then
  echo "--- server log (last 60 lines) ---"; tail -60 "$WORK/server.log"
fi
exit "$status"
