// Routes that create, list, read, cancel and delete jobs.

#include <httplib.h>

#include "scrapekeep/core/random.hpp"
#include "scrapekeep/http/connection.hpp"
#include "scrapekeep/http/query_params.hpp"
#include "scrapekeep/http/server.hpp"
#include "scrapekeep/http/views.hpp"
#include "scrapekeep/store/job_store.hpp"

namespace scrapekeep::http {

namespace {

constexpr std::int64_t k_max_offset = 1'000'000'000;

Outcome create_job(RouteContext& ctx) {
  auto parsed = parse_create_job(ctx.body, ctx.config.xpath_check);
  if (auto* err = std::get_if<ApiError>(&parsed)) {
    return *err;
  }
  const auto& req = std::get<CreateJobRequest>(parsed);
  auto job = ctx.store.create_job(ctx.org_id, req.url, req.options, ctx.now);
  if (!job) {
    return from_store_error(job.error());
  }
  return Reply{201, job_view(*job)};
}

Outcome list_jobs(RouteContext& ctx) {
  QueryParams q(ctx.request);
  store::JobFilter filter;
  filter.org_id = ctx.org_id;
  if (auto status = q.text("status")) {
    filter.status = core::parse_job_status(*status);
    if (!filter.status) {
      q.fail("status", "must be one of pending, processing, completed, failed, cancelled");
    }
  }
  filter.limit = q.integer("limit", 50, 1, 100);
  filter.offset = q.integer("offset", 0, 0, k_max_offset);
  filter.created_after = q.timestamp("created_after");
  filter.created_before = q.timestamp("created_before");
  if (!q.ok()) {
    return q.error();
  }
  store::SharedPageBytes shared{&answer_budget()};
  filter.shared = &shared;
  auto page = ctx.store.list_jobs(filter);
  if (!page) {
    return from_store_error(page.error());
  }
  Reply reply;
  reply.data_json = R"({"jobs":)";
  append_json_array(reply.data_json, page->jobs, job_view);
  reply.data_json += page_tail(page->total, filter.limit, filter.offset);
  keep_until_sent(std::move(shared.lease));
  return reply;
}

Outcome get_job(RouteContext& ctx) {
  if (!core::looks_like_job_id(ctx.params[0])) {
    return job_not_found();
  }
  auto job = ctx.store.get_job(ctx.params[0], ctx.org_id);
  if (!job) {
    return from_store_error(job.error());
  }
  return Reply{200, job_view(*job)};
}

Outcome cancel_job(RouteContext& ctx) {
  if (!core::looks_like_job_id(ctx.params[0])) {
    return job_not_found();
  }
  auto job = ctx.store.cancel_job(ctx.params[0], ctx.org_id, ctx.now);
  if (!job) {
    return from_store_error(job.error(), "JOB_NOT_CANCELLABLE");
  }
  return Reply{200, job_view(*job)};
}

Outcome delete_job(RouteContext& ctx) {
  if (!core::looks_like_job_id(ctx.params[0])) {
    return job_not_found();
  }
  auto done = ctx.store.delete_job(ctx.params[0], ctx.org_id);
  if (!done) {
    return from_store_error(done.error(), "JOB_NOT_DELETABLE");
  }
  if (ctx.config.after_delete) {
    ctx.config.after_delete();
  }
  return Reply{200, Json{{"job_id", ctx.params[0]}, {"deleted", true}}};
}

} // namespace

void add_job_routes(Router& router) {
  router.add("POST", "/v1/scrape", true, create_job);
  router.add("GET", "/v1/scrape/jobs", true, list_jobs);
  router.add("GET", "/v1/scrape/jobs/{job_id}", true, get_job);
  router.add("POST", "/v1/scrape/jobs/{job_id}/cancel", true, cancel_job);
  router.add("DELETE", "/v1/scrape/jobs/{job_id}", true, delete_job);
}

} // namespace scrapekeep::http
