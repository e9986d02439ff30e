#!/usr/bin/env bash
# Scraping throughput: the site's own limit, scrapekeep and Scrapy on the same
# local listing site in the same run (run by tools/bench; see BENCHMARKS.md).
#
# Jobs: chain   = 300 listing pages, each found through the previous one's
#                 rel=next link (sequential by nature);
#       details = 50 listing pages whose 1000 items each have a detail page.
# Rows: site limit  a plain keep-alive client GETting the same pages (1 client
#                   for the chain, DETAIL_CONCURRENCY clients for details);
#       floor       the same client also decompressing and parsing every page
#                   with libxml2 (no XPath, no store): what any scraper that
#                   must parse a page to find the next one can at best reach;
#       scrapekeep  `scrapekeep serve --workers 1`, job created with POST
#                   /v1/scrape and polled until terminal; pages/s over
#                   started_at..completed_at; counters checked against the site;
#       scrapy      Debian's python3-scrapy, CONCURRENT_REQUESTS = DETAIL_CONCURRENCY;
#       and, to take scrapekeep's cost apart (in-process, bench/scrape_pool):
#       fetch+parse only (store writes left out), store writes only, and the
#       whole job with --synchronous full.
# Each figure is the median of ROUNDS rounds; the rows of a round run back to
# back. Env: BENCH_BIN (default build-bench), SCRAPE_ROUNDS (3),
# SCRAPE_DETAIL_CONCURRENCY (8), SCRAPE_SKIP_SCRAPY=1 to leave Scrapy out.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BENCH_BIN:-build-bench}
rounds=${SCRAPE_ROUNDS:-3}
conc=${SCRAPE_DETAIL_CONCURRENCY:-8}
py=/usr/bin/python3  # Debian's, where python3-scrapy lives

source bench/procs.sh

timeout 1800 "$bin/bench/scrape_site" --max-seconds 1790 >"$tmp/site.out" &
pids+=($!)
site_port=$(await_line "$tmp/site.out" '^[0-9]+$')
site="http://127.0.0.1:$site_port"
site_pid=$(pgrep -P "${pids[-1]}" scrape_site)

start_serve() {  # start_serve NAME EXTRA_ARGS...; sets api and key
  local name=$1
  shift
  timeout 1800 "$bin/scrapekeep" serve --db "$tmp/$name.db" --listen 127.0.0.1:0 --workers 1 \
    --detail-concurrency "$conc" "$@" >"$tmp/$name.out" 2>&1 &
  pids+=($!)
  api=$(await_line "$tmp/$name.out" 'serving on http://' | grep -oE 'http://[0-9.]+:[0-9]+')
  serve_pid=$(pgrep -P "${pids[-1]}" scrapekeep)
  key=$(await_line "$tmp/$name.out" '^ak_[0-9a-f]{40}$')
}
start_serve serve
api_normal=$api
key_normal=$key
serve_normal_pid=$serve_pid
start_serve serve_full --synchronous full
api_full=$api
key_full=$key

# field VALUE_LINE NAME -> the value of NAME=... in the line
field() { sed -nE "s/.*(^| )$2=([^ ]+).*/\2/p" <<<"$1"; }

declare -A results  # "row|job" -> space-separated pages/s of each round
record() {  # record ROW JOB LINE
  local v
  v=$(field "$3" pages_per_s)
  results["$1|$2"]+="${v:-nan} "
}

# CPU time per page, summed over the rounds: the site's process and the
# fetching side (site_client, or scrapekeep serve with its API), from
# /proc/PID/stat (user + system, in clock ticks).
tick_us=$((1000000 / $(getconf CLK_TCK)))
cpu_us_of() { awk -v t="$tick_us" '{print ($14 + $15) * t}' "/proc/$1/stat"; }
declare -A cpu_site cpu_own cpu_pages  # "row|job" -> sums
count_cpu() {  # count_cpu ROW JOB SITE_US OWN_US LINE
  local pages
  pages=$(field "$5" pages)
  [ -n "$pages" ] || return 0
  cpu_site["$1|$2"]=$((${cpu_site["$1|$2"]:-0} + $3))
  cpu_own["$1|$2"]=$((${cpu_own["$1|$2"]:-0} + $4))
  cpu_pages["$1|$2"]=$((${cpu_pages["$1|$2"]:-0} + pages))
}

