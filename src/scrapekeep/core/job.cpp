#include "scrapekeep/core/job.hpp"

namespace scrapekeep::core {

const char* to_string(JobStatus status) {
  switch (status) {
    case JobStatus::pending:
      return "pending";
    case JobStatus::processing:
      return "processing";
    case JobStatus::completed:
      return "completed";
    case JobStatus::failed:
      return "failed";
    case JobStatus::cancelled:
      return "cancelled";
  }
  return "pending";
}

const char* to_string(CompletionReason reason) {
  switch (reason) {
    case CompletionReason::done:
      return "done";
    case CompletionReason::timeout:
      return "timeout";
    case CompletionReason::error:
      return "error";
    case CompletionReason::cancelled:
      return "cancelled";
  }
  return "error";
}

std::optional<JobStatus> parse_job_status(std::string_view text) {
  for (auto s : {JobStatus::pending, JobStatus::processing, JobStatus::completed,
                 JobStatus::failed, JobStatus::cancelled}) {
    if (text == to_string(s)) {
      return s;
    }
  }
  return std::nullopt;
}

std::optional<CompletionReason> parse_completion_reason(std::string_view text) {
  for (auto r : {CompletionReason::done, CompletionReason::timeout, CompletionReason::error,
                 CompletionReason::cancelled}) {
    if (text == to_string(r)) {
      return r;
    }
  }
  return std::nullopt;
}

std::optional<Micros> time_up(const Job& job) {
  if (!job.started_at) {
    return std::nullopt;
  }
  return *job.started_at + static_cast<Micros>(job.options.timeout) * k_micros_per_second;
}

bool options_in_range(const JobOptions& options) {
  const auto in = [](int v, OptionRange r) { return v >= r.lo && v <= r.hi; };
  return in(options.timeout, k_timeout_range) && in(options.max_items, k_max_items_range) &&
         in(options.max_pages, k_max_pages_range) && in(options.depth, k_depth_range);
}

bool is_terminal(JobStatus status) {
  return status == JobStatus::completed || status == JobStatus::failed ||
         status == JobStatus::cancelled;
}

} // namespace scrapekeep::core
