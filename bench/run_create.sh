#!/usr/bin/env bash
# Job creation: wrk posts one small job per request (POST /v1/scrape) to
# `scrapekeep serve --workers 0` on a fresh database, for BENCH_SECONDS with
# each of BENCH_CONNS connections. Each creation is followed by an fsync of
# the WAL (README, "Durability"), so this measures that fsync as much as the
# server: compare rows of one run only.
#   BENCH_CONNS="1 8" BENCH_SECONDS=4 BENCH_ROUNDS=3
# Before/after: BENCH_BASELINE=path/to/another/scrapekeep is measured right
# after serve in every round (row "base"), alternated.
source "$(dirname "$0")/lib.sh"
CONNS="${BENCH_CONNS:-1 8}"
SECS="${BENCH_SECONDS:-4}"
ROUNDS="${BENCH_ROUNDS:-3}"
BASELINE="${BENCH_BASELINE:-}"

# create_round EXE CONNS: one fresh database, one wrk run; prints wrk's RESULT.
create_round() {
  local exe="$1" conns="$2" threads=2 db
  [ "$conns" -lt 2 ] && threads=1
  db="$(mktemp -d "$RUN_DIR/create.XXXXXX")/c.db"
  SERVE_EXE="$exe" start_serve "$db"
  local key=""
  for _ in $(seq 1 500); do
    key="$(grep -ho 'ak_[0-9a-f]\{40\}' "$RUN_DIR"/serve.*.log 2>/dev/null | tail -n 1)"
    [ -n "$key" ] && break
    sleep 0.01
  done
  WRK_KEY="$key" timeout $((SECS + 30)) wrk -t"$threads" -c"$conns" -d"${SECS}s" --timeout 5s \
    -s bench/wrk_create_job.lua "http://127.0.0.1:$SERVE_PORT/" | sed -n 's/^RESULT //p'
  stop_pid "$SERVE_PID"
  rm -f "$RUN_DIR"/serve.*.log
}

printf '%-5s %5s %5s | %10s %8s %8s | %s\n' who conns round "jobs/s" "p50 us" "p99 us" \
  "errors(non201/socket)"
for conns in $CONNS; do
  for round in $(seq 1 "$ROUNDS"); do
    whos=(serve)
    [ -n "$BASELINE" ] && whos+=(base)
    for who in "${whos[@]}"; do
      exe="$BIN/scrapekeep"
      [ "$who" = base ] && exe="$BASELINE"
      read -r rps p50 p99 _ non2xx sockerr <<<"$(create_round "$exe" "$conns")"
      printf '%-5s %5s %5s | %10s %8s %8s | %s/%s\n' "$who" "$conns" "$round" "$rps" "$p50" \
        "$p99" "$non2xx" "$sockerr"
    done
  done
done
