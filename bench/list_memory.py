"""Memory of one `scrapekeep serve` while many clients ask at once for large
pages of jobs: 100 jobs of about 400 KB of selectors each (100 fields and 100
detail fields of 2,000 characters), each client asking ROUNDS times for
GET /v1/scrape/jobs?limit=100. Prints the answers' size, the wall time and
the server's peak and final RSS (VmHWM, VmRSS).

usage: list_memory.py SCRAPEKEEP DB CLIENTS ROUNDS   (DB is made if missing)
"""
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

binary, db, clients, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fresh = not os.path.exists(db)
serve = subprocess.Popen(["timeout", "600", binary, "serve", "--db", db, "--listen",
                          "127.0.0.1:0", "--workers", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
key, port = None, None
for line in serve.stdout:
    key = key or (re.search(r"\bak_[0-9a-f]{40}\b", line) or [None])[0]
    found = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
    if found:
        port = found.group(1)
        break
if fresh:
    open(db + ".key", "w").write(key)
key = open(db + ".key").read().strip()
base = f"http://127.0.0.1:{port}"
pid = int(subprocess.check_output(["pgrep", "-P", str(serve.pid)]).split()[0])


def call(method, path, body=None):
    request = urllib.request.Request(base + path, method=method, data=body, headers={
        "X-API-Key": key, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        return answer.read()


if fresh:
    fields = {f"f{i}": "//div[@class='" + "x" * 1950 + f"{i}']" for i in range(100)}
    body = json.dumps({"url": "http://127.0.0.1:9/", "options": {"depth": 1, "selectors": {
        "item": "//a", "fields": fields, "detail_fields": fields}}}).encode()
    for _ in range(100):
        call("POST", "/v1/scrape", body)


def rss(field):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) // 1024


sizes = []


def client():
    for _ in range(rounds):
        sizes.append(len(call("GET", "/v1/scrape/jobs?limit=100")))


start = time.time()
threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"{clients:>7} {len(sizes):>7} {max(sizes) // 1024:>10} {time.time() - start:>7.1f} "
      f"{rss('VmHWM'):>9} {rss('VmRSS'):>9}")
serve.terminate()
serve.wait()
