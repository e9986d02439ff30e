// scrapekeep inspect: offline, read-only inspection of job history.
//
// Every command opens the database read-only (store::History) and prints
// either a human view (aligned columns, durations like "1m 03s", color only on
// a terminal) or, with --json, data: `progress --json` is the API's `data`
// object, built by the same functions as the server (core::derive_progress,
// http::progress_view).

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string_view>

#include "scrapekeep/cli/command.hpp"
#include "scrapekeep/core/progress.hpp"
#include "scrapekeep/core/text.hpp"
#include "scrapekeep/core/time_format.hpp"
#include "scrapekeep/http/views.hpp"
#include "scrapekeep/store/history.hpp"
#include "scrapekeep/store/json_codec.hpp"
#include "scrapekeep/store/migrations.hpp"

namespace scrapekeep::cli {

namespace {

using core::Micros;
using http::Json;

struct InspectOptions {
  std::string db;
  std::string job_id;
  bool json = false;
  // filters (jobs, export)
  std::string status;
  std::string org;
  std::string since;
  std::string until;
  std::int64_t limit = 0;  // 0: the command's default
  // progress
  std::string at;
  // stats
  bool per_day = false;
  std::int64_t top_errors = 10;
  // export
  std::string format;
  bool events = false;
  // check
  bool quick = false;
};

constexpr std::int64_t k_default_jobs_limit = 50;

// ---- arguments ----

// An ISO 8601 time, "now", or a span before now such as "90s", "15m", "24h", "7d", "2w".
std::optional<Micros> parse_time_arg(const std::string& text, Micros now) {
  if (text == "now") {
    return now;
  }
  if (auto at = core::parse_timestamp(text)) {
    return at;
  }
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) {
    ++digits;
  }
  if (digits == 0 || digits > 9) {
    return std::nullopt;
  }
  std::string unit = text.substr(digits);
  if (unit.size() > 4 && unit.substr(unit.size() - 4) == " ago") {
    unit.resize(unit.size() - 4);
  }
  const std::int64_t n = std::stoll(text.substr(0, digits));
  static const std::map<std::string, std::int64_t> k_units = {
      {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {"w", 7 * 86400}};
  auto unit_seconds = k_units.find(unit);
  if (unit_seconds == k_units.end()) {
    return std::nullopt;
  }
  // At most 9 digits of weeks fit in seconds, not in microseconds: a span
  // reaching before year 0000 is read as that year's start.
  const std::int64_t span_seconds = n * unit_seconds->second;
  if (span_seconds > (now - core::k_min_time) / core::k_micros_per_second) {
    return core::k_min_time;
  }
  return now - span_seconds * core::k_micros_per_second;
}

const CLI::Validator& time_validator() {
  static const CLI::Validator k_validator(
      [](std::string& text) -> std::string {
        if (parse_time_arg(text, 0)) {
          return "";
        }
        return "expected an ISO 8601 time (2026-01-12, 2026-01-12T07:19:20Z), \"now\", or a "
               "span before now (90s, 15m, 24h, 7d, 2w), got '" +
               text + "'";
      },
      "TIME");
  return k_validator;
}

// ---- human formatting ----

// Rounded half away from zero at the precision shown (1 ms, 0.1 s, 1 s, 1
// min), a value that rounds up to the next unit shown in it ("1.0s", "1m 00s").
std::string format_duration(Micros d) {
  const bool negative = d < 0;
  const std::uint64_t us = static_cast<std::uint64_t>(negative ? -d : d);
  const auto rounded = [us](std::uint64_t unit) { return (us + unit / 2) / unit; };
  char buf[64];
  if (const std::uint64_t ms = rounded(1'000); ms < 1000) {
    std::snprintf(buf, sizeof buf, "%llums", static_cast<unsigned long long>(ms));
  } else if (const std::uint64_t tenths = rounded(100'000); tenths < 600) {
    std::snprintf(buf, sizeof buf, "%llu.%llus", static_cast<unsigned long long>(tenths / 10),
                  static_cast<unsigned long long>(tenths % 10));
  } else if (const std::uint64_t s = rounded(1'000'000); s < 86400) {
    if (s < 3600) {
      std::snprintf(buf, sizeof buf, "%llum %02llus", static_cast<unsigned long long>(s / 60),
                    static_cast<unsigned long long>(s % 60));
    } else {
      std::snprintf(
          buf, sizeof buf, "%lluh %02llum %02llus", static_cast<unsigned long long>(s / 3600),
          static_cast<unsigned long long>(s % 3600 / 60), static_cast<unsigned long long>(s % 60));
    }
  } else {
    const std::uint64_t m = rounded(60'000'000);
    std::snprintf(buf, sizeof buf, "%llud %02lluh %02llum",
                  static_cast<unsigned long long>(m / 1440),
                  static_cast<unsigned long long>(m % 1440 / 60),
                  static_cast<unsigned long long>(m % 60));
  }
  return negative ? "-" + std::string(buf) : std::string(buf);
}

// "2026-01-12 07:19:20" (UTC); with millis "2026-01-12 07:19:20.123".
std::string format_time(Micros at, bool millis = false) {
  std::string s = core::format_timestamp(at).substr(0, millis ? 23 : 19);
  s[10] = ' ';
  return s;
}

std::string format_time(const std::optional<Micros>& at) {
  return at ? format_time(*at) : std::string("-");
}

std::string format_bytes(std::uintmax_t bytes) {
  static const char* k_units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  if (unit == 0) {
    std::snprintf(buf, sizeof buf, "%ju B", bytes);
  } else {
    std::snprintf(buf, sizeof buf, value < 10 ? "%.1f %s" : "%.0f %s", value, k_units[unit]);
  }
  return buf;
}

using core::group_digits;

std::string percent(std::int64_t part, std::int64_t whole) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%",
                whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0);
  return buf;
}

using core::pad;

const char* env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// ANSI color, only when stdout is a terminal that is not TERM=dumb, and
// NO_COLOR is unset or empty (no-color.org: "present and not an empty
// string" turns it off).
class Style {
 public:
  Style()
      : m_on(isatty(STDOUT_FILENO) == 1 && std::string_view(env_or_empty("NO_COLOR")).empty() &&
             std::string_view(env_or_empty("TERM")) != "dumb") {}

