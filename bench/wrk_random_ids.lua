-- wrk script for the progress benchmark: every request asks for the progress
-- of a job id drawn uniformly from the file named by WRK_IDS (one id a line),
-- with the key in WRK_KEY. done() prints one machine-readable line:
--   RESULT requests_per_s p50_us p99_us requests non2xx socket_errors
local ids = {}
local count = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

function init(args)
  for line in io.lines(os.getenv("WRK_IDS")) do
    count = count + 1
    ids[count] = line
  end
  math.randomseed(os.time() * 1000 + seed)
  wrk.headers["X-API-Key"] = os.getenv("WRK_KEY") or ""
end

function request()
  local id = ids[math.random(count)]
  return wrk.format("GET", "/v1/scrape/jobs/" .. id .. "/progress")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.1f %d %d %d %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
