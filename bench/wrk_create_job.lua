-- POST /v1/scrape with one small job per request (bench/run_create.sh).
-- WRK_KEY: the API key. Prints "RESULT requests_per_s p50_us p99_us requests
-- non2xx socket_errors" at the end (non2xx: any status outside 2xx and 3xx).
wrk.method = "POST"
wrk.path = "/v1/scrape"
wrk.body = '{"url":"http://127.0.0.1:9/listings","options":{"selectors":{"item":"//article"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("WRK_KEY")

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("RESULT %.1f %d %d %d %d %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50),
    latency:percentile(99), summary.requests, summary.errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
