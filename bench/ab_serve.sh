#!/usr/bin/env bash
# Two builds of `scrapekeep serve` compared on one job, alternated, on one
# local site: each serve on its own database, jobs run as a user runs them
# (bench/scrape_api.py). Prints per job: which, pages/s (from the job's
# timestamps), serve's CPU in us per page (from /proc, 10 ms ticks).
#
#   bash bench/ab_serve.sh OLD_BUILD NEW_BUILD chain|details [JOBS_EACH]
#
# OLD_BUILD and NEW_BUILD are build folders with `scrapekeep` (and NEW_BUILD
# with bench/scrape_site). Everything binds 127.0.0.1 and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 job=$3 n=${4:-12}
source bench/procs.sh

timeout 1800 "$new/bench/scrape_site" --max-seconds 1790 >"$tmp/site.out" &
pids+=($!)
site="http://127.0.0.1:$(await_line "$tmp/site.out" '^[0-9]+$')"
declare -A api key pid
for which in old new; do
  build=$old
  [ "$which" = new ] && build=$new
  timeout 1800 "$build/scrapekeep" serve --db "$tmp/$which.db" --listen 127.0.0.1:0 \
    --workers 1 --detail-concurrency 8 >"$tmp/$which.out" 2>&1 &
  pids+=($!)
  api[$which]=$(await_line "$tmp/$which.out" 'serving on http://' |
    grep -oE 'http://[0-9.]+:[0-9]+')
  key[$which]=$(await_line "$tmp/$which.out" '^ak_[0-9a-f]{40}$')
  pid[$which]=$(pgrep -P "${pids[-1]}" scrapekeep)
done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for i in $(seq 1 "$n"); do
  order="old new"
  [ $((i % 2)) -eq 0 ] && order="new old"
  for which in $order; do
    t0=$(cpu_ticks "${pid[$which]}")
    line=$(/usr/bin/python3 bench/scrape_api.py "${api[$which]}" "${key[$which]}" "$site" "$job")
    t1=$(cpu_ticks "${pid[$which]}")
    pages=$(sed -nE 's/.*pages=([0-9]+) .*/\1/p' <<<"$line")
    pps=$(sed -nE 's/.*pages_per_s=([0-9.]+).*/\1/p' <<<"$line")
    hz=$(getconf CLK_TCK)
    echo "$which $pps $(awk -v a="$t0" -v b="$t1" -v p="$pages" -v hz="$hz" \
      'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / p }')"
  done
done
