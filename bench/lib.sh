# Shared by bench/run_*.sh (sourced, never run). Everything binds 127.0.0.1;
# every process started here runs under `timeout` and is killed on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# A part run alone builds its own tree; tools/bench has already built it.
if [ -z "${BENCH_BIN:-}" ]; then
  BENCH_BIN=build-bench
  cmake -S . -B "$BENCH_BIN" -DCMAKE_BUILD_TYPE=Release -DSCRAPEKEEP_BUILD_TESTS=OFF \
    -DSCRAPEKEEP_BUILD_BENCH=ON >/dev/null
  cmake --build "$BENCH_BIN" -j"$(nproc)" 2>&1 | grep -vE '^\[ *[0-9]+%\]|^-- ' || true
fi
BIN="$BENCH_BIN"
for tool in wrk sqlite3 curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required (apt-get install $tool)" >&2; exit 1; }
done
# Generated databases are kept here between runs (1M jobs take a while).
DATA="${BENCH_DATA:-/tmp/scrapekeep-bench}"
mkdir -p "$DATA"
RUN_DIR="$(mktemp -d "$DATA/run.XXXXXX")"
BENCH_PIDS=()
bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$RUN_DIR"
}
trap bench_cleanup EXIT

# db_for N: path of a database of N jobs in one organization, generated once,
# with $DATA/jobs_N.key (an API key of that organization) and $DATA/jobs_N.ids
# (up to 100,000 job ids drawn uniformly from the whole table).
db_for() {
  local n="$1" db="$DATA/jobs_$1.db"
  if [ ! -f "$db.ready" ]; then
    rm -f "$db" "$db-wal" "$db-shm"
    "$BIN/gen_db" --db "$db" --jobs "$n" --orgs 1 --force >&2
    "$BIN/scrapekeep" keys create --db "$db" --org org-01 | tail -n 1 >"$DATA/jobs_$n.key"
    sqlite3 "$db" "SELECT job_id FROM jobs ORDER BY random() LIMIT 100000" >"$DATA/jobs_$n.ids"
    touch "$db.ready"
  fi
  echo "$db"
}

# start_serve DB [extra args]: runs `scrapekeep serve` (API only; the binary
# $SERVE_EXE if set, else $BIN/scrapekeep) on a free port for at most 30
# minutes; sets SERVE_PID, SERVE_PORT and SERVE_CHILD.
start_serve() {
  local db="$1"
  shift
  local log="$RUN_DIR/serve.$RANDOM.log"
  : >"$log"
  timeout 1800 "${SERVE_EXE:-$BIN/scrapekeep}" serve --db "$db" --listen 127.0.0.1:0 --workers 0 "$@" \
    >"$log" 2>&1 &
  SERVE_PID=$!
  BENCH_PIDS+=("$SERVE_PID")
  SERVE_PORT=""
  for _ in $(seq 1 3000); do
    SERVE_PORT="$(sed -n 's#.*serving on http://127.0.0.1:\([0-9]*\).*#\1#p' "$log")"
    [ -n "$SERVE_PORT" ] && break
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$log" >&2; return 1; }
    sleep 0.01
  done
  [ -n "$SERVE_PORT" ] || { echo "bench: serve did not start" >&2; cat "$log" >&2; return 1; }
  # The server itself (SERVE_PID is its `timeout` wrapper), for /proc.
  SERVE_CHILD="$(ps -o pid= --ppid "$SERVE_PID" | tr -d ' ' | head -n 1)"
}

# start_ceiling BODY_BYTES [extra args]: the bare cpp-httplib server; sets
# CEIL_PID and CEIL_PORT.
start_ceiling() {
  local bytes="$1"
  shift
  local log="$RUN_DIR/ceiling.$RANDOM.log"
  : >"$log"
  "$BIN/bench/ceiling_server" --port 0 --body-bytes "$bytes" --seconds 1800 "$@" >"$log" 2>&1 &
  CEIL_PID=$!
  BENCH_PIDS+=("$CEIL_PID")
  CEIL_PORT=""
  for _ in $(seq 1 500); do
    CEIL_PORT="$(sed -n 's/^listening on \([0-9]*\)$/\1/p' "$log")"
    [ -n "$CEIL_PORT" ] && break
    sleep 0.01
  done
  [ -n "$CEIL_PORT" ] || { echo "bench: ceiling_server did not start" >&2; return 1; }
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Peak resident set of a live process, in KiB.
vmhwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# serve's peak resident set so far, in MiB.
serve_peak_mib() { echo $(($(vmhwm_kib "$SERVE_CHILD") / 1024)); }

# wrk_progress PORT CONNECTIONS SECONDS IDS KEY: prints
# "requests_per_s p50_us p99_us requests non2xx socket_errors".
wrk_progress() {
  local port="$1" conns="$2" secs="$3" threads=2
  [ "$conns" -lt 2 ] && threads=1
  WRK_IDS="$4" WRK_KEY="$5" timeout $((secs + 30)) wrk -t"$threads" -c"$conns" -d"${secs}s" \
    --timeout 2s -s bench/wrk_random_ids.lua "http://127.0.0.1:$port/" |
    sed -n 's/^RESULT //p'
}

# fmt_ratio A B: A/B with two decimals ("-" when B is 0).
fmt_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
