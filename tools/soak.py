"""The job side of tools/soak (stdlib only; see tools/soak for the whole run).

    python3 tools/soak.py drive DIR SEED JOBS CREATE_SECONDS
        creates JOBS jobs through the API over CREATE_SECONDS seconds and
        cancels some of them half way; writes DIR/jobs.jsonl and
        DIR/cancels.jsonl. Retries through the server's restarts.
    python3 tools/soak.py watch DIR
        until DIR/stop exists, reads every job through the API and notes in
        DIR/watch.jsonl any status, counter, attempts or progress that steps
        back (the check reports them).
    python3 tools/soak.py active DIR
        prints how many jobs are pending or processing (read-only).
    python3 tools/soak.py check DIR SCRAPEKEEP
        checks every job of DIR/soak.db against the site's shape, its stored
        events and the API; prints one line per violation and a summary;
        exit 1 on any violation.

DIR holds soak.db, api_port, key, site_port and interrupted.txt (job ids
that were processing in a process killed or stopped while they were not
terminal; tools/soak writes it).
"""

import json
import math
import os
import random
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

SITE_PAGES = {"/chain": 300, "/listing": 50}
PER_PAGE = 20
SELECTORS = {
    "item": "//article[@class='property']",
    "fields": {"title": ".//h2", "price": ".//span[@class='price']"},
}
DETAIL_SELECTORS = {
    "detail_link": ".//h2/a/@href",
    "detail_fields": {"description": "//p[@class='desc']"},
}


def read(dir_, name):
    with open(os.path.join(dir_, name)) as f:
        return f.read().strip()


class Api:
    """The API of whichever serve runs now (its port may change on restart)."""

    def __init__(self, dir_):
        self.dir = dir_
        self.key = read(dir_, "key")

    def call(self, method, path, body=None, give_up=60.0):
        """(status, data or error object, lost): retries while the server is
        down or restarting; `lost` is True when an earlier try may have
        reached the server without its answer reaching us."""
        lost = False
        until = time.monotonic() + give_up
        while True:
            url = "http://127.0.0.1:%s%s" % (read(self.dir, "api_port"), path)
            data = json.dumps(body).encode() if body is not None else None
            req = urllib.request.Request(url, data=data, method=method)
            req.add_header("X-API-Key", self.key)
            if data is not None:
                req.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return resp.status, json.loads(resp.read())["data"], lost
            except urllib.error.HTTPError as e:
                raw = e.read()
                if e.code == 503:
                    lost = True
                else:
                    try:
                        return e.code, json.loads(raw)["error"], lost
                    except ValueError:
                        return e.code, {"raw": raw[:200].decode(errors="replace")}, lost
            except (OSError, ValueError):
                # Refused (no server), reset or cut short (killed mid-answer).
                lost = lost or method != "GET"
            if time.monotonic() > until:
                raise RuntimeError("%s %s: no answer for %.0f s" % (method, path, give_up))
            time.sleep(0.1)


def job_mix(rng, site, n):
    """n (label, body, cancel_after_s or None) in random order."""
    out = []
    for i in range(n):
        kind = ["chain_full", "chain_pages", "chain_items", "chain_tail", "chain_one",
                "details", "details_items", "timeout", "cancel_chain", "cancel_details"][i % 10]
        opts = {"timeout": 1800, "max_items": 1000000, "follow_pagination": True,
                "max_pages": 10000, "depth": 0, "selectors": dict(SELECTORS)}
        path, start, cancel = "/chain", 1, None
        if kind == "chain_pages":
            opts["max_pages"] = rng.randint(2, 150)
        elif kind == "chain_items":
            opts["max_items"] = rng.randint(1, 3000)
        elif kind == "chain_tail":
            start = rng.randint(200, 300)
            opts["max_pages"] = rng.randint(50, 150)
        elif kind == "chain_one":
            opts["follow_pagination"] = rng.random() < 0.5
            opts["max_pages"] = 1 if opts["follow_pagination"] else 10
        elif kind.startswith("details") or kind == "cancel_details":
            path = "/listing"
            opts["depth"] = 1
            opts["max_pages"] = rng.randint(3, 50)
            opts["selectors"].update(DETAIL_SELECTORS)
            if kind == "details_items":
                opts["max_items"] = rng.randint(1, 600)
        elif kind == "timeout":
            opts["timeout"] = rng.randint(3, 10)
        if kind.startswith("cancel"):
            cancel = rng.uniform(0.5, 8.0)
        # /j/sN: the site logs each job's requests under its own tag.
        body = {"url": "%s/j/s%d%s?page=%d" % (site, i, path, start), "options": opts}
        out.append((kind, body, cancel))
    rng.shuffle(out)
    return out


