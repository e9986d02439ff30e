#!/usr/bin/env bash
# Many tiny jobs: TINY_JOBS jobs of one listing page each (20 items, no
# pagination, no detail pages) on the local benchmark site, run by
# `scrapekeep serve --workers W` for each W of TINY_WORKERS. Each job costs a
# claim, a fetch, a page write and a synced end (README, "Durability"), so
# this measures what a job costs beyond its pages. The jobs are created first
# by an API-only server (not timed); then serve with workers runs them all;
# jobs/s over the first started_at .. the last completed_at, from the file.
#   TINY_JOBS=2000 TINY_WORKERS="2 8" TINY_ROUNDS=3
# Before/after: BENCH_BASELINE=path/to/another/scrapekeep runs the same
# rounds right after (row "base"), alternated.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BENCH_BIN:-build-bench}
jobs=${TINY_JOBS:-2000}
workers_list=${TINY_WORKERS:-2 8}
rounds=${TINY_ROUNDS:-3}
baseline=${BENCH_BASELINE:-}
py=/usr/bin/python3

source bench/procs.sh

timeout 1800 "$bin/bench/scrape_site" --max-seconds 1790 >"$tmp/site.out" &
pids+=($!)
site="http://127.0.0.1:$(await_line "$tmp/site.out" '^[0-9]+$')"

# serve_on EXE DB WORKERS: starts serve; sets api, key (if printed), spid.
serve_on() {
  local out
  out=$(mktemp "$tmp/serve.XXXXXX")
  timeout 1800 "$1" serve --db "$2" --listen 127.0.0.1:0 --workers "$3" >"$out" 2>&1 &
  spid=$!
  pids+=("$spid")
  api=$(await_line "$out" 'serving on http://' | grep -oE 'http://[0-9.]+:[0-9]+')
  key=$(grep -oE '^ak_[0-9a-f]{40}$' "$out" | head -1 || true)
}

# tiny_round EXE WORKERS: prints jobs/s and the jobs' states.
tiny_round() {
  local exe=$1 workers=$2 db
  db="$(mktemp -d "$tmp/db.XXXXXX")/t.db"
  serve_on "$exe" "$db" 0
  "$py" - "$api" "$key" "$site" "$jobs" <<'EOF'
import http.client, json, sys, urllib.parse
api, key, site, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
u = urllib.parse.urlsplit(api)
c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
for i in range(n):
    body = json.dumps({"url": f"{site}/chain?page={i % 300 + 1}", "options": {
        "max_items": 1000, "selectors": {"item": "//article[@class='property']",
        "fields": {"title": ".//h2", "price": ".//span[@class='price']"}}}})
    c.request("POST", "/v1/scrape", body, {"X-API-Key": key, "Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 201:
        sys.exit(f"create: {r.status}")
EOF
  kill "$spid"
  wait "$spid" 2>/dev/null || true
  serve_on "$exe" "$db" "$workers"
  local left=1
  for _ in $(seq 1 6000); do
    left=$(sqlite3 "file:$db?mode=ro" \
      "SELECT count(*) FROM jobs WHERE status IN ('pending','processing')" 2>/dev/null || echo 1)
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  kill "$spid"
  wait "$spid" 2>/dev/null || true
  sqlite3 "$db" "SELECT printf('%.1f', count(*) * 1e6 / (max(completed_at) - min(started_at))),
    group_concat(DISTINCT status || ':' || completion_reason), sum(items_found)
    FROM jobs" | tr '|' ' '
  rm -rf "$(dirname "$db")"
}

printf '%-5s %7s %5s | %8s | %s\n' who workers round "jobs/s" "states items"
for w in $workers_list; do
  for round in $(seq 1 "$rounds"); do
    whos=(serve)
    [ -n "$baseline" ] && whos+=(base)
    for who in "${whos[@]}"; do
      exe="$bin/scrapekeep"
      [ "$who" = base ] && exe="$baseline"
      read -r rate states items <<<"$(tiny_round "$exe" "$w")"
      printf '%-5s %7s %5s | %8s | %s %s\n' "$who" "$w" "$round" "$rate" "$states" "$items"
    done
  done
done
