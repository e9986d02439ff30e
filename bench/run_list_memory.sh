#!/usr/bin/env bash
# Memory under many large pages at once: 1, 16 and 60 clients each asking twice
# for a page of 100 jobs of about 400 KB of selectors (bench/list_memory.py),
# on a fresh server each time (the first also creates the jobs); peak RSS of
# serve.
#   BENCH_BASELINE=path/to/another/scrapekeep  the same against it too
source "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "bench: python3 is required" >&2; exit 1; }
for exe in "$BIN/scrapekeep" ${BENCH_BASELINE:+"$BENCH_BASELINE"}; do
  echo "$exe"
  printf '%7s %7s %10s %7s %9s %9s\n' clients answers "KiB each" seconds "peak MiB" "end MiB"
  for clients in 1 16 60; do
    python3 bench/list_memory.py "$exe" "$RUN_DIR/lists.db" "$clients" 2
  done
  rm -f "$RUN_DIR"/lists.db*
done