def append(path, record):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def drive(dir_, seed, jobs, create_seconds):
    rng = random.Random(seed)
    api = Api(dir_)
    site = "http://127.0.0.1:%s" % read(dir_, "site_port")
    mix = job_mix(rng, site, jobs)
    begin = time.monotonic()
    create_at = sorted(rng.uniform(0, create_seconds) for _ in mix)
    cancels = []  # (when, job_id)
    for (kind, body, cancel), at in zip(mix, create_at):
        while cancels and cancels[0][0] <= at:
            do_cancel(api, dir_, begin, cancels.pop(0)[1])
        time.sleep(max(0.0, begin + at - time.monotonic()))
        status, data, lost = api.call("POST", "/v1/scrape", body)
        if status != 201:
            print("soak: creating a %s job answered %d: %s" % (kind, status, data), file=sys.stderr)
            continue
        append(os.path.join(dir_, "jobs.jsonl"),
               {"job_id": data["job_id"], "kind": kind, "retried": lost})
        if cancel is not None:
            cancels.append((at + cancel, data["job_id"]))
            cancels.sort()
    for when, job_id in cancels:
        time.sleep(max(0.0, begin + when - time.monotonic()))
        do_cancel(api, dir_, begin, job_id)


def do_cancel(api, dir_, begin, job_id):
    status, data, lost = api.call("POST", "/v1/scrape/jobs/%s/cancel" % job_id)
    append(os.path.join(dir_, "cancels.jsonl"),
           {"job_id": job_id, "status": status, "lost": lost,
            "job_status": data.get("status") if status == 200 else None,
            "at": time.monotonic() - begin, "answered_us": int(time.time() * 1e6)})


COUNTERS = ("listing_pages_scraped", "listing_pages_failed", "detail_pages_discovered",
            "detail_pages_scraped", "detail_pages_failed", "items_found")
# What a status seen may be next time (a short job may pass processing unseen).
NEXT_STATUS = {"pending": {"pending", "processing", "completed", "failed", "cancelled"},
               "processing": {"processing", "completed", "failed", "cancelled"}}


def watch(dir_):
    """Until DIR/stop exists, reads every job through the API about three
    times a second and appends to DIR/watch.jsonl each step back seen: a
    status that moves backwards or leaves a terminal state, a counter,
    attempts or a progress figure that drops, a time that changes once set."""
    api = Api(dir_)
    seen, progress_seen = {}, {}
    reads = 0

    def bad(job_id, invariant, detail):
        append(os.path.join(dir_, "watch.jsonl"),
               {"job_id": job_id, "invariant": invariant, "detail": detail})

    while not os.path.exists(os.path.join(dir_, "stop")):
        time.sleep(0.3)
        try:
            jobs, offset = [], 0
            while True:
                code, data, _ = api.call("GET", "/v1/scrape/jobs?limit=100&offset=%d" % offset,
                                         give_up=5)
                if code != 200:
                    break
                jobs += data["jobs"]
                offset += 100
                if offset >= data["total"]:
                    break
            for job in jobs:
                job_id = job["job_id"]
                before = seen.get(job_id)
                seen[job_id] = job
                # Terminal jobs once more, to see where their figures froze.
                if job["status"] in ("pending", "processing") or \
                        progress_seen.get(job_id, {}).get("status") in ("pending", "processing"):
                    code, p, _ = api.call("GET", "/v1/scrape/jobs/%s/progress" % job_id,
                                          give_up=5)
                    if code == 200:
                        p_before = progress_seen.get(job_id)
                        progress_seen[job_id] = p
                        if p_before is not None:
                            for f in ("progress_percentage", "total_pages_scraped",
                                      "total_properties_found", "current_page"):
                                # current_page is the page being fetched while
                                # processing, the last one stored after (README).
                                if p[f] < p_before[f] and not (
                                        f == "current_page" and p["status"] != "processing"):
                                    bad(job_id, "progress %s never drops" % f,
                                        "%r then %r (%s then %s)" % (
                                            p_before[f], p[f], p_before["status"], p["status"]))
                reads += 1
                if before is None:
                    continue
                if before["status"] != job["status"] and \
                        job["status"] not in NEXT_STATUS.get(before["status"], set()):
                    bad(job_id, "status moves forward only",
                        "%s then %s" % (before["status"], job["status"]))
                for name in COUNTERS:
                    if job["counters"][name] < before["counters"][name]:
                        bad(job_id, "counter %s never drops" % name, "%d then %d" % (
                            before["counters"][name], job["counters"][name]))
                if job["attempts"] < before["attempts"]:
                    bad(job_id, "attempts never drop",
                        "%d then %d" % (before["attempts"], job["attempts"]))
                for name in ("started_at", "completed_at", "completion_reason"):
                    if before[name] is not None and job[name] != before[name]:
                        bad(job_id, "%s never changes once set" % name,
                            "%s then %s" % (before[name], job[name]))
        except RuntimeError:
            pass  # serve down longer than a few seconds: read again
    print("watch: %d job reads" % reads)


