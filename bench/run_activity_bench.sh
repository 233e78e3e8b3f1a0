#!/usr/bin/env bash
# Heartbeat throughput (issue 3): gunicorn against MariaDB on loopback, driven by wrk.
#
# In ONE run against ONE server it measures
#   1. a trivial endpoint through Django (GET /?via=django: no database, no credential; plain GET / is answered
#      on the event loop by core/opslane.py, the query string leaves it to Django) - Django's ceiling,
#   2. PUT /api/v2/agent-activity with an operator token,
#   3. PUT /api/v2/agent-activity with agent keys (key verification + use count + upsert),
# rotating over BENCH_AGENTS agents (a fleet of bots, each heartbeating its own row; BENCH_AGENTS=1 is
# the worst case: every request updates the same row). It reports req/s, the ratio to the trivial rate
# and the targets (>= half the trivial rate and >= 1200 req/s). Exit status 0 when the operator-token
# heartbeat meets both targets and every agent has exactly one activity row.
#
# Environment (all optional):
#   BENCH_DATABASE_URL  default mysql://root@127.0.0.1:3306/mc_activity_bench (created if missing)
#   CACHE_URL           default redis://127.0.0.1:6379/3
#   GUNICORN_BIND       default 127.0.0.1:8301
#   GUNICORN_WORKERS    default: gunicorn.conf.py's (min(CPUs, 3));  MAIMCONFIG_SYNC_THREADS default 6 (the service default)
#   BENCH_AGENTS        agents heartbeating (default 100)
#   BENCH_DURATION      seconds per measurement (default 5);  BENCH_ROUNDS interleaved rounds (default 3)
#   BENCH_CONNECTIONS   wrk connections (default 32);  BENCH_THREADS wrk threads (default 2)
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${VENV:-.venv}/bin/python
GUNICORN=${VENV:-.venv}/bin/gunicorn
WRK=${WRK:-/usr/bin/wrk}

