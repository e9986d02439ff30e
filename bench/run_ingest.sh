#!/usr/bin/env bash
# Part 3: ingestion. Synthetic workers (threads, each with its own JobStore, no
# network) store listing-page events with their items and counters, each call
# returning only once its event is committed; beside it the storage ceiling:
# the same rows inserted by one connection in one transaction. Both on fresh
# databases, per synchronous mode; "single" is the store without group commit
# (one transaction per event, as before).
# Each figure is the median of BENCH_INGEST_ROUNDS rounds; a round runs the
# ceiling and then each mode back to back, so that one noisy ceiling run does
# not move the ratio (on a shared 2-core machine it swings by a third).
#   BENCH_INGEST_WORKERS="32" BENCH_INGEST_EVENTS=20000 BENCH_INGEST_ITEMS=5
#   BENCH_INGEST_SYNC="normal full" BENCH_INGEST_ROUNDS=3
source "$(dirname "$0")/lib.sh"
WORKERS="${BENCH_INGEST_WORKERS:-32}"
EVENTS="${BENCH_INGEST_EVENTS:-20000}"
ITEMS="${BENCH_INGEST_ITEMS:-5}"
SYNCS="${BENCH_INGEST_SYNC:-normal full}"
ROUNDS="${BENCH_INGEST_ROUNDS:-3}"

run_ingest() {
  local mode="$1" sync="$2" workers="$3" events="$4" db="$RUN_DIR/ingest.db"
  rm -f "$db" "$db-wal" "$db-shm"
  timeout 600 "$BIN/bench/ingest" --db "$db" --mode "$mode" --workers "$workers" --jobs 2000 \
    --events "$events" --items "$ITEMS" --synchronous "$sync" | sed -n 's/^RESULT //p'
}

printf '%-7s %7s | %-7s %9s %8s %12s | %9s %5s\n' sync workers mode events/s seconds transactions \
  "ceiling/s" ratio
# median_of VALUES...: the middle value (the mean of the two middle ones).
median_of() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.0f\n", (a[NR/2]+a[NR/2+1])/2}'; }

for sync in $SYNCS; do
  declare -A rates=() secs=() txs=()
  ceilings=()
  for _ in $(seq 1 "$ROUNDS"); do
    read -r _ _ _ ceil_rate _ < <(run_ingest ceiling "$sync" 1 "$EVENTS")
    ceilings+=("$ceil_rate")
    for w in $WORKERS; do
      for mode in group single; do
        events="$EVENTS"
        # One fsync per event: a smaller run says the same.
        [ "$mode" = single ] && [ "$sync" = full ] && events=$((EVENTS / 10))
        read -r _ n sec rate tx < <(run_ingest "$mode" "$sync" "$w" "$events")
        rates[$w.$mode]+="$rate "
        secs[$w.$mode]+="$sec "
        txs[$w.$mode]+="$tx "
      done
    done
  done
  ceil_rate=$(median_of "${ceilings[@]}")
  for w in $WORKERS; do
    for mode in group single; do
      # shellcheck disable=SC2086
      rate=$(median_of ${rates[$w.$mode]})
      # shellcheck disable=SC2086
      printf '%-7s %7s | %-7s %9s %8s %12s | %9s %5s   rounds: %s/ ceiling %s\n' "$sync" "$w" "$mode" \
        "$rate" "$(median_of ${secs[$w.$mode]})" "$(median_of ${txs[$w.$mode]})" "$ceil_rate" \
        "$(fmt_ratio "$rate" "$ceil_rate")" "${rates[$w.$mode]}" "${ceilings[*]}"
    done
  done
  unset rates secs txs
done
echo "   ($ITEMS items per event, 2000 concurrent jobs; transactions: commits that stored them; medians of $ROUNDS rounds)"
