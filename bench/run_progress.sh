#!/usr/bin/env bash
# Part 1: progress throughput and latency. wrk asks GET /v1/scrape/jobs/{id}/progress
# for random job ids over keep-alive connections, against `scrapekeep serve` on
# databases of BENCH_SIZES jobs, and against ceiling_server (a bare cpp-httplib
# server with the same settings answering a constant body of the same size),
# measured alternately in the same run. Then the library's keep-alive pitfalls,
# each measured against the ceiling server with one setting changed
# (BENCH_PITFALLS=0 leaves them out).
#   BENCH_SIZES="1000 100000 1000000" BENCH_CONNS="1 8 32 64" BENCH_SECONDS=10
# Before/after: BENCH_BASELINE=path/to/another/scrapekeep is measured too, right
# after serve in every cell (row "base"), and BENCH_ROUNDS=N repeats each cell.
# BENCH_BASELINE_DATA=dir gives the baseline its own copies of the databases
# (dir/jobs_N.db), for a baseline that refuses a schema serve has migrated to.
# serve does its own socket I/O (http/connection.cpp), not the library's: row
# "ceil-io" is the ceiling server over that same I/O, and its ratio is serve's
# against it (BENCH_CEILING_IO=0 leaves it out).
source "$(dirname "$0")/lib.sh"
SIZES="${BENCH_SIZES:-1000 100000 1000000}"
CONNS="${BENCH_CONNS:-1 8 32 64}"
SECS="${BENCH_SECONDS:-10}"
BASELINE="${BENCH_BASELINE:-}"
BASELINE_DATA="${BENCH_BASELINE_DATA:-}"
ROUNDS="${BENCH_ROUNDS:-1}"

printf '%-8s %5s | %9s %7s %7s | %9s %7s %7s | %5s %s\n' jobs conns "serve r/s" "p50 us" \
  "p99 us" "ceil r/s" "p50 us" "p99 us" ratio "errors(non2xx/socket)"
