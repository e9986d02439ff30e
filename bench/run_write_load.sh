#!/usr/bin/env bash
# Part 2: progress under write load. On a copy of the 1M-job database, wrk asks
# for progress at BENCH_CONNS connections, first alone, then while synthetic
# workers (bench/ingest --mode group: threads with their own JobStore, no
# network) record listing-page events for 2000 concurrent jobs in the same
# file. Beside them, in the same run: ceiling_server (reads) and the raw SQLite
# ceiling for the same rows (writes).
#   BENCH_WL_JOBS=1000000 BENCH_CONNS="32" BENCH_SECONDS=10 BENCH_WL_WORKERS=16
source "$(dirname "$0")/lib.sh"
N="${BENCH_WL_JOBS:-1000000}"
CONNS="${BENCH_CONNS:-32}"
SECS="${BENCH_SECONDS:-10}"
WORKERS="${BENCH_WL_WORKERS:-16}"

src="$(db_for "$N")"
ids="$DATA/jobs_$N.ids"
key="$(cat "$DATA/jobs_$N.key")"
db="$RUN_DIR/write_load.db"
cp "$src" "$db"

# Write ceiling: the same rows in one transaction, on a fresh file.
read -r _ _ _ write_ceiling _ < <("$BIN/bench/ingest" --db "$RUN_DIR/ceiling.db" --mode ceiling \
  --events 20000 --items 5 | sed -n 's/^RESULT //p')

start_serve "$db"
first_id="$(head -n 1 "$ids")"
body_bytes="$(curl -s -H "X-API-Key: $key" \
  "http://127.0.0.1:$SERVE_PORT/v1/scrape/jobs/$first_id/progress" | wc -c)"
start_ceiling "$body_bytes"
wrk_progress "$SERVE_PORT" 8 2 "$ids" "$key" >/dev/null

printf '%5s %-12s | %9s %7s %7s | %9s %5s | %9s %9s %5s\n' conns load "serve r/s" "p50 us" \
  "p99 us" "ceil r/s" ratio "events/s" "ceiling/s" ratio
for c in $CONNS; do
  read -r c_rps _ _ _ _ _ < <(wrk_progress "$CEIL_PORT" "$c" "$SECS" "$ids" "$key")
  read -r s_rps s_p50 s_p99 _ _ _ < <(wrk_progress "$SERVE_PORT" "$c" "$SECS" "$ids" "$key")
  printf '%5s %-12s | %9.0f %7s %7s | %9.0f %5s | %9s %9s %5s\n' "$c" "reads only" "$s_rps" \
    "$s_p50" "$s_p99" "$c_rps" "$(fmt_ratio "$s_rps" "$c_rps")" - - -
  out="$RUN_DIR/ingest.out"
  timeout $((SECS + 600)) "$BIN/bench/ingest" --db "$db" --mode group --workers "$WORKERS" \
    --jobs 2000 --seconds $((SECS + 2)) --items 5 >"$out" &
  ingest_pid=$!
  BENCH_PIDS+=("$ingest_pid")
  until grep -q STARTED "$out" 2>/dev/null; do
    kill -0 "$ingest_pid" 2>/dev/null || { echo "bench: ingest failed" >&2; exit 1; }
    sleep 0.1
  done
  sleep 1
  read -r w_rps w_p50 w_p99 _ w_non2xx w_err < <(wrk_progress "$SERVE_PORT" "$c" "$SECS" "$ids" "$key")
  wait "$ingest_pid"
  read -r _ _ _ events_rate _ < <(sed -n 's/^RESULT //p' "$out")
  printf '%5s %-12s | %9.0f %7s %7s | %9.0f %5s | %9s %9s %5s\n' "$c" "with writes" "$w_rps" \
    "$w_p50" "$w_p99" "$c_rps" "$(fmt_ratio "$w_rps" "$c_rps")" "$events_rate" "$write_ceiling" \
    "$(fmt_ratio "$events_rate" "$write_ceiling")"
  [ "${w_non2xx:-0}" = 0 ] && [ "${w_err:-0}" = 0 ] ||
    echo "   with writes: $w_non2xx non-2xx answers, $w_err socket errors"
done
echo "   serve peak RSS (VmHWM): $(serve_peak_mib) MiB; $WORKERS writer threads, 2000 jobs," \
  "5 items per event"
