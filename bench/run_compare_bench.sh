#!/usr/bin/env bash
# Side-by-side benchmark (`make bench-compare`, issue 11): the original FastAPI MaimConfig and this
# project, measured in ONE run, route by route, in interleaved rounds (each round: every route on the
# original, then on this project, back to back), `wrk -t2 -c16`, BENCH_DURATION seconds per figure.
# Prints a markdown table of medians (req/s of successful answers, the per-round ratio, p99 per side),
# then the CPU time per request of each side, and exits non-zero when a target of issue 11 is missed:
#   validate-api-key >= 2.5 x the original; the agent-key heartbeat >= 2 x the original's heartbeat;
#   every other route the original has >= 1 x the original; and this project never answers a failure.
#
# This script never builds, installs or starts the original: start it by hand (README "Side by side with
# the original") and pass its URL and an API key minted there; the tenant, agent and key ids are read
# from the original by validating that key. Without ORIGINAL_URL only this project's side runs.
#
# This project's side is started here like bench/run_auth_bench.sh: gunicorn -c gunicorn.conf.py with
# GUNICORN_WORKERS=2, MariaDB database maimconfig_bench_compare, Redis db 14, operator auth mode. Routes the
# original answers without any credential are called here the way production calls them: management
# routes with an operator token, bot routes (config, plugin settings, usage log, keyed heartbeat) with an
# agent key; validate-api-key and the trivial route need none on either side.
#
# Environment (all optional):
#   ORIGINAL_URL (e.g. http://127.0.0.1:8900)  ORIGINAL_KEY (mmc_… minted on the original; required with
#   ORIGINAL_URL)  ORIGINAL_TENANT_ID / ORIGINAL_AGENT_ID / ORIGINAL_KEY_ID (default: what validating the key says)
#   BENCH_ROUNDS (3)  BENCH_DURATION (8, seconds per figure)  BENCH_WARMUP (1, seconds per route and side; 0: none)
#   BENCH_CONNECTIONS (16)  BENCH_WRK_THREADS (2)  BENCH_PORT (8211)  GUNICORN_WORKERS (2)
#   BENCH_DATABASE_URL (mysql://root@127.0.0.1:3306/maimconfig_bench_compare)  BENCH_CACHE_URL (redis://127.0.0.1:6379/14)
#   BENCH_ONLY (a space-separated list of route ids to run; default all: see ROUTES below)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
GUNICORN=${GUNICORN:-.venv/bin/gunicorn}
WRK=${WRK:-wrk}
PORT=${BENCH_PORT:-8211}
DURATION=${BENCH_DURATION:-8}; DURATION=${DURATION%s}
WARMUP=${BENCH_WARMUP:-1}; WARMUP=${WARMUP%s}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-16}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
ORIGINAL_URL=${ORIGINAL_URL:-}; ORIGINAL_URL=${ORIGINAL_URL%/}
ORIGINAL_KEY=${ORIGINAL_KEY:-}

