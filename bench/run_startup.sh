#!/usr/bin/env bash
# Part 4: start-up and recovery. A copy of the 1M-job database gets 1000
# interrupted jobs: processing, live leases (an hour left), held by a process of
# this host that has exited. Measures the wall time from launching
# `scrapekeep serve` to the first 200 from /healthz, then how many of the 1000
# are back in work (no longer held by the dead process: waiting for a worker,
# or claimed anew) at that moment. Beside it,
# the ceiling: the same binary's start-up on the same file with nothing to
# recover, and `scrapekeep --version` (process start alone).
#   BENCH_SU_JOBS=1000000 BENCH_SU_INTERRUPTED=1000 BENCH_SU_RUNS=3
source "$(dirname "$0")/lib.sh"
N="${BENCH_SU_JOBS:-1000000}"
K="${BENCH_SU_INTERRUPTED:-1000}"
RUNS="${BENCH_SU_RUNS:-3}"

src="$(db_for "$N")"
db="$RUN_DIR/startup.db"
now_us() { echo $(($(date +%s%N) / 1000)); }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# A pid that is certainly gone: a child that has exited and been reaped.
true &
dead_pid=$!
wait "$dead_pid"
holder="$(hostname):$dead_pid:deadbeef"

interrupt() {
  cp "$src" "$db"
  rm -f "$db-wal" "$db-shm"
  local now
  now="$(now_us)"
  # The generator's processing jobs are put back to pending first, so that
  # exactly K jobs are interrupted.
  sqlite3 "$db" >/dev/null <<SQL
PRAGMA busy_timeout = 5000;
BEGIN;
UPDATE jobs SET status = 'pending', claim_token = NULL, claimed_by = NULL,
  lease_expires_at = NULL WHERE status = 'processing';
DROP TABLE IF EXISTS temp.interrupted;
CREATE TEMP TABLE interrupted AS SELECT job_id FROM jobs WHERE status = 'pending' LIMIT $K;
UPDATE jobs SET status = 'processing', started_at = $now - 60000000, attempts = 1,
  claim_token = lower(hex(randomblob(16))), claimed_by = '$holder',
  lease_expires_at = $now + 3600000000, current_page = MAX(current_page, 1)
  WHERE job_id IN (SELECT job_id FROM temp.interrupted);
CREATE TABLE IF NOT EXISTS bench_interrupted (job_id TEXT PRIMARY KEY);
DELETE FROM bench_interrupted;
INSERT INTO bench_interrupted SELECT job_id FROM temp.interrupted;
COMMIT;
SQL
}

# start_until_healthy DB: launches serve, sets HEALTHY_MS to the milliseconds
# until /healthz answered 200; leaves SERVE_PID (SERVE_CHILD) running.
start_until_healthy() {
  local t0 port="" log="$RUN_DIR/startup.$RANDOM.log"
  : >"$log"
  t0="$(date +%s%N)"
  timeout 600 "$BIN/scrapekeep" serve --db "$1" --listen 127.0.0.1:0 --workers 0 >"$log" 2>&1 &
  SERVE_PID=$!
  BENCH_PIDS+=("$SERVE_PID")
  while :; do
    [ -z "$port" ] && port="$(sed -n 's#.*serving on http://127.0.0.1:\([0-9]*\).*#\1#p' "$log")"
    if [ -n "$port" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' \
      "http://127.0.0.1:$port/healthz")" = 200 ]; then
      break
    fi
    kill -0 "$SERVE_PID" 2>/dev/null || { cat "$log" >&2; return 1; }
    [ "$(ms_since "$t0")" -gt 60000 ] && { echo "bench: not healthy in 60 s" >&2; return 1; }
    sleep 0.002
  done
  HEALTHY_MS="$(ms_since "$t0")"
  SERVE_CHILD="$(ps -o pid= --ppid "$SERVE_PID" | tr -d ' ' | head -n 1)"
}

back_in_work() {
  sqlite3 "$db" "PRAGMA busy_timeout = 5000; SELECT COUNT(*) FROM jobs WHERE job_id IN
    (SELECT job_id FROM bench_interrupted) AND (status = 'pending' OR claimed_by IS NOT '$holder')" |
    tail -n 1
}

printf '%-4s | %12s %9s | %14s %14s | %5s %s\n' run "healthy ms" recovered "ceiling ms" \
  "--version ms" ratio "(ceiling: same file, nothing to recover)"
peak=0
for run in $(seq 1 "$RUNS"); do
  interrupt
  sync
  cat "$db" >/dev/null  # the file is in the page cache for both starts
  start_until_healthy "$db"
  ms="$HEALTHY_MS"
  got="$(back_in_work)"
  hwm="$(vmhwm_kib "$SERVE_CHILD")"
  [ "$hwm" -gt "$peak" ] && peak="$hwm"
  stop_pid "$SERVE_PID"
  # Ceiling: the same file once recovered (nothing left to do).
  start_until_healthy "$db"
  ceil_ms="$HEALTHY_MS"
  stop_pid "$SERVE_PID"
  t0="$(date +%s%N)"
  "$BIN/scrapekeep" --version >/dev/null
  version_ms="$(ms_since "$t0")"
  printf '%-4s | %12s %4s/%-4s | %14s %14s | %5s\n' "$run" "$ms" "$got" "$K" "$ceil_ms" \
    "$version_ms" "$(fmt_ratio "$ceil_ms" "$ms")"
done
echo "   $N jobs, $K interrupted by a dead process ($holder);" \
  "serve peak RSS (VmHWM) during recovery: $((peak / 1024)) MiB"
