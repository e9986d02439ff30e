#include "scrapekeep/core/progress.hpp"

#include <algorithm>
#include <cmath>

#include "scrapekeep/core/time_format.hpp"

namespace scrapekeep::core {

double work_fraction(const Job& job) {
  const JobCounters& c = job.counters;
  const double listing_done = static_cast<double>(c.listing_pages_scraped + c.listing_pages_failed);
  const double detail_done = static_cast<double>(c.detail_pages_scraped + c.detail_pages_failed);

  double planned_listing = 1;
  if (job.options.follow_pagination) {
    planned_listing = job.pagination_complete ? listing_done : job.options.max_pages;
  }
  double planned_detail = 0;
  if (job.options.depth >= 1) {
    const double discovered = static_cast<double>(c.detail_pages_discovered);
    planned_detail = discovered;
    if (!job.pagination_complete && listing_done > 0) {
      planned_detail += std::max(0.0, planned_listing - listing_done) * (discovered / listing_done);
    }
  }
  double fraction = 0;
  if (planned_listing + planned_detail > 0) {
    fraction = (listing_done + detail_done) / (planned_listing + planned_detail);
  }
  if (job.options.max_items > 0) {
    fraction = std::max(fraction, static_cast<double>(c.items_found) / job.options.max_items);
  }
  return std::clamp(fraction, 0.0, 1.0);
}

double shown_percentage(const Job& job) {
  const double now = std::min(99.9, 100.0 * work_fraction(job));
  return job.stopped_percentage ? std::max(now, std::clamp(*job.stopped_percentage, 0.0, 99.9))
                                : now;
}

double live_percentage(const Job& job) { return round_1dp(shown_percentage(job)); }

Progress derive_progress(const Job& job, Micros now) {
  Progress p;
  p.job_id = job.job_id;
  p.status = job.status;
  p.url = job.url;
  // Pending: 0. Processing: the listing page being fetched (stored on the
  // row). Ended: the last listing page processed; pages are numbered 1..n and
  // each is stored once, so that is how many were processed (the row may
  // already point at a next page the job never fetched: timeout, cancel).
  const std::int64_t processed =
      job.counters.listing_pages_scraped + job.counters.listing_pages_failed;
  switch (job.status) {
    case JobStatus::pending:
      p.current_page = 0;
      break;
    case JobStatus::processing:
      p.current_page = job.current_page;
      break;
    default:
      p.current_page = processed;
  }
  p.total_pages_scraped = job.counters.listing_pages_scraped + job.counters.detail_pages_scraped;
  p.total_properties_found = job.counters.items_found;
  p.pagination_complete = job.pagination_complete;
  p.created_at = job.created_at;
  p.error_message = job.error_message;

  switch (job.status) {
    case JobStatus::pending:
      p.progress_percentage = 0;
      break;
    case JobStatus::completed:
      p.progress_percentage = 100;
      break;
    case JobStatus::failed:
    case JobStatus::cancelled:
      p.progress_percentage =
          job.stopped_percentage ? round_1dp(*job.stopped_percentage) : live_percentage(job);
      break;
    case JobStatus::processing:
      p.progress_percentage = live_percentage(job);
      break;
  }

  if (is_terminal(job.status)) {
    p.completion_reason = job.completion_reason;
    p.completed_at = job.completed_at;
    if (job.started_at && job.completed_at) {
      p.processing_time = seconds_2dp(std::max<Micros>(0, *job.completed_at - *job.started_at));
    }
  }
  if (job.status == JobStatus::processing && job.started_at) {
    const Micros running = std::max<Micros>(0, now - *job.started_at);
    p.running_time = seconds_2dp(running);
    const double fraction = std::max(work_fraction(job), shown_percentage(job) / 100.0);
    if (fraction > 0) {
      // A damaged row's counters can make the fraction tiny: the estimate
      // then stops at the last time shown instead of overflowing.
      const double ahead = static_cast<double>(running) / fraction;
      p.estimated_completion =
          ahead < static_cast<double>(k_max_time - *job.started_at)
              ? *job.started_at + static_cast<Micros>(std::llround(ahead))
              : k_max_time;
    }
  }
  return p;
}

} // namespace scrapekeep::core
