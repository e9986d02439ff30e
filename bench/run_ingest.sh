#!/usr/bin/env bash
# Part 3: ingestion. Synthetic workers (threads, each with its own JobStore, no
# network) store listing-page events with their items and counters, each call
# returning only once its event is committed; beside it the storage ceiling:
# the same rows inserted by one connection in one transaction. Both on fresh
# databases, per synchronous mode; "single" is the store without group commit
# (one transaction per event, as before).
#   BENCH_INGEST_WORKERS="32" BENCH_INGEST_EVENTS=20000 BENCH_INGEST_ITEMS=5
#   BENCH_INGEST_SYNC="normal full"
source "$(dirname "$0")/lib.sh"
WORKERS="${BENCH_INGEST_WORKERS:-32}"
EVENTS="${BENCH_INGEST_EVENTS:-20000}"
ITEMS="${BENCH_INGEST_ITEMS:-5}"
SYNCS="${BENCH_INGEST_SYNC:-normal full}"

run_ingest() {
  local mode="$1" sync="$2" workers="$3" events="$4" db="$RUN_DIR/ingest.db"
  rm -f "$db" "$db-wal" "$db-shm"
  timeout 600 "$BIN/bench/ingest" --db "$db" --mode "$mode" --workers "$workers" --jobs 2000 \
    --events "$events" --items "$ITEMS" --synchronous "$sync" | sed -n 's/^RESULT //p'
}

printf '%-7s %7s | %-7s %9s %8s %12s | %9s %5s\n' sync workers mode events/s seconds transactions \
  "ceiling/s" ratio
for sync in $SYNCS; do
  read -r _ _ _ ceil_rate _ < <(run_ingest ceiling "$sync" 1 "$EVENTS")
  for w in $WORKERS; do
    for mode in group single; do
      events="$EVENTS"
      # One fsync per event: a smaller run says the same.
      [ "$mode" = single ] && [ "$sync" = full ] && events=$((EVENTS / 10))
      read -r _ n secs rate tx < <(run_ingest "$mode" "$sync" "$w" "$events")
      printf '%-7s %7s | %-7s %9s %8s %12s | %9s %5s\n' "$sync" "$w" "$mode" "$rate" "$secs" "$tx" \
        "$ceil_rate" "$(fmt_ratio "$rate" "$ceil_rate")"
    done
  done
done
echo "   ($ITEMS items per event, 2000 concurrent jobs; transactions: commits that stored them)"
