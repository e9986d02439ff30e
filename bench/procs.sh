# Sourced by bench/run_scrape.sh and bench/ab_serve.sh (which need no wrk,
# unlike lib.sh): a temporary folder `tmp` and the processes whose pids they
# add to `pids`, removed and killed on exit; and await_line.
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# await_line FILE PATTERN: waits (10 s at most) until FILE has a line matching
# PATTERN and prints the first such line; otherwise says so with FILE.
await_line() {
  local file=$1 pattern=$2
  for _ in $(seq 1 200); do
    if grep -qE "$pattern" "$file" 2>/dev/null; then
      grep -E "$pattern" "$file" | head -1
      return 0
    fi
    sleep 0.05
  done
  echo "$(basename "$0"): timed out waiting for '$pattern' in $file:" >&2
  cat "$file" >&2
  return 1
}