for round in $(seq 1 "$rounds"); do
  echo "round $round/$rounds" >&2
  for job in chain details; do
    s0=$(cpu_us_of "$site_pid")
    line=$("$bin/bench/site_client" --base "$site" --job "$job" --clients "$conc")
    record site "$job" "$line"
    count_cpu site "$job" $(($(cpu_us_of "$site_pid") - s0)) "$(field "$line" cpu_us)" "$line"
    s0=$(cpu_us_of "$site_pid")
    line=$("$bin/bench/site_client" --base "$site" --job "$job" --clients "$conc" --parse)
    record floor "$job" "$line"
    count_cpu floor "$job" $(($(cpu_us_of "$site_pid") - s0)) "$(field "$line" cpu_us)" "$line"
    s0=$(cpu_us_of "$site_pid")
    k0=$(cpu_us_of "$serve_normal_pid")
    line=$("$py" bench/scrape_api.py "$api_normal" "$key_normal" "$site" "$job")
    record scrapekeep "$job" "$line"
    count_cpu scrapekeep "$job" $(($(cpu_us_of "$site_pid") - s0)) \
      $(($(cpu_us_of "$serve_normal_pid") - k0)) "$line"
    record full "$job" "$("$py" bench/scrape_api.py "$api_full" "$key_full" "$site" "$job")"
    record nostore "$job" "$("$bin/bench/scrape_pool" --base "$site" --job "$job" --mode nostore \
      --detail-concurrency "$conc")"
    record storeonly "$job" "$("$bin/bench/scrape_pool" --base "$site" --job "$job" --mode record \
      --db "$tmp/record-$round-$job.db")"
    if [ "${SCRAPE_SKIP_SCRAPY:-0}" != 1 ]; then
      record scrapy "$job" "$("$py" bench/scrape_spider.py "$site" "$job" "$conc" 2>"$tmp/scrapy.err" ||
        cat "$tmp/scrapy.err" >&2)"
    fi
  done
done

median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
fraction() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f\n", a / b }'; }

printf '\nScraping, pages/s (median of %s rounds; detail concurrency %s; %s cores)\n' "$rounds" "$conc" "$(nproc)"
printf '%-44s %12s %9s %12s %9s\n' "" "chain 300" "of limit" "details 1050" "of limit"
site_chain=$(median <<<"${results[site|chain]}")
site_details=$(median <<<"${results[site|details]}")
row() {  # row KEY LABEL
  local c d
  c=$(median <<<"${results[$1|chain]:-}")
  d=$(median <<<"${results[$1|details]:-}")
  printf '%-44s %12s %9s %12s %9s\n' "$2" "$c" "$(fraction "$c" "$site_chain")" "$d" "$(fraction "$d" "$site_details")"
}
row site "site limit (plain keep-alive client)"
row floor "floor (that client + libxml2 parse)"
row scrapekeep "scrapekeep serve (synchronous normal)"
row scrapy "scrapy $("$py" -c 'import scrapy; print(scrapy.__version__)' 2>/dev/null)"
echo "-- scrapekeep taken apart"
row full "scrapekeep serve --synchronous full"
row nostore "fetch + parse only (no store writes)"
row storeonly "store writes only (no fetch, no parse)"
per_page() { awk -v a="${1:-0}" -v n="${2:-0}" 'BEGIN { if (n == 0) print "-"; else printf "%.0f\n", a / n }'; }
cpu_row() {  # cpu_row KEY LABEL
  local j out=""
  for j in chain details; do
    out+=$(printf ' %9s %9s' "$(per_page "${cpu_site[$1|$j]:-}" "${cpu_pages[$1|$j]:-}")" \
      "$(per_page "${cpu_own[$1|$j]:-}" "${cpu_pages[$1|$j]:-}")")
  done
  printf '%-44s%s\n' "$2" "$out"
}
echo
echo "CPU time per page, us (all rounds; site = the site's process, own = the fetching side)"
printf '%-44s %9s %9s %9s %9s\n' "" "chain:site" "own" "det.:site" "own"
cpu_row site "site limit (own = the plain client)"
cpu_row floor "floor (own = the client, parsing)"
cpu_row scrapekeep "scrapekeep serve (own = serve, API included)"
printf 'scrapekeep serve peak RSS (VmHWM) after every round: %s MiB\n' \
  "$(awk '/^VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$serve_normal_pid/status")"
echo
echo "rounds (pages/s):"
for k in site floor scrapekeep scrapy full nostore storeonly; do
  for job in chain details; do
    [ -n "${results[$k|$job]:-}" ] && printf '  %-11s %-8s %s\n' "$k" "$job" "${results[$k|$job]}"
  done
done
