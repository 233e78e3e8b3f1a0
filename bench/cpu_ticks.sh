# Sourced by the bench scripts. `cpu_ticks MASTER_PID` prints "APP DB": the CPU ticks (user + system)
# used so far by a gunicorn master and its workers, and by the database server (mariadbd or mysqld).
# Two readings around a wrk run, divided by its request count, give the CPU time per request: a figure
# that drifts far less than req/s on a shared machine.
cpu_ticks() {
  local app=0 db=0 pid
  for pid in $1 $(pgrep -P "$1" || true); do
    app=$((app + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  for pid in $(pgrep -x mariadbd || pgrep -x mysqld || true); do
    db=$((db + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$app $db"
}
