#!/usr/bin/env bash
# Lists at scale (not a part of issue 6; measured because their cost grew with
# the database): GET /v1/scrape/jobs on the database of 1M jobs, at growing
# offsets, and GET .../results on one job of 1M items, at growing offsets.
# Each query is sent BENCH_LISTS_RUNS times (default 5) after one warm-up;
# the median time is printed, beside the median of a single job's progress
# read on the same server (the floor of one request).
#   BENCH_BASELINE=path/to/another/scrapekeep  the same queries against it too
source "$(dirname "$0")/lib.sh"
RUNS="${BENCH_LISTS_RUNS:-5}"
BASELINE="${BENCH_BASELINE:-}"

# serve writes (recovery at start), so it gets copies.
jobs_db="$RUN_DIR/jobs.db"
cp "$(db_for 1000000)" "$jobs_db"
jobs_key="$(cat "$DATA/jobs_1000000.key")"
one_job="$(head -n 1 "$DATA/jobs_1000000.ids")"

items_db="$RUN_DIR/items.db"
"$BIN/bench/ingest" --db "$items_db" --mode ceiling --workers 1 --jobs 1 --events 200000 \
  --items 5 >/dev/null
items_key="$("$BIN/scrapekeep" keys create --db "$items_db" --org ingest-bench | tail -n 1)"
items_job="$(sqlite3 "$items_db" "SELECT job_id FROM jobs LIMIT 1")"

# median_ms PORT KEY PATH: median wall time of RUNS GETs, in ms.
median_ms() {
  local url="http://127.0.0.1:$1$3" i
  curl -s -o /dev/null -H "X-API-Key: $2" "$url"
  for i in $(seq 1 "$RUNS"); do
    curl -s -o /dev/null -w '%{time_total}\n' -H "X-API-Key: $2" "$url"
  done | sort -n | awk '{ t[NR] = $1 } END { printf "%.1f", t[int((NR + 1) / 2)] * 1000 }'
}

measure() {
  local label="$1" port key path
  SERVE_EXE="$2" start_serve "$jobs_db"
  port="$SERVE_PORT"
  printf '%-10s %-56s %9s\n' "$label" "query" "median ms"
  printf '%-10s %-56s %9s\n' "" "(floor) progress of one job" \
    "$(median_ms "$port" "$jobs_key" "/v1/scrape/jobs/$one_job/progress")"
  for q in "limit=100" "limit=100&offset=500000" "limit=100&offset=999900" \
    "status=completed&limit=100&offset=500000"; do
    printf '%-10s %-56s %9s\n' "" "jobs?$q (1M jobs)" "$(median_ms "$port" "$jobs_key" "/v1/scrape/jobs?$q")"
  done
  stop_pid "$SERVE_PID"
  SERVE_EXE="$2" start_serve "$items_db"
  port="$SERVE_PORT"
  for q in "limit=100" "limit=100&offset=500000" "limit=100&offset=999900"; do
    printf '%-10s %-56s %9s\n' "" "results?$q (1M items)" \
      "$(median_ms "$port" "$items_key" "/v1/scrape/jobs/$items_job/results?$q")"
  done
  stop_pid "$SERVE_PID"
}

measure serve "$BIN/scrapekeep"
if [ -n "$BASELINE" ]; then
  measure base "$BASELINE"
fi