def connect(dir_):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(dir_, "soak.db"), uri=True, timeout=30)
    db.row_factory = sqlite3.Row
    return db


def active(dir_):
    db = connect(dir_)
    print(db.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'processing')")
          .fetchone()[0])


def jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Checker:
    def __init__(self, dir_, exe):
        self.dir, self.exe = dir_, exe
        self.db = connect(dir_)
        self.api = Api(dir_)
        self.violations = []
        self.job_id = None
        # Each tag's requests as the site logged them: (micros, target).
        self.requests = {}
        self.stats = {"requests": 0, "stored": 0}
        log = os.path.join(dir_, "requests.log")
        if os.path.exists(log):
            with open(log) as f:
                for line in f:
                    t, target = line.split(" ", 1)
                    m = re.match(r"(/j/\w+)/", target)
                    if m:
                        self.requests.setdefault(m.group(1), []).append((int(t), target.strip()))

    def bad(self, invariant, detail):
        self.violations.append((self.job_id or "-", invariant, detail))
        print("VIOLATION %s %s: %s" % (self.job_id or "-", invariant, detail), flush=True)

    def expect(self, invariant, got, want):
        if got != want:
            self.bad(invariant, "got %r, expected %r" % (got, want))
            return False
        return True

    def run(self):
        recorded = {j["job_id"]: j for j in jsonl(os.path.join(self.dir, "jobs.jsonl"))}
        cancels = {}
        for c in jsonl(os.path.join(self.dir, "cancels.jsonl")):
            cancels[c["job_id"]] = c
        interrupted = set()
        path = os.path.join(self.dir, "interrupted.txt")
        if os.path.exists(path):
            with open(path) as f:
                interrupted = {line.strip() for line in f if line.strip()}
        rows = self.db.execute("SELECT * FROM jobs ORDER BY created_at").fetchall()
        # Jobs of one tag (a create sent again) cannot be told apart at the site.
        self.tags = {}
        for r in rows:
            m = re.search(r"(/j/\w+)/", r["url"])
            if m:
                self.tags[m.group(1)] = self.tags.get(m.group(1), 0) + 1
        tally = {}
        unrecorded = 0
        for row in rows:
            self.job_id = row["job_id"]
            kind = recorded.get(self.job_id, {}).get("kind", "unrecorded")
            if self.job_id not in recorded:
                # A create whose answer a kill cut off, sent again: not a
                # violation (the API has no idempotency key), checked as any job.
                unrecorded += 1
            outcome = "%s/%s" % (row["status"], row["completion_reason"])
            tally.setdefault(kind, {}).setdefault(outcome, 0)
            tally[kind][outcome] += 1
            self.check_job(row, cancels.get(self.job_id), self.job_id in interrupted)
        self.job_id = None
        for job_id in recorded:
            if not any(r["job_id"] == job_id for r in rows):
                self.job_id = job_id
                self.bad("job stored", "created (201) but not in the database")
        self.job_id = None
        self.check_inspect_check()
        for w in jsonl(os.path.join(self.dir, "watch.jsonl")):
            self.job_id = w["job_id"]
            self.bad("while running: " + w["invariant"], w["detail"])
        self.job_id = None
        print("soak: %d jobs checked (%d interrupted by a kill or stop, %d cancels sent, "
              "%d created by a POST whose answer was lost):"
              % (len(rows), len(interrupted & {r["job_id"] for r in rows}), len(cancels),
                 unrecorded))
        print("  site: %d page requests for %d pages stored (the rest: pages in flight at a "
              "kill, fetched again, or dropped at a cancel or timeout)"
              % (self.stats["requests"], self.stats["stored"]))
        attempts = [r["attempts"] for r in rows]
        if attempts:
            print("  attempts per job: %d to %d, %d jobs taken more than once"
                  % (min(attempts), max(attempts), sum(a > 1 for a in attempts)))
        for kind in sorted(tally):
            print("  %-15s %s" % (kind, ", ".join(
                "%s %d" % (k, v) for k, v in sorted(tally[kind].items()))))
        if self.violations:
            print("soak: %d violations" % len(self.violations))
            return 1
        print("soak: no violations")
        return 0

    def check_job(self, row, cancel, interrupted):
        # The row, its events and its items from one snapshot (a job still
        # running at the time limit goes on changing).
        self.db.execute("BEGIN")
        row = self.db.execute("SELECT * FROM jobs WHERE job_id = ?", (self.job_id,)).fetchone()
        events = self.db.execute(
            "SELECT * FROM page_events WHERE job_id = ? ORDER BY seq", (self.job_id,)).fetchall()
        items = self.db.execute(
            "SELECT * FROM result_items WHERE job_id = ? ORDER BY item_index",
            (self.job_id,)).fetchall()
        self.db.execute("COMMIT")
        url = urllib.parse.urlsplit(row["url"])
        tag, path = re.fullmatch(r"(/j/\w+)?(/chain|/listing)", url.path).groups()
        start = int(urllib.parse.parse_qs(url.query)["page"][0])
        base = "%s://%s%s" % (url.scheme, url.netloc, url.path)
        available = SITE_PAGES[path] - start + 1
        max_pages, max_items = row["max_pages"], row["max_items"]
        pages_planned = min(max_pages, available) if row["follow_pagination"] else 1
        want_pages = min(pages_planned, math.ceil(max_items / PER_PAGE))
        want_items = min(pages_planned * PER_PAGE, max_items)
        depth = row["depth"]
        status, reason = row["status"], row["completion_reason"]
        listing = [e for e in events if e["kind"] == "listing"]
        detail = [e for e in events if e["kind"] == "detail"]

        # The job's own event numbers (the API's seq): 1..n in the order stored.
        self.expect("event numbers 1..n in the order stored", [e["job_seq"] for e in events],
                    list(range(1, len(events) + 1)))

        # Listing pages: 1..n, each once, in order, the site's pages from `start`.
        numbers = [e["page_number"] for e in listing]
        n = len(listing)
        self.expect("listing pages stored once each, 1..n in order", numbers,
                    list(range(1, n + 1)))
        for e in listing:
            want_url = "%s?page=%d" % (base, start + e["page_number"] - 1)
            if e["url"] != want_url or e["outcome"] != "ok":
                self.bad("listing event", "page %d: %s %s (%s), expected %s ok" % (
                    e["page_number"], e["url"], e["outcome"], e["error"], want_url))
        per_page = [e["items_found"] for e in listing]
        if any(c != PER_PAGE for c in per_page[:-1]) or (per_page and not 0 < per_page[-1] <= PER_PAGE):
            self.bad("items per listing page", "%r" % per_page)
        for e in listing:
            if e["detail_links"] != (e["items_found"] if depth == 1 else 0):
                self.bad("detail links per listing page", "page %d: %d links, %d items" % (
                    e["page_number"], e["detail_links"], e["items_found"]))

        # Counters against the stored events and items.
        sums = {
            "listing_pages_scraped": sum(e["outcome"] == "ok" for e in listing),
            "listing_pages_failed": sum(e["outcome"] == "failed" for e in listing),
            "detail_pages_discovered": sum(e["detail_links"] for e in listing),
            "detail_pages_scraped": sum(e["outcome"] == "ok" for e in detail),
            "detail_pages_failed": sum(e["outcome"] == "failed" for e in detail),
            "items_found": sum(e["items_found"] for e in listing),
        }
        for name, value in sums.items():
            self.expect("counter %s == stored events" % name, row[name], value)
        self.expect("items_found == result items", row["items_found"], len(items))

        # Items: numbered 0..n-1, each on its page, in the site's order.
        for i, it in enumerate(items):
            page = i // PER_PAGE + 1
            site_id = "%d-%d" % (start + page - 1, i % PER_PAGE + 1)
            fields = json.loads(it["fields"])
            if (it["item_index"] != i or it["page_number"] != page
                    or fields.get("title") != "Title " + site_id
                    or it["page_url"] != "%s?page=%d" % (base, start + page - 1)):
                self.bad("result item", "index %d (page %d, %s): expected item %d of page %d, "
                         "Title %s" % (it["item_index"], it["page_number"], fields.get("title"),
                                       i, page, site_id))
                break

        # Detail pages: one per item at most, merged into that item.
        by_item = {}
        for e in detail:
            if e["item_index"] in by_item:
                self.bad("detail page stored once", "item %d twice" % e["item_index"])
            by_item[e["item_index"]] = e
        for it in items:
            e = by_item.get(it["item_index"])
            title = json.loads(it["fields"]).get("title", "")
            site_id = title.replace("Title ", "")
            merged = json.loads(it["detail"]) if it["detail"] is not None else None
            if e is None:
                if merged is not None:
                    self.bad("detail merged", "item %d has detail without a detail event"
                             % it["item_index"])
                continue
            if not e["url"].endswith("/detail/" + site_id) or e["outcome"] != "ok":
                self.bad("detail event", "item %d: %s %s (%s)" % (
                    it["item_index"], e["url"], e["outcome"], e["error"]))
            if merged != {"description": "Description of " + site_id}:
                self.bad("detail merged", "item %d: %r" % (it["item_index"], merged))
        extra = set(by_item) - {it["item_index"] for it in items}
        if extra:
            self.bad("detail event of a stored item", "items %s" % sorted(extra)[:5])

        # A terminal state is never reported before the work it reports is stored.
        if row["completed_at"] is not None and events and \
                row["completed_at"] < max(e["finished_at"] for e in events):
            self.bad("completed_at after the last event", "completed %d us before an event ended"
                     % (max(e["finished_at"] for e in events) - row["completed_at"]))
        if events and (row["started_at"] is None
                       or row["started_at"] > min(e["started_at"] for e in events)):
            self.bad("started_at before the first event", "started_at %r" % row["started_at"])

        # The outcome the site's shape implies.
        if status in ("pending", "processing"):
            self.bad("terminal", "still %s at the time limit (%d pages, %d items)" % (
                status, n, row["items_found"]))
        elif status == "failed":
            self.bad("no failed job", "failed: %s" % row["error_message"])
        elif status == "cancelled":
            if cancel is None:
                self.bad("cancelled only through the API", "cancelled but no cancel was sent")
        elif reason == "timeout":
            if row["timeout_s"] > 60:
                self.bad("timeout", "timed out with a timeout of %d s" % row["timeout_s"])
            elif row["completed_at"] < row["started_at"] + row["timeout_s"] * 1000000:
                self.bad("timeout", "completed %.3f s after start, its timeout is %d s" % (
                    (row["completed_at"] - row["started_at"]) / 1e6, row["timeout_s"]))
        elif reason == "done":
            self.expect("done: listing pages the site has", n, want_pages)
            self.expect("done: items the site has", row["items_found"], want_items)
            if depth == 1:
                self.expect("done: detail pages discovered", row["detail_pages_discovered"],
                            want_items)
                self.expect("done: detail pages scraped", row["detail_pages_scraped"], want_items)
            self.expect("done: pagination_complete", row["pagination_complete"], 1)
            if interrupted and row["attempts"] < 2:
                self.bad("attempts after an interruption", "attempts %d" % row["attempts"])
        if cancel is not None:
            if cancel["status"] == 200 and status != "cancelled":
                self.bad("cancel answered 200", "but the job is %s/%s" % (status, reason))
            if cancel["status"] == 200 and cancel["job_status"] != "cancelled":
                self.bad("cancel answer", "its job object says %s" % cancel["job_status"])
            if cancel["status"] not in (200, 409):
                self.bad("cancel answer", "HTTP %d" % cancel["status"])
            if cancel["status"] == 409 and not cancel["lost"] and status == "cancelled":
                self.bad("cancel answered 409", "but the job was cancelled")

        if tag and self.tags.get(tag) == 1:
            self.check_requests(row, tag + path, start, listing, detail, cancel)
        self.check_api(row, n, events)

    def check_requests(self, row, prefix, start, listing, detail, cancel):
        """What the site saw of the job: no stored page asked for again, no
        request after the job ended or was cancelled, none beyond a done
        job's pages."""
        reqs = self.requests.get(prefix.rsplit("/", 1)[0], [])
        stored = {"%s?page=%d" % (prefix, start + e["page_number"] - 1): e for e in listing}
        tag = prefix.rsplit("/", 1)[0]
        for e in detail:
            stored[tag + e["url"][e["url"].index("/detail/"):]] = e
        done = row["completion_reason"] == "done"
        after_end = []
        self.stats["requests"] += len(reqs)
        self.stats["stored"] += len(stored)
        for t, target in reqs:
            e = stored.get(target)
            if e is not None and t > e["finished_at"]:
                self.bad("stored page never asked for again", "%s asked for %.3f s after the "
                         "answer stored for it" % (target, (t - e["finished_at"]) / 1e6))
            if e is None and done:
                self.bad("a done job asks only for pages it stores", "%s asked for, never stored"
                         % target)
            if row["completed_at"] is not None and t > row["completed_at"] + 200000:
                after_end.append(target)
            if cancel and cancel["status"] == 200 and t > cancel["answered_us"] + 200000:
                self.bad("no request after a cancel", "%s asked for %.3f s after the cancel was "
                         "answered" % (target, (t - cancel["answered_us"]) / 1e6))
        if after_end:
            self.bad("no request after the job ended", "%d requests more than 0.2 s after "
                     "completed_at, the first %s" % (len(after_end), after_end[0]))

    def check_api(self, row, n, events):
        if row["status"] in ("pending", "processing"):
            return  # it changes under us
        code, job, _ = self.api.call("GET", "/v1/scrape/jobs/" + self.job_id)
        if not self.expect("GET job", code, 200):
            return
        self.expect("API status", (job["status"], job["completion_reason"]),
                    (row["status"], row["completion_reason"]))
        self.expect("API attempts", job["attempts"], row["attempts"])
        for name, value in job["counters"].items():
            self.expect("API counter %s" % name, value, row[name])
        code, results, _ = self.api.call(
            "GET", "/v1/scrape/jobs/%s/results?limit=1" % self.job_id)
        self.expect("API results total == items_found", results.get("total"), row["items_found"])
        code, progress, _ = self.api.call("GET", "/v1/scrape/jobs/%s/progress" % self.job_id)
        if not self.expect("GET progress", code, 200):
            return
        ok_pages = row["listing_pages_scraped"] + row["detail_pages_scraped"]
        self.expect("progress total_pages_scraped", progress["total_pages_scraped"], ok_pages)
        self.expect("progress total_properties_found", progress["total_properties_found"],
                    row["items_found"])
        if row["status"] == "completed":
            self.expect("progress 100 when completed", progress["progress_percentage"], 100.0)
        if row["status"] in ("completed", "failed", "cancelled"):
            if row["started_at"] is not None:
                self.expect("progress current_page == last listing page", progress["current_page"],
                            n)
            self.expect("progress pagination_complete when done",
                        progress["pagination_complete"],
                        True if row["completion_reason"] == "done" else progress["pagination_complete"])
            out = subprocess.run([self.exe, "inspect", "--db", os.path.join(self.dir, "soak.db"),
                                  "progress", self.job_id, "--json"],
                                 capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                self.bad("inspect progress", "exit %d: %s" % (out.returncode, out.stderr.strip()))
            else:
                offline = json.loads(out.stdout)
                offline = offline.get("data", offline)
                if offline != progress:
                    diff = {k: (progress.get(k), offline.get(k))
                            for k in set(progress) | set(offline)
                            if progress.get(k) != offline.get(k)}
                    self.bad("inspect progress == API progress", "API vs inspect: %r" % diff)

    def check_inspect_check(self):
        out = subprocess.run([self.exe, "inspect", "--db", os.path.join(self.dir, "soak.db"),
                              "check"], capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            self.bad("inspect check", "exit %d: %s %s" % (out.returncode, out.stdout.strip(),
                                                         out.stderr.strip()))


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "drive" and len(sys.argv) == 6:
        drive(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
        return 0
    if cmd == "watch" and len(sys.argv) == 3:
        watch(sys.argv[2])
        return 0
    if cmd == "active" and len(sys.argv) == 3:
        active(sys.argv[2])
        return 0
    if cmd == "check" and len(sys.argv) == 4:
        return Checker(sys.argv[2], sys.argv[3]).run()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
