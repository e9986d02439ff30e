#pragma once
// Progress derivation: a stored job row and a clock reading -> the progress
// object of API.md. Pure; shared by the server and `inspect`.

#include <cstdint>
#include <optional>
#include <string>

#include "scrapekeep/core/job.hpp"

namespace scrapekeep::core {

struct Progress {
  std::string job_id;
  JobStatus status = JobStatus::pending;
  std::string url;
  std::int64_t current_page = 0;
  std::int64_t total_pages_scraped = 0;
  std::int64_t total_properties_found = 0;
  double progress_percentage = 0;  // 1 decimal, 0..100
  bool pagination_complete = false;
  std::optional<CompletionReason> completion_reason;
  Micros created_at = 0;
  std::optional<Micros> completed_at;
  std::optional<double> processing_time;  // seconds, 2 decimals
  std::optional<double> running_time;     // seconds, 2 decimals
  std::optional<std::string> error_message;
  std::optional<Micros> estimated_completion;
};

// Fraction of the planned work done (0..1, uncapped by 99.9), per API.md:
// max(pages done / planned pages, items / max_items).
double work_fraction(const Job& job);

// The percentage a processing job shows, unrounded: min(99.9, 100 *
// work_fraction), or the highest it showed before if that was more (API.md's
// estimate of the detail pages to come grows when a page brings more items
// than the pages before it, which would take progress back).
double shown_percentage(const Job& job);

// shown_percentage rounded to 1 decimal: the percentage of a processing job,
// and the value a failed or cancelled job keeps (pass its processing-time row).
double live_percentage(const Job& job);

// The progress object of `job` evaluated at `now`.
Progress derive_progress(const Job& job, Micros now);

} // namespace scrapekeep::core