export DATABASE_URL=${BENCH_DATABASE_URL:-mysql://root@127.0.0.1:3306/mc_activity_bench}
export CACHE_URL=${CACHE_URL:-redis://127.0.0.1:6379/3}
export SECRET_KEY=${SECRET_KEY:-bench-$(date +%s)-not-secret}
export DEBUG=false LOG_LEVEL=${LOG_LEVEL:-WARNING} DB_CONN_MAX_AGE=${DB_CONN_MAX_AGE:-600}
export MAIMCONFIG_AUTH_MODE=operator
export DJANGO_SETTINGS_MODULE=maimconfig.settings.base
export GUNICORN_BIND=${GUNICORN_BIND:-127.0.0.1:8301}
CPUS=$(nproc)
export GUNICORN_WORKERS=${GUNICORN_WORKERS:-$(( CPUS < 3 ? CPUS : 3 ))}
export MAIMCONFIG_SYNC_THREADS=${MAIMCONFIG_SYNC_THREADS:-6}
AGENTS=${BENCH_AGENTS:-100}
DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
WRK_THREADS=${BENCH_THREADS:-2}
BASE="http://${GUNICORN_BIND}"

[ -x "$WRK" ] || { echo "wrk not found at $WRK (apt-get install wrk)" >&2; exit 2; }

# Create the bench database if it is MariaDB/MySQL and missing.
if [[ "$DATABASE_URL" == mysql://* ]]; then
  DB_NAME=${DATABASE_URL##*/}; DB_NAME=${DB_NAME%%\?*}
  DB_HOSTPORT=${DATABASE_URL#mysql://}; DB_HOSTPORT=${DB_HOSTPORT#*@}; DB_HOSTPORT=${DB_HOSTPORT%%/*}
  DB_USER=${DATABASE_URL#mysql://}; DB_USER=${DB_USER%%@*}; DB_USER=${DB_USER%%:*}
  DB_HOST=${DB_HOSTPORT%%:*}; DB_PORT=3306; [[ "$DB_HOSTPORT" == *:* ]] && DB_PORT=${DB_HOSTPORT##*:}
  mysql -u"$DB_USER" -h"$DB_HOST" -P"$DB_PORT" \
    -e "CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
fi

WORK=$(mktemp -d)
GUNICORN_PID=""
cleanup() {
  if [ -n "$GUNICORN_PID" ] && kill -0 "$GUNICORN_PID" 2>/dev/null; then
    kill "$GUNICORN_PID" 2>/dev/null || true
    wait "$GUNICORN_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== migrate ($DATABASE_URL)"
$PY manage.py migrate --noinput -v0
$PY bench/activity_bench_setup.py "$AGENTS" >"$WORK/fixture.txt"
TOKEN=$(head -n1 "$WORK/fixture.txt")
tail -n +2 "$WORK/fixture.txt" >"$WORK/agents.txt"
read -r TENANT AGENT KEY <"$WORK/agents.txt"

echo "== gunicorn on $GUNICORN_BIND: $GUNICORN_WORKERS ASGI workers (lane dispatcher, $MAIMCONFIG_SYNC_THREADS sync-lane threads each), $CPUS CPUs"
$GUNICORN -c gunicorn.conf.py >"$WORK/gunicorn.log" 2>&1 &
GUNICORN_PID=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$BASE/" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "$BASE/" || { echo "gunicorn did not start:" >&2; cat "$WORK/gunicorn.log" >&2; exit 1; }

# Sanity: one heartbeat of each kind must succeed before measuring.
BODY="{\"tenant_id\":\"$TENANT\",\"agent_id\":\"$AGENT\",\"ttl_seconds\":300}"
for AUTH in "Token $TOKEN" "Bearer $KEY"; do
  code=$(curl -sS -o "$WORK/sanity.json" -w '%{http_code}' -X PUT "$BASE/api/v2/agent-activity" \
    -H "Authorization: $AUTH" -H 'Content-Type: application/json' -d "$BODY")
  [ "$code" = 200 ] || { echo "heartbeat sanity check failed ($code): $(cat "$WORK/sanity.json")" >&2; exit 1; }
done

# wrk scripts: each request heartbeats the next agent of the fleet (operator token, or that agent's key).
lua_put() {  # $1 = "operator" or "key"
  echo 'local agents = {'
  while read -r tenant agent key; do
    printf '  {"%s", "%s", "%s"},\n' "$tenant" "$agent" "$key"
  done <"$WORK/agents.txt"
  cat <<LUA
}
local mode, token, i = "$1", "$TOKEN", 0
request = function()
  i = i % #agents + 1
  local a = agents[i]
  local auth = (mode == "operator") and ("Token " .. token) or ("Bearer " .. a[3])
  local body = '{"tenant_id":"' .. a[1] .. '","agent_id":"' .. a[2] .. '","ttl_seconds":300}'
  return wrk.format("PUT", "/api/v2/agent-activity",
                    {["Content-Type"] = "application/json", ["Authorization"] = auth}, body)
end
LUA
}
lua_put operator >"$WORK/put_operator.lua"
lua_put key >"$WORK/put_key.lua"

source bench/cpu_ticks.sh

run_wrk() {  # $1 = label, $2 = path, $3 = optional lua script; prints req/s on stdout
  local args=(-t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency)
  [ -n "${3:-}" ] && args+=(-s "$3")
  local out="$WORK/wrk-$RANDOM.txt" before after
  before=$(cpu_ticks "$GUNICORN_PID")
  "$WRK" "${args[@]}" "$BASE$2" >"$out" 2>&1
  after=$(cpu_ticks "$GUNICORN_PID")
  local rps errors p50 p99 total cpu
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  total=$(awk '/requests in/ {print $1}' "$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  p50=$(awk '$1 == "50%" {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  # CPU milliseconds per request spent in the app (gunicorn) and in the database server: a figure
  # that, unlike req/s, hardly depends on what else runs on the machine.
  cpu=$(awk -v b="$before" -v a="$after" -v n="${total:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    split(b, x, " "); split(a, y, " ");
    if (n > 0) printf "app %.3f + db %.3f CPU-ms/req", (y[1]-x[1])*1000/hz/n, (y[2]-x[2])*1000/hz/n }')
  printf '  %-32s %10s req/s   p50 %-9s p99 %-9s non-2xx %-4s %s\n' "$1" "$rps" "$p50" "$p99" "${errors:-0}" "$cpu" >&2
  if [ -n "$errors" ] && [ "$errors" != 0 ]; then
    echo "  (non-2xx answers in $1; wrk output:)" >&2; cat "$out" >&2
  fi
  echo "${rps:-0}"
}

echo "== wrk: $WRK_THREADS threads, $CONNECTIONS connections, ${DURATION}s each, $AGENTS agents; load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$WRK" -t1 -c4 -d2s "$BASE/" >/dev/null 2>&1 || true  # warm-up
# Interleaved rounds: the machine's speed drifts between runs, so each round measures the three back to
# back, and the verdict uses medians of the per-round ratios.
TRIVIAL=""; OPERATOR=""; AGENTKEY=""
for round in $(seq 1 "$ROUNDS"); do
  echo "  -- round $round" >&2
  TRIVIAL+="$(run_wrk "GET /?via=django (trivial)" "/?via=django"),"
  OPERATOR+="$(run_wrk "PUT agent-activity (operator)" "/api/v2/agent-activity" "$WORK/put_operator.lua"),"
  AGENTKEY+="$(run_wrk "PUT agent-activity (agent key)" "/api/v2/agent-activity" "$WORK/put_key.lua"),"
done

ROWS=$($PY - "$TENANT" <<'PY'
import sys, django
django.setup()
from django.db.models import Count
from activity.models import AgentActivity
counts = AgentActivity.objects.filter(tenant_id=sys.argv[1]).values("agent_id").annotate(n=Count("agent_id"))
print(len(counts), max((row["n"] for row in counts), default=0))
PY
)

$PY - "$TRIVIAL" "$OPERATOR" "$AGENTKEY" $ROWS "$AGENTS" <<'PY'
import statistics
import sys

trivial, operator, key = ([float(v) for v in arg.split(",") if v] for arg in sys.argv[1:4])
agents_with_rows, max_rows, agents = (int(v) for v in sys.argv[4:7])
print()
print(f"medians over {len(trivial)} rounds")
print(f"trivial GET /?via=django      : {statistics.median(trivial):9.1f} req/s")
verdicts = []
for label, rates in (("heartbeat (operator token)", operator), ("heartbeat (agent key)", key)):
    rate = statistics.median(rates)
    ratio = statistics.median(r / t for r, t in zip(rates, trivial) if t)
    ok = rate >= 1200 and ratio >= 0.5
    verdicts.append(ok)
    print(f"{label:30}: {rate:9.1f} req/s  = {ratio:5.1%} of trivial  "
          f"[target >= 1200 req/s and >= 50%: {'MET' if ok else 'NOT MET'}]")
rows_ok = agents_with_rows == agents and max_rows == 1
print(f"activity rows                 : {agents_with_rows}/{agents} agents, at most {max_rows} row each "
      f"({'ok' if rows_ok else 'WRONG'})")
sys.exit(0 if verdicts[0] and rows_ok else 1)
PY
