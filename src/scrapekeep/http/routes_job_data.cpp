// Routes that read what a job produced: progress, results, page events.

#include <httplib.h>

#include "scrapekeep/core/progress.hpp"
#include "scrapekeep/core/random.hpp"
#include "scrapekeep/http/connection.hpp"
#include "scrapekeep/http/query_params.hpp"
#include "scrapekeep/http/server.hpp"
#include "scrapekeep/http/views.hpp"
#include "scrapekeep/store/job_store.hpp"

namespace scrapekeep::http {

namespace {

constexpr std::int64_t k_max_offset = 1'000'000'000;
constexpr std::int64_t k_max_seq = std::numeric_limits<std::int64_t>::max();

// The caller's job, or the error to answer with.
std::variant<core::Job, ApiError> callers_job(RouteContext& ctx) {
  if (!core::looks_like_job_id(ctx.params[0])) {
    return job_not_found();
  }
  auto job = ctx.store.get_job(ctx.params[0], ctx.org_id);
  if (!job) {
    return from_store_error(job.error());
  }
  return std::move(*job);
}

Reply progress_reply(const core::Job& job, core::Micros now) {
  Reply reply;
  reply.data_json = progress_json(core::derive_progress(job, now));
  return reply;
}

Outcome progress(RouteContext& ctx) {
  auto job = callers_job(ctx);
  if (auto* err = std::get_if<ApiError>(&job)) {
    return *err;
  }
  return progress_reply(std::get<core::Job>(job), ctx.now);
}

// The key and the job in one read; a miss is told apart by progress().
std::optional<Outcome> fast_progress(RouteContext& ctx, const std::string& key) {
  if (!core::looks_like_job_id(ctx.params[0])) {
    return std::nullopt;
  }
  auto job = ctx.lease.job_for_key(key, ctx.params[0]);
  if (!job) {
    return from_store_error(job.error());
  }
  if (!*job) {
    return std::nullopt;
  }
  return progress_reply(**job, ctx.now);
}

Outcome results(RouteContext& ctx) {
  QueryParams q(ctx.request);
  const auto limit = q.integer("limit", 100, 1, 1000);
  const auto offset = q.integer("offset", 0, 0, k_max_offset);
  if (!q.ok()) {
    return q.error();
  }
  auto job = callers_job(ctx);
  if (auto* err = std::get_if<ApiError>(&job)) {
    return *err;
  }
  store::SharedPageBytes shared{&answer_budget()};
  auto page = ctx.store.list_results(ctx.params[0], limit, offset, store::k_page_bytes, &shared);
  if (!page) {
    return from_store_error(page.error());
  }
  Reply reply;
  reply.data_json = R"({"items":)";
  append_json_array(reply.data_json, page->items, result_item_view);
  reply.data_json += page_tail(page->total, limit, offset);
  keep_until_sent(std::move(shared.lease));
  return reply;
}

Outcome events(RouteContext& ctx) {
  QueryParams q(ctx.request);
  const auto after = q.integer("after", 0, 0, k_max_seq);
  const auto limit = q.integer("limit", 100, 1, 1000);
  if (!q.ok()) {
    return q.error();
  }
  auto job = callers_job(ctx);
  if (auto* err = std::get_if<ApiError>(&job)) {
    return *err;
  }
  store::SharedPageBytes shared{&answer_budget()};
  auto page = ctx.store.list_events(ctx.params[0], after, limit, store::k_page_bytes, &shared);
  if (!page) {
    return from_store_error(page.error());
  }
  Reply reply;
  reply.data_json = R"({"events":)";
  append_json_array(reply.data_json, page->events, event_view);
  reply.data_json += R"(,"next_after":)" + std::to_string(page->next_after) + "}";
  keep_until_sent(std::move(shared.lease));
  return reply;
}

} // namespace

void add_job_data_routes(Router& router) {
  router.add("GET", "/v1/scrape/jobs/{job_id}/progress", true, progress, fast_progress);
  router.add("GET", "/v1/scrape/jobs/{job_id}/results", true, results);
  router.add("GET", "/v1/scrape/jobs/{job_id}/events", true, events);
}

} // namespace scrapekeep::http
