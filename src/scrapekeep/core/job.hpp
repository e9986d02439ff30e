#pragma once
// Domain types of a scraping job, as stored and as API.md describes them.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "scrapekeep/core/clock.hpp"

namespace scrapekeep::core {

enum class JobStatus { pending, processing, completed, failed, cancelled };
enum class CompletionReason { done, timeout, error, cancelled };

const char* to_string(JobStatus status);
const char* to_string(CompletionReason reason);
std::optional<JobStatus> parse_job_status(std::string_view text);
std::optional<CompletionReason> parse_completion_reason(std::string_view text);
bool is_terminal(JobStatus status);

// The longest start URL a job may have, in characters (API.md's validation).
constexpr std::size_t k_max_url_chars = 2048;

// Ordered name -> XPath (or name -> value) pairs; order is the caller's.
using FieldList = std::vector<std::pair<std::string, std::string>>;
// Extracted values in selector order; nullopt when the XPath matched nothing.
using FieldValues = std::vector<std::pair<std::string, std::optional<std::string>>>;

// What a selector is for, which decides what its XPath may give: an `item`
// selects nodes; a link (next_page, detail_link) selects nodes or gives a
// string, a URL (a number or boolean would be fetched as "/2" or "/true");
// a field may give anything.
enum class SelectorRole { field, item, link };

struct Selectors {
  std::string item;
  FieldList fields;
  std::string next_page = "//a[@rel='next']/@href | //link[@rel='next']/@href";
  std::string detail_link = ".//a/@href";
  FieldList detail_fields;
};

// Normalized job options; defaults and ranges are API.md's.
struct JobOptions {
  int timeout = 300;            // seconds, 1..1800
  int max_items = 100;          // 1..1000000
  bool follow_pagination = false;
  int max_pages = 10;           // 1..10000
  int depth = 0;                // 0 or 1
  Selectors selectors;
};

// API.md's ranges of a job's integer options, checked at the job's creation.
struct OptionRange {
  int lo;
  int hi;
};
constexpr OptionRange k_timeout_range{1, 1800};
constexpr OptionRange k_max_items_range{1, 1000000};
constexpr OptionRange k_max_pages_range{1, 10000};
constexpr OptionRange k_depth_range{0, 1};

// Whether each integer option is in its range (a stored row may hold any).
bool options_in_range(const JobOptions& options);

struct JobCounters {
  std::int64_t listing_pages_scraped = 0;
  std::int64_t listing_pages_failed = 0;
  std::int64_t detail_pages_discovered = 0;
  std::int64_t detail_pages_scraped = 0;
  std::int64_t detail_pages_failed = 0;
  std::int64_t items_found = 0;
};

// One job row. Counters live on the row so progress needs no aggregate query.
struct Job {
  std::string job_id;
  std::int64_t org_id = 0;
  JobStatus status = JobStatus::pending;
  std::string url;
  JobOptions options;
  // The stored selectors are not the JSON this code writes (a damaged or
  // hand-edited row): options.selectors holds the defaults, views show null,
  // and a worker that claims the job fails it.
  bool selectors_damaged = false;
  Micros created_at = 0;
  std::optional<Micros> started_at;
  std::optional<Micros> completed_at;
  std::optional<CompletionReason> completion_reason;
  std::optional<std::string> error_message;
  JobCounters counters;
  std::int64_t current_page = 0;
  bool pagination_complete = false;
  // Percentage frozen when the job failed or was cancelled. While it is
  // processing: the highest percentage its progress has shown (0..99.9,
  // unrounded; null before its first page), so progress never goes back.
  std::optional<double> stopped_percentage;
  std::int64_t attempts = 0;
  // Lease of the worker holding a processing job.
  std::optional<std::string> claim_token;
  std::optional<Micros> lease_expires_at;
};

// When the job's time runs out: options.timeout counts from started_at.
// nullopt before it started.
std::optional<Micros> time_up(const Job& job);

} // namespace scrapekeep::core