  std::string status(const std::string& padded, core::JobStatus status) const {
    switch (status) {
      case core::JobStatus::completed:
        return wrap(padded, "32");
      case core::JobStatus::failed:
        return wrap(padded, "31");
      case core::JobStatus::processing:
        return wrap(padded, "33");
      case core::JobStatus::cancelled:
        return wrap(padded, "35");
      case core::JobStatus::pending:
        return wrap(padded, "36");
    }
    return padded;
  }
  std::string bold(const std::string& text) const { return wrap(text, "1"); }
  std::string dim(const std::string& text) const { return wrap(text, "2"); }
  std::string red(const std::string& text) const { return wrap(text, "31"); }

 private:
  std::string wrap(const std::string& text, const char* code) const {
    return m_on ? "\033[" + std::string(code) + "m" + text + "\033[0m" : text;
  }
  bool m_on;
};

// A small table whose column widths come from its rows (for bounded outputs).
// An empty header prints no header line.
class Table {
 public:
  explicit Table(std::vector<std::string> header, std::vector<bool> right = {})
      : m_right(std::move(right)), m_header(!header.empty()) {
    if (m_header) {
      m_rows.push_back(std::move(header));
    }
  }
  // Cells may quote what a database holds (URLs, errors, names): they are
  // made printable, since a damaged file or a scraped site may have put
  // terminal control sequences there.
  void add(std::vector<std::string> row) {
    for (std::string& cell : row) {
      cell = core::printable(cell);
    }
    m_rows.push_back(std::move(row));
  }
  void print(std::ostream& out, const Style& style, const std::string& indent = "") const {
    std::vector<size_t> widths;
    for (const auto& row : m_rows) {
      widths.resize(std::max(widths.size(), row.size()), 0);
      for (size_t c = 0; c < row.size(); ++c) {
        widths[c] = std::max(widths[c], core::utf8_length(row[c]));
      }
    }
    for (size_t r = 0; r < m_rows.size(); ++r) {
      std::string line = indent;
      for (size_t c = 0; c < m_rows[r].size(); ++c) {
        const bool right = c < m_right.size() && m_right[c];
        const bool last = c + 1 == m_rows[r].size();
        line += last && !right ? m_rows[r][c] : pad(m_rows[r][c], widths[c], right);
        if (!last) {
          line += "  ";
        }
      }
      out << (r == 0 && m_header ? style.bold(line) : line) << "\n";
    }
  }