for n in $SIZES; do
  db="$(db_for "$n")"
  ids="$DATA/jobs_$n.ids"
  key="$(cat "$DATA/jobs_$n.key")"
  cat "$db" >/dev/null  # the file in the page cache: measure the server, not the disk
  start_serve "$db"
  first_id="$(head -n 1 "$ids")"
  body_bytes="$(curl -s -H "X-API-Key: $key" \
    "http://127.0.0.1:$SERVE_PORT/v1/scrape/jobs/$first_id/progress" | wc -c)"
  start_ceiling "$body_bytes"
  lib_ceiling=("$CEIL_PID" "$CEIL_PORT")
  if [ "${BENCH_CEILING_IO:-1}" != 0 ]; then
    start_ceiling "$body_bytes" --io scrapekeep
    io_ceiling=("$CEIL_PID" "$CEIL_PORT")
    wrk_progress "${io_ceiling[1]}" 8 2 "$ids" "$key" >/dev/null
  fi
  CEIL_PID="${lib_ceiling[0]}" CEIL_PORT="${lib_ceiling[1]}"
  # Warm them all (connections, statement caches, page cache).
  wrk_progress "$SERVE_PORT" 8 2 "$ids" "$key" >/dev/null
  wrk_progress "$CEIL_PORT" 8 2 "$ids" "$key" >/dev/null
  if [ -n "$BASELINE" ]; then
    main=("$SERVE_PID" "$SERVE_PORT" "$SERVE_CHILD")
    base_db="$db"
    if [ -n "$BASELINE_DATA" ]; then
      base_db="$BASELINE_DATA/jobs_$n.db"
      cat "$base_db" >/dev/null
    fi
    SERVE_EXE="$BASELINE" start_serve "$base_db"
    base=("$SERVE_PID" "$SERVE_PORT" "$SERVE_CHILD")
    SERVE_PID="${main[0]}" SERVE_PORT="${main[1]}" SERVE_CHILD="${main[2]}"
    wrk_progress "${base[1]}" 8 2 "$ids" "$key" >/dev/null
  fi
  for c in $CONNS; do
    for _ in $(seq 1 "$ROUNDS"); do
      read -r c_rps c_p50 c_p99 _ _ _ < <(wrk_progress "$CEIL_PORT" "$c" "$SECS" "$ids" "$key")
      read -r s_rps s_p50 s_p99 _ s_non2xx s_err < <(wrk_progress "$SERVE_PORT" "$c" "$SECS" "$ids" "$key")
      printf '%-8s %5s | %9.0f %7s %7s | %9.0f %7s %7s | %5s %s/%s\n' "$n" "$c" "$s_rps" "$s_p50" \
        "$s_p99" "$c_rps" "$c_p50" "$c_p99" "$(fmt_ratio "$s_rps" "$c_rps")" "$s_non2xx" "$s_err"
      if [ "${BENCH_CEILING_IO:-1}" != 0 ]; then
        read -r i_rps i_p50 i_p99 _ _ _ < <(wrk_progress "${io_ceiling[1]}" "$c" "$SECS" "$ids" "$key")
        printf '%-8s %5s | %25s | %9.0f %7s %7s | %5s\n' ceil-io "$c" "(serve, same I/O ceiling)" \
          "$i_rps" "$i_p50" "$i_p99" "$(fmt_ratio "$s_rps" "$i_rps")"
      fi
      if [ -n "$BASELINE" ]; then
        read -r b_rps b_p50 b_p99 _ b_non2xx b_err < <(wrk_progress "${base[1]}" "$c" "$SECS" "$ids" "$key")
        printf '%-8s %5s | %9.0f %7s %7s | %25s | %5s %s/%s\n' base "$c" "$b_rps" "$b_p50" \
          "$b_p99" "(same ceiling)" "$(fmt_ratio "$b_rps" "$c_rps")" "$b_non2xx" "$b_err"
      fi
    done
  done
  echo "   serve peak RSS (VmHWM) with $n jobs: $(serve_peak_mib) MiB;" \
    "body $body_bytes bytes"
  if [ -n "$BASELINE" ]; then
    echo "   base peak RSS (VmHWM) with $n jobs: $(($(vmhwm_kib "${base[2]}") / 1024)) MiB"
    stop_pid "${base[0]}"
  fi
  stop_pid "$SERVE_PID"
  stop_pid "$CEIL_PID"
  [ "${BENCH_CEILING_IO:-1}" != 0 ] && stop_pid "${io_ceiling[0]}"
done

# The keep-alive pitfalls, one setting at a time (ceiling server, $SECS s each).
[ "${BENCH_PITFALLS:-1}" = 0 ] && exit 0
n="${SIZES%% *}"
ids="$DATA/jobs_$n.ids"
key="$(cat "$DATA/jobs_$n.key")"
echo
printf '%-44s %5s | %9s %7s %7s\n' "ceiling_server setting" conns "r/s" "p50 us" "p99 us"
pitfall() {
  local label="$1" conns="$2"
  shift 2
  start_ceiling 512 "$@"
  read -r rps p50 p99 _ _ err < <(wrk_progress "$CEIL_PORT" "$conns" "$SECS" "$ids" "$key")
  printf '%-44s %5s | %9.0f %7s %7s%s\n' "$label" "$conns" "$rps" "$p50" "$p99" \
    "$([ "${err:-0}" != 0 ] && echo "  ($err socket errors)")"
  stop_pid "$CEIL_PID"
}
pitfall "as serve: nodelay, 64 threads, 100000/conn" 8
pitfall "TCP_NODELAY off (library default)" 8 --nodelay 0
pitfall "keep-alive max 5 requests (library default)" 8 --keep-alive-max 5
pitfall "as serve" 64
pitfall "8 threads (library default pool), 64 conns" 64 --threads 8