export DATABASE_URL=${BENCH_DATABASE_URL:-mysql://root@127.0.0.1:3306/maimconfig_bench_compare}
export CACHE_URL=${BENCH_CACHE_URL:-redis://127.0.0.1:6379/14}
export SECRET_KEY=${SECRET_KEY:-bench-compare-not-secret} DEBUG=0 LOG_LEVEL=WARNING DB_CONN_MAX_AGE=600
export MAIMCONFIG_AUTH_MODE=operator
export MAIMCONFIG_AUTH_THROTTLE_RATE=1000000000/min   # the per-IP /auth throttle would stop a one-IP benchmark
export GUNICORN_BIND=127.0.0.1:$PORT GUNICORN_WORKERS=${GUNICORN_WORKERS:-2}
unset GUNICORN_ACCESSLOG

command -v "$WRK" >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 2; }
if [[ -n $ORIGINAL_URL && -z $ORIGINAL_KEY ]]; then
  echo "ORIGINAL_URL is set but ORIGINAL_KEY is not: mint a key on the original (README) and pass it" >&2; exit 2
fi

WORK=$(mktemp -d)
GPID=""
cleanup() {
  if [[ -n $GPID ]] && kill -0 "$GPID" 2>/dev/null; then kill "$GPID" 2>/dev/null || true; wait "$GPID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

json_field() {  # json_field FILE PATH.TO.FIELD: prints the value, or nothing
  "$PY" -c 'import json, sys
value = json.load(open(sys.argv[1]))
for part in sys.argv[2].split("."):
    value = value.get(part) if isinstance(value, dict) else None
print("" if value is None else value)' "$1" "$2" 2>/dev/null || true
}

# ---- the original: ids from its own answer to the key (validated read-only: check_rate_limit false) ----
O_TENANT=""; O_AGENT=""; O_KEY_ID=""; O_PIDS=""
if [[ -n $ORIGINAL_URL ]]; then
  curl -fsS -m 10 -o "$WORK/orig.json" -X POST "$ORIGINAL_URL/api/v2/auth/validate-api-key" \
    -H 'Content-Type: application/json' -d "{\"api_key\":\"$ORIGINAL_KEY\",\"check_rate_limit\":false}" \
    || { echo "the original does not answer at $ORIGINAL_URL" >&2; exit 2; }
  [[ $(json_field "$WORK/orig.json" data.valid) == True ]] \
    || { echo "the original refuses ORIGINAL_KEY: $(cat "$WORK/orig.json")" >&2; exit 2; }
  O_TENANT=${ORIGINAL_TENANT_ID:-$(json_field "$WORK/orig.json" data.tenant_id)}
  O_AGENT=${ORIGINAL_AGENT_ID:-$(json_field "$WORK/orig.json" data.agent_id)}
  O_KEY_ID=${ORIGINAL_KEY_ID:-$(json_field "$WORK/orig.json" data.api_key_id)}
  # The same plugin settings as this project's fixture (a tenant default and an agent override; a short
  # name: the original builds the row id from tenant, agent and name into 50 characters), through
  # the original's own upsert route, so both sides answer the same merged list.
  for scope in "" "&agent_id=$O_AGENT"; do
    curl -fsS -m 10 -o /dev/null -X POST "$ORIGINAL_URL/api/v1/plugins/settings?tenant_id=$O_TENANT$scope" \
      -H 'Content-Type: application/json' \
      -d "{\"plugin_name\":\"bench\",\"enabled\":$([[ -z $scope ]] && echo true || echo false),\"config\":{\"a\":$([[ -z $scope ]] && echo 1 || echo 2)}}"
  done
  # Its processes (for the CPU time per request), when it listens on this machine.
  O_PORT=$(sed -E 's#^[a-z]+://[^/:]+:?([0-9]*).*#\1#' <<<"$ORIGINAL_URL"); O_PORT=${O_PORT:-80}
  O_PIDS=$(ss -Hltnp "sport = :$O_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u | tr '\n' ' ' || true)
fi

# ---- this project: database, fixture, gunicorn ----
if [[ $DATABASE_URL == mysql://* ]]; then
  read -r DB_HOST DB_PORT DB_NAME < <("$PY" -c 'import os, urllib.parse as u
p = u.urlparse(os.environ["DATABASE_URL"]); print(p.hostname or "127.0.0.1", p.port or 3306, p.path.lstrip("/"))')
  mariadb -h "$DB_HOST" -P "$DB_PORT" -u root -e \
    "CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
fi
"$PY" manage.py migrate --noinput -v0
read -r TOKEN TENANT AGENT KEY_ID RAW_KEY < <("$PY" manage.py shell -c "$(cat bench/compare_setup.py)" | tail -n 1)

"$GUNICORN" -c gunicorn.conf.py >"$WORK/gunicorn.log" 2>&1 &
GPID=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health" 2>/dev/null && break
  sleep 0.2
done
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health" || { echo "gunicorn did not start:" >&2; cat "$WORK/gunicorn.log" >&2; exit 1; }
URL=http://127.0.0.1:$PORT

# ---- routes: id|gate|base|label|original METHOD|PATH|BODY|EXPECT|ours METHOD|PATH|BODY|AUTH(op/key/none)|EXPECT ----
# gate: this project's rate / the original's (of route `base`) must reach it; "info": reported only.
# EXPECT: a string the body must contain ("^…": start with) for the answer to count as a success.
BT='`'
OK='"success":true'
cat >"$WORK/routes" <<ROUTES
validate|2.5|validate|${BT}POST /api/v2/auth/validate-api-key${BT}|POST|/api/v2/auth/validate-api-key|{"api_key":"$ORIGINAL_KEY"}|"valid":true|POST|/api/v2/auth/validate-api-key|{"api_key":"$RAW_KEY"}|none|"valid":true
heartbeat|1|heartbeat|${BT}PUT /api/v2/agent-activity${BT} (no key there, operator token here)|PUT|/api/v2/agent-activity|{"tenant_id":"$O_TENANT","agent_id":"$O_AGENT","ttl_seconds":300}|$OK|PUT|/api/v2/agent-activity|{"tenant_id":"$TENANT","agent_id":"$AGENT","ttl_seconds":300}|op|$OK
heartbeat_key|2|heartbeat|${BT}PUT /api/v2/agent-activity${BT} (agent key here; vs the original's heartbeat)|||||PUT|/api/v2/agent-activity|{"ttl_seconds":300}|key|$OK
tenant|1|tenant|${BT}GET /api/v2/tenants/{id}${BT}|GET|/api/v2/tenants/$O_TENANT||$OK|GET|/api/v2/tenants/$TENANT||op|$OK
agent|1|agent|${BT}GET /api/v2/agents/{id}${BT}|GET|/api/v2/agents/$O_AGENT||$OK|GET|/api/v2/agents/$AGENT||op|$OK
config|1|config|${BT}GET /api/v2/agents/{id}/config${BT} (agent key here)|GET|/api/v2/agents/$O_AGENT/config||$OK|GET|/api/v2/agents/$AGENT/config||key|$OK
keys|1|keys|${BT}GET /api/v2/api-keys?tenant_id=…${BT}|GET|/api/v2/api-keys?tenant_id=$O_TENANT||$OK|GET|/api/v2/api-keys?tenant_id=$TENANT||op|$OK
key|1|key|${BT}GET /api/v2/api-keys/{id}${BT}|GET|/api/v2/api-keys/$O_KEY_ID||$OK|GET|/api/v2/api-keys/$KEY_ID||op|$OK
activity|1|activity|${BT}GET /api/v2/agent-activity?tenant_id=…${BT}|GET|/api/v2/agent-activity?tenant_id=$O_TENANT||$OK|GET|/api/v2/agent-activity?tenant_id=$TENANT||op|$OK
plugins|1|plugins|${BT}GET /api/v1/plugins/settings${BT} (agent key here)|GET|/api/v1/plugins/settings?tenant_id=$O_TENANT&agent_id=$O_AGENT||"bench"|GET|/api/v1/plugins/settings?tenant_id=$TENANT&agent_id=$AGENT||key|"bench"
usage|1|usage|${BT}POST /api/v1/usage/log${BT} (agent key here)|POST|/api/v1/usage/log|{"tenant_id":"$O_TENANT","agent_id":"$O_AGENT","action":"chat"}|$OK|POST|/api/v1/usage/log|{"tenant_id":"$TENANT","agent_id":"$AGENT","action":"chat"}|key|$OK
models|1|models|${BT}GET /api/v2/system/models${BT}|GET|/api/v2/system/models||$OK|GET|/api/v2/system/models||op|$OK
bot_defaults|1|bot_defaults|${BT}GET /api/v2/system/bot-defaults${BT}|GET|/api/v2/system/bot-defaults||$OK|GET|/api/v2/system/bot-defaults||op|$OK
root|1|root|${BT}GET /${BT}|GET|/||MaiMBot API Server|GET|/||none|MaiMBot API Server
health|1|health|${BT}GET /health${BT} (here: the database and the cache checked, shared for 1 s)|GET|/health||"healthy"|GET|/health||none|"healthy"
info|1|info|${BT}GET /info${BT}|GET|/info||"MaiMBot API"|GET|/info||none|"MaiMBot API"
trivial|info|trivial|trivial route (${BT}GET /health${BT} there, ${BT}GET /${BT} here)|GET|/health||"healthy"|GET|/||none|
ROUTES
if [[ -n ${BENCH_ONLY:-} ]]; then
  grep -E "^($(tr ' ' '|' <<<"$BENCH_ONLY"))\|" "$WORK/routes" >"$WORK/routes.only" || true
  mv "$WORK/routes.only" "$WORK/routes"
fi

auth_header() {
  case $1 in op) echo "Token $TOKEN" ;; key) echo "Bearer $RAW_KEY" ;; *) echo "" ;; esac
}

source bench/cpu_ticks.sh
ticks_of() {  # ticks_of PID…: CPU ticks (user + system) of these processes
  local sum=0 pid
  for pid in "$@"; do sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0))); done
  echo "$sum"
}
side_ticks() {  # side_ticks original|ours: "APP STORES" CPU ticks; APP: gunicorn master and workers here, the
  # processes listening on its port for the original; STORES: MariaDB and Redis (whoever uses them)
  local app db
  read -r app db < <(cpu_ticks "$GPID")
  [[ $1 == original ]] && app=$(ticks_of $O_PIDS)
  echo "$app $((db + $(ticks_of $(pgrep -x redis-server || true))))"
}

# measure SIDE ID METHOD URL BODY AUTH EXPECT SECONDS: one wrk run; prints its RESULT line with CPU per request
measure() {
  local before after out
  before=$(side_ticks "$1")
  out=$(SIDE=$1 ROUTE=$2 METHOD=$3 BODY=$5 AUTH=$6 EXPECT=$7 \
        "$WRK" -t"$WRK_THREADS" -c"$CONNS" -d"$8s" --latency -s bench/compare_wrk.lua "$4" </dev/null | grep -E '^(RESULT|BADSAMPLE)')
  after=$(side_ticks "$1")
  awk -v b="$before" -v a="$after" -v hz="$(getconf CLK_TCK)" -v side="$1" '
    /^RESULT/ { split(b, x, " "); split(a, y, " "); match($0, /requests=[0-9]+/); n = substr($0, RSTART + 9, RLENGTH - 9);
                app = (side == "original" && x[1] == 0 && y[1] == 0) ? -1 : (y[1]-x[1])*1000/hz/(n ? n : 1);
                printf "%s app_cpu_ms=%.3f db_cpu_ms=%.3f\n", $0, app, (y[2]-x[2])*1000/hz/(n ? n : 1); next }
    { print }' <<<"$out"
}

# check SIDE ID METHOD URL BODY AUTH EXPECT: one request must succeed before anything is measured
check() {
  local code good=1 args=()
  [[ -n $5 ]] && args+=(-H 'Content-Type: application/json' -d "$5")
  [[ -n $6 ]] && args+=(-H "Authorization: $6")
  code=$(curl -sS -m 10 -o "$WORK/check.json" -w '%{http_code}' -X "$3" "${args[@]}" "$4" </dev/null || echo 000)
  [[ $code == 200 ]] || good=0
  if [[ -n $7 ]]; then
    if [[ $7 == ^* ]]; then [[ $(head -c "$((${#7} - 1))" "$WORK/check.json") == "${7#^}" ]] || good=0
    else grep -qF -- "$7" "$WORK/check.json" || good=0; fi
  fi
  if ((good == 0)); then
    echo "sanity check failed on the $1 side, route $2 ($3 $4): HTTP $code $(head -c 300 "$WORK/check.json")" >&2
    exit 1
  fi
}

for_each_route() {  # for_each_route FUNCTION [extra args…]: FUNCTION SIDE ID METHOD URL BODY AUTH EXPECT [extra…]
  local fn=$1; shift
  local id gate base label om op ob oe um up ub ua ue
  while IFS='|' read -r id gate base label om op ob oe um up ub ua ue; do
    if [[ -n $ORIGINAL_URL && -n $om ]]; then "$fn" original "$id" "$om" "$ORIGINAL_URL$op" "$ob" "" "$oe" "$@"; fi
    "$fn" ours "$id" "$um" "$URL$up" "$ub" "$(auth_header "$ua")" "$ue" "$@"
  done <"$WORK/routes"
}

echo "this project: gunicorn (gunicorn.conf.py, $GUNICORN_WORKERS workers) on $GUNICORN_BIND; database ${DATABASE_URL%%:*}; cache $CACHE_URL"
if [[ -n $ORIGINAL_URL ]]; then
  echo "original: $ORIGINAL_URL (tenant $O_TENANT, agent $O_AGENT, key $O_KEY_ID; processes: ${O_PIDS:-not on this machine})"
else
  echo "original: ORIGINAL_URL not set: measuring this project's side only"
fi
echo "wrk -t$WRK_THREADS -c$CONNS, ${DURATION}s per figure, $ROUNDS interleaved rounds; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

for_each_route check
if ((WARMUP > 0)); then
  echo "warm-up (${WARMUP}s per route and side)..."
  for_each_route measure "$WARMUP" >/dev/null
fi

LINES="$WORK/lines"
while IFS='|' read -r id gate base label _; do
  echo "ROUTEDEF route=$id gate=$gate base=$base label=$label"
done <"$WORK/routes" >"$LINES"
for round in $(seq 1 "$ROUNDS"); do
  echo "-- round $round of $ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  for_each_route measure "$DURATION" | tee -a "$LINES" | sed 's/^/  /'
done

echo
echo "Medians over $ROUNDS rounds (req/s: successful answers per second; ratio: this project / the original, per round):"
echo
STATUS=0
"$PY" bench/compare_rounds.py <"$LINES" || STATUS=$?
echo
echo "CPU milliseconds per request, application + data stores (MariaDB and Redis; medians; a figure that drifts"
echo "far less than req/s on a shared machine):"
"$PY" - "$LINES" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT "):
        f = dict(re.findall(r"(\w+)=(\S+)", line))
        rows.setdefault((f["route"], f["side"]), []).append((float(f["app_cpu_ms"]), float(f["db_cpu_ms"])))
def cell(key):
    values = rows.get(key)
    if not values:
        return "—"
    app = statistics.median(a for a, _ in values)
    db = statistics.median(d for _, d in values)
    return f"? + {db:.2f}" if app < 0 else f"{app:.2f} + {db:.2f}"
for route in dict.fromkeys(r for r, _ in rows):
    print(f"  {route:14s} original {cell((route, 'original')):>15s}   this project {cell((route, 'ours')):>15s}")
PY
exit $STATUS
