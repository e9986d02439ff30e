#!/usr/bin/env bash
# Deleting a job of a million items (max_items allows that many): how long the
# delete takes, through the store and through serve's DELETE, and the longest
# time a writer storing listing pages meanwhile (as a worker does) waits for
# the write lock until the last of the job's rows is gone. The database (one
# completed job of BENCH_DELETE_ITEMS items) is built once in $DATA; every
# round works on a copy.
#   BENCH_DELETE_ITEMS=1000000 BENCH_DELETE_ROUNDS=3
source "$(dirname "$0")/lib.sh"
ITEMS="${BENCH_DELETE_ITEMS:-1000000}"
ROUNDS="${BENCH_DELETE_ROUNDS:-3}"
src="$DATA/delete_$ITEMS.db"
if [ ! -f "$src.ready" ]; then
  rm -f "$src" "$src-wal" "$src-shm"
  timeout 600 "$BIN/bench/delete_wait" --db "$src" --items "$ITEMS" --build-only
  touch "$src.ready"
fi
"$BIN/scrapekeep" migrate --db "$src" >/dev/null
db="$RUN_DIR/delete.db"
fresh_copy() {
  rm -f "$db" "$db-wal" "$db-shm"
  cp "$src" "$db"
}

echo "store: delete_ms purge_ms writes max_wait_ms p99_wait_ms"
for _ in $(seq 1 "$ROUNDS"); do
  fresh_copy
  timeout 600 "$BIN/bench/delete_wait" --db "$db" 2>/dev/null | sed -n 's/^RESULT //p'
done

echo "serve: DELETE /v1/scrape/jobs/{id}"
for _ in $(seq 1 "$ROUNDS"); do
  fresh_copy
  key="$("$BIN/scrapekeep" keys create --db "$db" --org default | tail -n 1)"
  job="$(sqlite3 "$db" "SELECT job_id FROM jobs ORDER BY items_found DESC LIMIT 1")"
  start_serve "$db"
  curl -s -o /dev/null -w "DELETE %{http_code} in %{time_total} s" -X DELETE \
    -H "X-API-Key: $key" "http://127.0.0.1:$SERVE_PORT/v1/scrape/jobs/$job"
  curl -s -o /dev/null -w ", then GET %{http_code}" -H "X-API-Key: $key" \
    "http://127.0.0.1:$SERVE_PORT/v1/scrape/jobs/$job/results"
  # The rows go after the DELETE, a batch per transaction (job_purges lists
  # the job until its last row is gone); polled every 50 ms for up to 60 s.
  t0=$(date +%s.%N)
  for _ in $(seq 1 1200); do
    left="$(sqlite3 "$db" "SELECT COUNT(*) FROM job_purges" 2>/dev/null || echo 1)"
    [ "$left" = 0 ] && break
    sleep 0.05
  done
  echo ", rows all gone $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s later (job_purges left: $left)"
  stop_pid "$SERVE_PID"
done
