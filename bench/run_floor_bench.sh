#!/usr/bin/env bash
# Django's per-request floor counted in instructions (`make bench-floor`): valgrind's callgrind runs
# bench/floor_instructions.py with 0 and with N requests (after the same warm-up), and the difference per
# request is printed. Deterministic for the same code, interpreter and settings, whatever the machine is doing.
#
# Environment (all optional): BENCH_N (1000), DATABASE_URL / CACHE_URL (the embedded default: SQLite and
# the in-process cache; the root route makes no query either way), PY (.venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
N=${BENCH_N:-1000}
export SECRET_KEY=${SECRET_KEY:-bench-floor-not-secret} DEBUG=0 LOG_LEVEL=WARNING PYTHONHASHSEED=0
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }

count() {  # count N: the instructions of a whole run with N measured requests
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$PY" bench/floor_instructions.py "$1" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "counting (two runs under callgrind, a minute or two each)..."
BASE=$(count 0)
FULL=$(count "$N")
echo "Django's floor (GET /?via=django, the sync lane's handler): $(( (FULL - BASE) / N )) instructions per request" \
     "(database: ${DATABASE_URL:-sqlite (embedded default)}; cache: ${CACHE_URL:-locmem})"
