"""One scrapekeep job end to end, the way a user runs it: POST /v1/scrape,
poll /progress until terminal, then read the job.

    /usr/bin/python3 bench/scrape_api.py API_BASE KEY SITE_BASE chain|details

Pages/s is over the job's started_at..completed_at (what processing_time
reports, taken from the microsecond timestamps). Fails (exit 1) unless the
counters equal the site's truth. Prints one line:
    pages=N items=N seconds=S pages_per_s=X status=completed/done
"""

import datetime
import json
import sys
import time
import urllib.request


def call(method, url, key, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("X-API-Key", key)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
        return json.loads(raw)["data"] if raw else None


def seconds_of(stamp):
    return datetime.datetime.fromisoformat(stamp).timestamp()


def main():
    api, key, site, job = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    details = job == "details"
    selectors = {
        "item": "//article[@class='property']",
        "fields": {"title": ".//h2", "price": ".//span[@class='price']"},
    }
    if details:
        selectors["detail_link"] = ".//h2/a/@href"
        selectors["detail_fields"] = {"description": "//p[@class='desc']"}
    options = {
        "timeout": 1800,
        "max_items": 1000000,
        "follow_pagination": True,
        "max_pages": 50 if details else 300,
        "depth": 1 if details else 0,
        "selectors": selectors,
    }
    start_url = site + ("/listing?page=1" if details else "/chain?page=1")
    created = call("POST", api + "/v1/scrape", key, {"url": start_url, "options": options})
    job_id = created["job_id"]
    give_up = time.monotonic() + 600
    while True:
        progress = call("GET", api + "/v1/scrape/jobs/" + job_id + "/progress", key)
        if progress["status"] not in ("pending", "processing"):
            break
        if time.monotonic() > give_up:
            print("scrape_api: job did not finish in 10 minutes", file=sys.stderr)
            return 1
        time.sleep(0.02)
    row = call("GET", api + "/v1/scrape/jobs/" + job_id, key)
    c = row["counters"]
    pages = c["listing_pages_scraped"] + c["detail_pages_scraped"]
    seconds = seconds_of(row["completed_at"]) - seconds_of(row["started_at"])
    truth = (50, 1000, 1000) if details else (300, 0, 6000)
    got = (c["listing_pages_scraped"], c["detail_pages_scraped"], c["items_found"])
    status = f"{row['status']}/{row['completion_reason']}"
    print(f"pages={pages} items={c['items_found']} seconds={seconds:.3f} "
          f"pages_per_s={pages / seconds:.1f} status={status}")
    if got != truth or status != "completed/done":
        print(f"scrape_api: counters {got} differ from the site's truth {truth} ({status})",
              file=sys.stderr)
        return 1
    call("DELETE", api + "/v1/scrape/jobs/" + job_id, key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