 private:
  std::vector<std::vector<std::string>> m_rows;
  std::vector<bool> m_right;
  bool m_header;
};

// JSON as the server writes it (compact, invalid UTF-8 replaced).
std::string dump(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json time_or_null(const std::optional<Micros>& at) {
  return at ? Json(core::format_timestamp(*at)) : Json(nullptr);
}

Json job_json(const store::JobRecord& r) {
  Json j = http::job_view(r.job);
  j["org"] = r.org;
  return j;
}

Json event_json(const store::EventRecord& r) {
  Json j = {{"job_id", r.job_id}};
  const Json view = http::event_view(r.event);
  for (const auto& [key, value] : view.items()) {
    j[key] = value;
  }
  j["item_index"] = r.item_index ? Json(*r.item_index) : Json(nullptr);
  j["detail_links"] = r.detail_links;
  j["next_url"] = r.next_url ? Json(*r.next_url) : Json(nullptr);
  j["final_url"] = r.final_url ? Json(*r.final_url) : Json(nullptr);
  return j;
}

// Duration shown for a job: processing time, or running time so far ("+").
std::string job_duration(const core::Job& job, Micros now) {
  const core::Progress p = core::derive_progress(job, now);
  if (p.processing_time && job.started_at && job.completed_at) {
    return format_duration(std::max<Micros>(0, *job.completed_at - *job.started_at));
  }
  if (p.running_time && job.started_at) {
    return format_duration(std::max<Micros>(0, now - *job.started_at)) + "+";
  }
  return "-";
}

std::string worker_note(const core::Job& job, Micros now) {
  std::string note = "this job was processing when the database was read; ";
  if (!job.lease_expires_at && !job.claim_token) {
    return note + "no worker holds it: the next server or worker to look for work resumes it";
  }
  if (job.lease_expires_at && *job.lease_expires_at >= now) {
    return note + "its worker holds it until " + format_time(*job.lease_expires_at) +
           " UTC, unless it renews its lease";
  }
  note += "its worker may be gone";
  if (job.lease_expires_at) {
    note += " (its lease expired " + format_duration(now - *job.lease_expires_at) +
            " ago; a running server or worker would take it back)";
  }
  return note;
}

// ---- filters ----

// The filter the options describe; times were validated at parse time.
store::HistoryFilter make_filter(const InspectOptions& o, Micros now,
                                 std::optional<std::int64_t> default_limit) {
  store::HistoryFilter f;
  if (!o.status.empty()) {
    f.status = core::parse_job_status(o.status);
  }
  if (!o.org.empty()) {
    f.org = o.org;
  }
  if (!o.since.empty()) {
    f.since = parse_time_arg(o.since, now);
  }
  if (!o.until.empty()) {
    f.until = parse_time_arg(o.until, now);
  }
  f.limit = o.limit > 0 ? std::optional<std::int64_t>(o.limit) : default_limit;
  return f;
}

// ---- commands ----

int run_jobs(const InspectOptions& o) {
  const Micros now = core::SystemClock().now();
  auto history = open_history_or_report(o.db);
  if (!history) {
    return 1;
  }
  const auto filter = make_filter(o, now, k_default_jobs_limit);
  // The total and the jobs listed from one read, as the API's list reads
  // them: on a live file, a job created between two reads showed as "7 of 6
  // matching jobs".
  auto reading = history->begin_read();
  if (!reading) {
    return fail(reading.error().message);
  }
  auto total = history->count_jobs(filter);
  if (!total) {
    return fail(total.error().message);
  }
  const Style style;
  std::int64_t shown = 0;
  bool any_running = false;
  core::Status listed = core::ok_status();
  if (o.json) {
    std::cout << "{\"jobs\":[";
    listed = history->each_job(filter, [&](const store::JobRecord& r) {
      std::cout << (shown++ ? "," : "") << dump(job_json(r));
      return static_cast<bool>(std::cout);
    });
    if (!listed) {
      // Left unclosed, as events --json leaves it: closed, the jobs read
      // before a damaged page were a document a script would take for all.
      std::cout << "\n" << std::flush;
      return fail(listed.error().message);
    }
    std::cout << "],\"total\":" << *total << ",\"limit\":" << *filter.limit << "}\n";
  } else {
    // Fixed widths (URL last) so rows stream without being held in memory.
    std::cout << style.bold(pad("JOB_ID", 28) + "  " + pad("STATUS", 10) + "  " + pad("REASON", 9) +
                            "  " + pad("PAGES", 7, true) + "  " + pad("ITEMS", 8, true) + "  " +
                            pad("CREATED (UTC)", 19) + "  " + pad("DURATION", 13, true) + "  URL")
              << "\n";
    listed = history->each_job(filter, [&](const store::JobRecord& r) {
      const core::Job& j = r.job;
      const core::JobCounters& c = j.counters;
      const std::string reason = j.completion_reason ? core::to_string(*j.completion_reason) : "-";
      const std::int64_t pages = c.listing_pages_scraped + c.detail_pages_scraped;
      any_running = any_running || j.status == core::JobStatus::processing;
      std::cout << pad(core::printable(j.job_id), 28) << "  "
                << style.status(pad(core::to_string(j.status), 10), j.status) << "  "
                << pad(reason, 9) << "  " << pad(std::to_string(pages), 7, true) << "  "
                << pad(std::to_string(c.items_found), 8, true) << "  "
                << pad(format_time(j.created_at), 19) << "  " << pad(job_duration(j, now), 13, true)
                << "  " << core::printable(j.url) << "\n";
      ++shown;
      return static_cast<bool>(std::cout);
    });
    std::cout << style.dim(group_digits(shown) + " of " + group_digits(*total) +
                           " matching jobs, newest first" +
                           (shown < *total ? " (--limit N to see more)" : ""))
              << "\n";
    if (any_running) {
      std::cout << style.dim(
                       "+ still processing when read: running time so far; its worker may be "
                       "gone")
                << "\n";
    }
  }
  if (!listed) {
    return fail(listed.error().message);
  }
  return 0;
}

Json timeline_json(const store::Timeline& t) {
  Json statuses = Json::array();
  for (const auto& [status, count] : t.http_statuses) {
    statuses.push_back(
        Json{{"http_status", status ? Json(*status) : Json(nullptr)}, {"events", count}});
  }
  return Json{{"events", t.events},
              {"listing_ok", t.listing_ok},
              {"listing_failed", t.listing_failed},
              {"detail_ok", t.detail_ok},
              {"detail_failed", t.detail_failed},
              {"items_found", t.items},
              {"detail_links", t.detail_links},
              {"first_started_at", time_or_null(t.first_started)},
              {"last_finished_at", time_or_null(t.last_finished)},
              {"fetch_time", core::seconds_2dp(t.fetch_time)},
              {"slowest", t.slowest ? event_json(*t.slowest) : Json(nullptr)},
              {"http_statuses", statuses}};
}

// Counter names whose stored value differs from the timeline's sums.
std::string counter_mismatches(const core::JobCounters& c, const store::Timeline& t) {
  std::string out;
  auto check = [&](const char* name, std::int64_t stored, std::int64_t summed) {
    if (stored != summed) {
      out += std::string(out.empty() ? "" : ", ") + name + " " + std::to_string(stored) + " vs " +
             std::to_string(summed) + " in events";
    }
  };
  check("listing_pages_scraped", c.listing_pages_scraped, t.listing_ok);
  check("listing_pages_failed", c.listing_pages_failed, t.listing_failed);
  check("detail_pages_scraped", c.detail_pages_scraped, t.detail_ok);
  check("detail_pages_failed", c.detail_pages_failed, t.detail_failed);
  check("items_found", c.items_found, t.items);
  check("detail_pages_discovered", c.detail_pages_discovered, t.detail_links);
  return out;
}

int run_job(const InspectOptions& o) {
  const Micros now = core::SystemClock().now();
  auto history = open_history_or_report(o.db);
  if (!history) {
    return 1;
  }
  auto read = history->timeline(o.job_id);
  if (!read) {
    return fail(read.error().message);
  }
  const store::JobRecord& record = read->record;
  const core::Job& j = record.job;
  const core::Progress progress = core::derive_progress(j, now);
  const bool processing = j.status == core::JobStatus::processing;
  if (o.json) {
    Json out = job_json(record);
    out["claimed_by"] = record.claimed_by ? Json(*record.claimed_by) : Json(nullptr);
    out["lease_expires_at"] = time_or_null(j.lease_expires_at);
    out["progress"] = http::progress_view(progress);
    out["timeline"] = timeline_json(read->timeline);
    std::cout << dump(out) << "\n";
    if (processing) {
      say("note: " + worker_note(j, now));
    }
    return 0;
  }
  const Style style;
  const core::JobCounters& c = j.counters;
  const store::Timeline& t = read->timeline;
  std::cout << style.bold("Job " + core::printable(j.job_id)) << " (times in UTC)\n";
  Table about({});
  auto row = [&](Table& table, const std::string& key, const std::string& value) {
    table.add({key, value});
  };
  row(about, "organization", record.org);
  row(about, "status",
      std::string(core::to_string(j.status)) +
          (j.completion_reason ? std::string(" (") + core::to_string(*j.completion_reason) + ")"
                               : ""));
  row(about, "url", j.url);
  row(about, "created", format_time(j.created_at));
  row(about, "started", format_time(j.started_at));
  row(about, "completed", format_time(j.completed_at));
  row(about, processing ? "running for" : "processing time", job_duration(j, now));
  row(about, "progress",
      percent(static_cast<std::int64_t>(std::llround(progress.progress_percentage * 10)), 1000) +
          ", page " + std::to_string(progress.current_page) +
          (j.pagination_complete ? ", pagination complete" : ", pagination not complete"));
  row(about, "attempts", std::to_string(j.attempts));
  if (j.error_message) {
    row(about, "error", *j.error_message);
  }
  if (processing && !j.claim_token && !j.lease_expires_at) {
    row(about, "lease", "none: waiting for a worker to resume it");
  } else if (processing || j.claim_token) {
    row(about, "lease",
        "held by " + record.claimed_by.value_or("?") + " until " + format_time(j.lease_expires_at));
  }
  const core::JobOptions& opt = j.options;
  row(about, "options",
      "timeout " + std::to_string(opt.timeout) + "s, max_items " + std::to_string(opt.max_items) +
          ", follow_pagination " + (opt.follow_pagination ? "yes" : "no") + ", max_pages " +
          std::to_string(opt.max_pages) + ", depth " + std::to_string(opt.depth));
  row(about, "selectors",
      j.selectors_damaged ? "cannot be read (a damaged database row)"
                          : dump(store::to_json(opt.selectors)));
  about.print(std::cout, style, "  ");

  std::cout << "\n" << style.bold("Counters") << "\n";
  Table counters({});
  row(counters, "listing pages",
      std::to_string(c.listing_pages_scraped) + " scraped, " +
          std::to_string(c.listing_pages_failed) + " failed");
  row(counters, "detail pages",
      std::to_string(c.detail_pages_discovered) + " discovered, " +
          std::to_string(c.detail_pages_scraped) + " scraped, " +
          std::to_string(c.detail_pages_failed) + " failed");
  row(counters, "items",
      std::to_string(c.items_found) + " of max " + std::to_string(opt.max_items));
  const std::string mismatches = counter_mismatches(c, t);
  row(counters, "page events", mismatches.empty() ? "counters match" : "MISMATCH: " + mismatches);
  counters.print(std::cout, style, "  ");

  std::cout << "\n" << style.bold("Timeline") << "\n";
  Table tl({});
  row(tl, "page events",
      std::to_string(t.events) + " (" + std::to_string(t.listing_ok + t.listing_failed) +
          " listing, " + std::to_string(t.detail_ok + t.detail_failed) + " detail)");
  if (t.events > 0) {
    row(tl, "first fetch", format_time(*t.first_started, true));
    row(tl, "last fetch", format_time(*t.last_finished, true));
    if (j.started_at) {
      row(tl, "first fetch after start", format_duration(*t.first_started - *j.started_at));
    }
    row(tl, "fetch time",
        format_duration(t.fetch_time) + " total, " + format_duration(t.fetch_time / t.events) +
            " per page");
    if (t.slowest) {
      const auto& e = t.slowest->event;
      row(tl, "slowest page",
          format_duration(e.finished_at - e.started_at) + "  " + store::to_string(e.kind) + "  " +
              e.url);
    }
    std::string statuses;
    for (const auto& [status, count] : t.http_statuses) {
      statuses += std::string(statuses.empty() ? "" : ", ") +
                  (status ? std::to_string(*status) : std::string("no response")) + ": " +
                  std::to_string(count);
    }
    row(tl, "http statuses", statuses);
  }
  tl.print(std::cout, style, "  ");
  if (processing) {
    std::cout << "\nnote: " << worker_note(j, now) << "\n";
  }
  return 0;
}

int run_progress(const InspectOptions& o) {
  const Micros now = core::SystemClock().now();
  const Micros at = o.at.empty() ? now : *parse_time_arg(o.at, now);
  auto history = open_history_or_report(o.db);
  if (!history) {
    return 1;
  }
  auto record = history->job(o.job_id);
  if (!record) {
    return fail(record.error().message);
  }
  const core::Job& job = record->job;
  const core::Progress progress = core::derive_progress(job, at);
  const Json view = http::progress_view(progress);
  const bool processing = job.status == core::JobStatus::processing;
  if (o.json) {
    std::cout << dump(view) << "\n";
    if (processing) {
      say("note: " + worker_note(job, now));
    }
    return 0;
  }
  const Style style;
  std::cout << style.bold("Progress of " + core::printable(job.job_id) + " at " +
                            core::format_timestamp(at))
            << "\n";
  Table table({});
  for (const auto& [key, value] : view.items()) {
    std::string text;
    if (value.is_null()) {
      text = "-";
    } else if (key == "url" || key == "error_message") {
      // As stored: the JSON's text has U+FFFD for bytes that are not UTF-8,
      // where the table shows each as \xFF, as the other text forms do.
      text = key == "url" ? progress.url : *progress.error_message;
    } else if (value.is_string()) {
      text = value.get<std::string>();
    } else if (value.is_boolean()) {
      text = value.get<bool>() ? "yes" : "no";
    } else {
      text = value.dump();
    }
    if ((key == "processing_time" || key == "running_time") && value.is_number()) {
      text += " s";
      if (value.get<double>() >= 60) {
        text += " (" +
                format_duration(static_cast<Micros>(std::llround(value.get<double>() * 1e6))) + ")";
      }
    } else if (key == "progress_percentage") {
      text += " %";
    }
    table.add({key, text});
  }
  table.print(std::cout, style, "  ");
  if (processing) {
    std::cout << "\nnote: " << worker_note(job, now) << "\n";
  }
  return 0;
}

int run_events(const InspectOptions& o) {
  auto history = open_history_or_report(o.db);
  if (!history) {
    return 1;
  }
  // Reports an unknown job before any output starts.
  if (auto job = history->job(o.job_id); !job) {
    return fail(job.error().message);
  }
  const std::optional<std::int64_t> limit =
      o.limit > 0 ? std::optional<std::int64_t>(o.limit) : std::nullopt;
  const Style style;
  std::int64_t shown = 0;
  std::int64_t last_seq = 0;
  core::Status listed = core::ok_status();
  if (o.json) {
    // The API's shape: {"events": [...], "next_after"}.
    std::cout << "{\"events\":[";
    listed = history->each_event(o.job_id, limit, [&](const store::EventRecord& r) {
      std::cout << (shown++ ? "," : "") << dump(http::event_view(r.event));
      last_seq = r.event.seq;
      return static_cast<bool>(std::cout);  // no reader left: no more to read
    });
    if (!listed) {
      // Left unclosed: a reader that misses the exit status still cannot
      // take the events streamed so far for all of them.
      std::cout << "\n" << std::flush;
      return fail(listed.error().message);
    }
    std::cout << "],\"next_after\":" << last_seq << "}\n";
    return 0;
  }
  // Fixed widths (URL and error last) so events stream without being held in memory.
  const std::string header = pad("SEQ", 6, true) + "  " + pad("STARTED (UTC)", 23) + "  " +
                             pad("KIND", 7) + "  " +
                             pad("PAGE", 5, true) + "  " + pad("ITEM", 5, true) + "  " +
                             pad("HTTP", 4, true) + "  " + pad("OUTCOME", 7) + "  " +
                             pad("ITEMS", 5, true) + "  " + pad("DURATION", 8, true) + "  URL";
  bool header_printed = false;
  listed = history->each_event(o.job_id, limit, [&](const store::EventRecord& r) {
    if (!header_printed) {
      std::cout << style.bold(header) << "\n";
      header_printed = true;
    }
    const store::PageEvent& e = r.event;
    std::string line = pad(std::to_string(e.seq), 6, true) + "  " +
                       pad(format_time(e.started_at, true), 23) + "  " +
                       pad(store::to_string(e.kind), 7) + "  " +
                       pad(std::to_string(e.page_number), 5, true) + "  " +
                       pad(r.item_index ? std::to_string(*r.item_index) : "-", 5, true) + "  " +
                       pad(e.http_status ? std::to_string(*e.http_status) : "-", 4, true) + "  ";
    std::cout << line << (e.ok ? pad("ok", 7) : style.red(pad("failed", 7))) << "  "
              << pad(e.kind == store::PageKind::listing ? std::to_string(e.items_found) : "-", 5,
                     true)
              << "  " << pad(format_duration(e.finished_at - e.started_at), 8, true) << "  "
              << core::printable(e.url)
              << (e.error ? "  error: " + core::printable(*e.error) : "") << "\n";
    ++shown;
    return static_cast<bool>(std::cout);
  });
  if (!listed) {
    return fail(listed.error().message);
  }
  if (shown == 0) {
    std::cout << "no page events\n";
  } else {
    std::cout << style.dim(group_digits(shown) + " page events, in the order they were stored")
              << "\n";
  }
  return 0;
}

Json seconds(Micros d) {
  return core::seconds_2dp(d);
}

int run_stats(const InspectOptions& o) {
  auto history = open_history_or_report(o.db);
  if (!history) {
    return 1;
  }
  auto stats =
      history->stats(store::StatsOptions{.per_day = o.per_day, .top_errors = o.top_errors});
  if (!stats) {
    return fail(stats.error().message);
  }
  const store::Stats& s = *stats;
  const core::JobCounters& t = s.totals;
  const store::Percentiles& p = s.processing_time;
  if (o.json) {
    Json by_status = Json::array();
    for (const auto& c : s.by_status) {
      by_status.push_back(
          Json{{"status", core::to_string(c.status)},
               {"completion_reason", c.reason ? Json(core::to_string(*c.reason)) : Json(nullptr)},
               {"jobs", c.jobs}});
    }
    Json errors = Json::array();
    for (const auto& e : s.top_errors) {
      errors.push_back(Json{{"message", e.message}, {"jobs", e.jobs}});
    }
    Json out = {{"jobs", s.jobs},
                {"first_created_at", time_or_null(s.first_created)},
                {"last_created_at", time_or_null(s.last_created)},
                {"by_status", by_status},
                {"totals",
                 {{"listing_pages_scraped", t.listing_pages_scraped},
                  {"listing_pages_failed", t.listing_pages_failed},
                  {"detail_pages_discovered", t.detail_pages_discovered},
                  {"detail_pages_scraped", t.detail_pages_scraped},
                  {"detail_pages_failed", t.detail_pages_failed},
                  {"items_found", t.items_found},
                  {"attempts", s.attempts}}},
                {"processing_time",
                 {{"samples", p.samples},
                  {"p50", seconds(p.p50)},
                  {"p90", seconds(p.p90)},
                  {"p99", seconds(p.p99)},
                  {"max", seconds(p.max)}}},
                {"top_errors", errors}};
    if (o.per_day) {
      Json days = Json::array();
      for (const auto& d : s.per_day) {
        days.push_back(Json{{"day", core::format_timestamp(d.day).substr(0, 10)},
                            {"created", d.created},
                            {"completed", d.completed},
                            {"failed", d.failed},
                            {"cancelled", d.cancelled},
                            {"open", d.open},
                            {"pages_scraped", d.pages},
                            {"items_found", d.items},
                            {"avg_processing_time",
                             d.avg_processing ? seconds(*d.avg_processing) : Json(nullptr)}});
      }
      out["per_day"] = days;
    }
    std::cout << dump(out) << "\n";
    return 0;
  }
  const Style style;
  std::error_code ec;
  const auto size = std::filesystem::file_size(store::uri_file(o.db), ec);
  const auto wal = std::filesystem::file_size(store::database_file(o.db) + "-wal", ec);
  std::cout << style.bold("Database") << "  " << core::printable(o.db) << " (" << format_bytes(size)
            << (ec ? std::string() : ", WAL " + format_bytes(wal)) << ")\n";
  std::cout << style.bold("Jobs") << "      " << group_digits(s.jobs);
  if (s.first_created) {
    std::cout << ", created " << format_time(*s.first_created) << " .. "
              << format_time(*s.last_created) << " UTC";
  }
  std::cout << "\n\n";

  Table by_status({"STATUS", "REASON", "JOBS", "SHARE"}, {false, false, true, true});
  for (const auto& c : s.by_status) {
    by_status.add({core::to_string(c.status), c.reason ? core::to_string(*c.reason) : "-",
                   group_digits(c.jobs), percent(c.jobs, s.jobs)});
  }
  by_status.print(std::cout, style);

  std::cout << "\n";
  Table totals({"TOTALS", "SCRAPED", "FAILED", "DISCOVERED"}, {false, true, true, true});
  totals.add({"listing pages", group_digits(t.listing_pages_scraped),
              group_digits(t.listing_pages_failed), "-"});
  totals.add({"detail pages", group_digits(t.detail_pages_scraped),
              group_digits(t.detail_pages_failed), group_digits(t.detail_pages_discovered)});
  totals.add({"items", group_digits(t.items_found), "-", "-"});
  totals.print(std::cout, style);
  std::cout << "worker attempts: " << group_digits(s.attempts) << "\n";

  std::cout << "\n";
  std::cout << style.bold("Processing time") << " (" << group_digits(p.samples)
            << " finished jobs that started)\n";
  if (p.samples > 0) {
    std::cout << "  p50 " << format_duration(p.p50) << "   p90 " << format_duration(p.p90)
              << "   p99 " << format_duration(p.p99) << "   max " << format_duration(p.max) << "\n";
  }

  if (o.top_errors > 0) {
    std::cout << "\n";
    if (s.top_errors.empty()) {
      std::cout << style.bold("Errors") << ": none\n";
    } else {
      Table errors({"JOBS", "MOST COMMON ERRORS (URLs as <url>)"}, {true, false});
      for (const auto& e : s.top_errors) {
        errors.add({group_digits(e.jobs), e.message});
      }
      errors.print(std::cout, style);
    }
  }

  if (o.per_day) {
    std::cout << "\n";
    Table days({"DAY (UTC)", "CREATED", "COMPLETED", "FAILED", "CANCELLED", "OPEN", "PAGES",
                "ITEMS", "AVG TIME"},
               {false, true, true, true, true, true, true, true, true});
    for (const auto& d : s.per_day) {
      days.add({core::format_timestamp(d.day).substr(0, 10), group_digits(d.created),
                group_digits(d.completed), group_digits(d.failed), group_digits(d.cancelled),
                group_digits(d.open), group_digits(d.pages), group_digits(d.items),
                d.avg_processing ? format_duration(*d.avg_processing) : "-"});
    }
    days.print(std::cout, style);
  }
  return 0;
}

// RFC 4180 field: quoted when it holds a comma, a quote or a line break.
std::string csv(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) {
    return field;
  }
  std::string out = "\"";
  for (char c : field) {
    out += c;
    if (c == '"') {
      out += '"';
    }
  }
  return out + "\"";
}

template <typename T>
std::string csv_opt(const std::optional<T>& value) {
  if (!value) {
    return "";
  }
  if constexpr (std::is_same_v<T, std::string>) {
    return csv(*value);
  } else {
    return std::to_string(*value);
  }
}

std::string csv_time(const std::optional<Micros>& at) {
  return at ? core::format_timestamp(*at) : std::string();
}

std::string csv_seconds(Micros d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", core::seconds_2dp(d));
  return buf;
}

int run_export(const InspectOptions& o) {
  const Micros now = core::SystemClock().now();
  auto history = open_history_or_report(o.db);
  if (!history) {
    return 1;
  }
  const auto filter = make_filter(o, now, std::nullopt);
  const bool jsonl = o.format == "jsonl";
  core::Status done = core::ok_status();
  if (o.events) {
    if (!jsonl) {
      std::cout << "seq,job_id,kind,page_number,item_index,url,http_status,outcome,items_found,"
                   "detail_links,error,started_at,finished_at,duration,next_url,final_url\n";
    }
    done = history->export_events(filter, [&](const store::EventRecord& r) {
      const store::PageEvent& e = r.event;
      if (jsonl) {
        std::cout << dump(event_json(r)) << "\n";
      } else {
        // The job id quoted too: a damaged or hand-edited row's may hold a
        // comma or a line break (inspect check reports such an id).
        std::cout << e.seq << ',' << csv(r.job_id) << ',' << store::to_string(e.kind) << ','
                  << e.page_number << ',' << csv_opt(r.item_index) << ',' << csv(e.url) << ','
                  << csv_opt(e.http_status) << ',' << (e.ok ? "ok" : "failed") << ','
                  << e.items_found << ',' << r.detail_links << ',' << csv_opt(e.error) << ','
                  << core::format_timestamp(e.started_at) << ','
                  << core::format_timestamp(e.finished_at) << ','
                  << csv_seconds(e.finished_at - e.started_at) << ',' << csv_opt(r.next_url)
                  << ',' << csv_opt(r.final_url) << '\n';
      }
      return static_cast<bool>(std::cout);
    });
  } else {
    if (!jsonl) {
      std::cout << "job_id,org,status,completion_reason,url,created_at,started_at,completed_at,"
                   "processing_time,listing_pages_scraped,listing_pages_failed,"
                   "detail_pages_discovered,detail_pages_scraped,detail_pages_failed,items_found,"
                   "attempts,timeout,max_items,follow_pagination,max_pages,depth,error_message\n";
    }
    done = history->export_jobs(filter, [&](const store::JobRecord& r) {
      const core::Job& j = r.job;
      if (jsonl) {
        std::cout << dump(job_json(r)) << "\n";
      } else {
        const core::JobCounters& c = j.counters;
        const core::Progress p = core::derive_progress(j, now);
        std::cout << csv(j.job_id) << ',' << csv(r.org) << ',' << core::to_string(j.status) << ','
                  << (j.completion_reason ? core::to_string(*j.completion_reason) : "") << ','
                  << csv(j.url) << ',' << core::format_timestamp(j.created_at) << ','
                  << csv_time(j.started_at) << ',' << csv_time(j.completed_at) << ','
                  << (p.processing_time ? csv_seconds(*j.completed_at - *j.started_at) : "") << ','
                  << c.listing_pages_scraped << ',' << c.listing_pages_failed << ','
                  << c.detail_pages_discovered << ',' << c.detail_pages_scraped << ','
                  << c.detail_pages_failed << ',' << c.items_found << ',' << j.attempts << ','
                  << j.options.timeout << ',' << j.options.max_items << ','
                  << (j.options.follow_pagination ? "true" : "false") << ',' << j.options.max_pages
                  << ',' << j.options.depth << ',' << csv_opt(j.error_message) << '\n';
      }
      return static_cast<bool>(std::cout);
    });
  }
  std::cout.flush();
  if (!done) {
    return fail(done.error().message);
  }
  if (!std::cout) {
    return fail("cannot write to standard output");  // as every command says it (README)
  }
  return 0;
}

int run_check(const InspectOptions& o) {
  auto history = open_history_or_report(o.db);
  if (!history) {
    return 1;
  }
  // Checking the part that can be read would say ok of a database it did
  // not see whole.
  if (const std::uintmax_t wal = history->unread_wal_bytes(); wal > 0) {
    return fail("check failed: " + unread_wal_error(o.db, wal, "check the copy"));
  }
  const Style style;
  std::int64_t shown = 0;
  if (o.json) {
    std::cout << "{\"findings\":[";
  }
  auto summary = history->check(
      store::CheckOptions{.quick = o.quick, .now = core::SystemClock().now()},
      [&](const store::Finding& f) {
        if (o.json) {
          std::cout << (shown++ ? "," : "")
                    << dump(Json{{"check", store::to_string(f.kind)},
                                 {"job_id", f.job_id.empty() ? Json(nullptr) : Json(f.job_id)},
                                 {"message", f.message}});
        } else {
          std::cout << style.red(store::to_string(f.kind)) << ": "
                    << (f.job_id.empty() ? "" : core::printable(f.job_id) + ": ")
                    << core::printable(f.message) << "\n";
          ++shown;
        }
      });
  if (!summary) {
    if (o.json) {
      std::cout << "]}\n";
    }
    return fail(summary.error().message);
  }
  const std::string checked =
      group_digits(summary->jobs) + " jobs and " + group_digits(summary->events) + " page events";
  if (o.json) {
    std::cout << "],\"ok\":" << (summary->findings == 0 ? "true" : "false")
              << ",\"jobs\":" << summary->jobs << ",\"events\":" << summary->events
              << ",\"expired_leases\":" << summary->expired_leases
              << ",\"purging\":" << summary->purging << "}\n";
  } else if (summary->findings == 0) {
    std::cout << "ok: " << checked << " checked (" << (o.quick ? "quick_check" : "integrity_check")
              << ", counters equal page events, result items numbered, leases, states)\n";
  }
  if (summary->expired_leases > 0) {
    say("note: " + group_digits(summary->expired_leases) +
        " processing jobs have an expired lease (their workers may be gone; a running server or "
        "worker takes them back)");
  }
  if (summary->purging > 0) {
    say("note: " + group_digits(summary->purging) +
        " deleted jobs still have page events or result items, not counted above (a running "
        "server or worker removes them, a batch at a time)");
  }
  if (summary->findings > 0) {
    say("check found " + group_digits(summary->findings) + " problems in " + checked);
    return 1;
  }
  return 0;
}

// ---- registration ----

// export's --json is --format jsonl; without it --format is required.
void settle_export_format(InspectOptions& o) {
  if (!o.json) {
    if (o.format.empty()) {
      throw CLI::RequiredError("--format");
    }
    return;
  }
  if (!o.format.empty() && o.format != "jsonl") {
    throw CLI::ValidationError("--json",
                               "means --format jsonl, so it cannot go with --format " + o.format);
  }
  o.format = "jsonl";
}

void add_filter_options(CLI::App* cmd, InspectOptions& o) {
  cmd->add_option("--status", o.status, "Only jobs in this status")
      ->check(CLI::IsMember({"pending", "processing", "completed", "failed", "cancelled"}));
  cmd->add_option("--org", o.org, "Only jobs of this organization (name)");
  cmd->add_option("--since", o.since,
                  "Only jobs created at or after TIME (ISO 8601, \"now\", or 90s/15m/24h/7d/2w "
                  "before now)")
      ->check(time_validator());
  cmd->add_option("--until", o.until, "Only jobs created before TIME (same forms as --since)")
      ->check(time_validator());
}

}  // namespace

void add_inspect_command(CLI::App& app, Action& action) {
  auto opts = std::make_shared<InspectOptions>();
  InspectOptions& o = *opts;
  auto* inspect = app.add_subcommand(
      "inspect", "Offline, read-only inspection of job history (never changes the database)");
  inspect->require_subcommand(1);
  add_path_option(*inspect, "--db", o.db, "Database file to read (required)");

  // Each subcommand also takes --db after its name; it must be given somewhere.
  // `check`, when given, settles the options that depend on each other.
  auto command = [&](const char* name, const char* description, int (*run)(const InspectOptions&),
                     void (*check)(InspectOptions&) = nullptr) {
    auto* cmd = inspect->add_subcommand(name, description);
    add_path_option(*cmd, "--db", o.db, "Database file to read");
    cmd->callback([&action, opts, run, check, inspect, cmd] {
      if (opts->db.empty()) {
        throw CLI::RequiredError("--db");
      }
      // Both places, one value: which one was meant is a guess.
      if (inspect->count("--db") > 0 && cmd->count("--db") > 0) {
        throw CLI::ValidationError("--db", "given both before and after the subcommand's name");
      }
      if (check) {
        check(*opts);
      }
      action = [opts, run] {
        std::ios::sync_with_stdio(false);
        return run(*opts);
      };
    });
    return cmd;
  };

  auto* jobs = command("jobs", "List jobs, newest first", run_jobs);
  add_filter_options(jobs, o);
  jobs->add_option("--limit", o.limit, "At most N jobs (default 50)")->transform(at_least_one());
  jobs->add_flag("--json", o.json, "Print {\"jobs\": [job objects], \"total\", \"limit\"}");

  auto* job = command("job", "Everything about one job: row, counters, timeline summary", run_job);
  job->add_option("ID", o.job_id, "Job id")->required();
  job->add_flag("--json", o.json, "Print the job object with lease, progress and timeline");

  auto* progress =
      command("progress", "The job's progress object, as the API computes it", run_progress);
  progress->add_option("ID", o.job_id, "Job id")->required();
  progress->add_option("--at", o.at,
                       "Derive it with the clock at TIME instead of now (the rows as stored "
                       "now: running_time and estimated_completion move, the counters do not)")
      ->check(time_validator());
  progress->add_flag("--json", o.json, "Print exactly the API's data object");

  auto* events = command("events", "The job's page-event timeline", run_events);
  events->add_option("ID", o.job_id, "Job id")->required();
  events->add_option("--limit", o.limit, "At most N events (default all)")
      ->transform(at_least_one());
  events->add_flag("--json", o.json, "Print {\"events\": [...], \"next_after\"} as the API does");

  auto* stats =
      command("stats", "Jobs by status and reason, totals, percentiles, errors", run_stats);
  stats->add_flag("--per-day", o.per_day, "Add a breakdown per UTC day of creation");
  stats->add_option("--top-errors", o.top_errors, "How many error messages to show (default 10)")
      ->transform(whole_number(0, 1000));
  stats->add_flag("--json", o.json, "Print the statistics as JSON");

  auto* exp = command("export", "Stream jobs (or page events) as JSON lines or CSV, oldest first",
                      run_export, settle_export_format);
  exp->add_option("--format", o.format, "jsonl or csv (required unless --json)")
      ->check(CLI::IsMember({"jsonl", "csv"}));
  exp->add_flag("--json", o.json, "Same as --format jsonl");
  exp->add_flag("--events", o.events, "Export the page events of the matching jobs");
  add_filter_options(exp, o);
  exp->add_option("--limit", o.limit, "At most N rows, the oldest (default all)")
      ->transform(at_least_one());

  auto* check =
      command("check", "Integrity check and invariants; exit 1 on any finding", run_check);
  check->add_flag("--quick", o.quick, "PRAGMA quick_check instead of integrity_check");
  check->add_flag("--json", o.json, "Print {\"findings\": [...], \"ok\", ...}");
}

}  // namespace scrapekeep::cli
