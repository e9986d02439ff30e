// core/progress: derive_progress against API.md's table and formula, for every
// status and every branch. Every expected number is worked out by hand in the
// comment beside it. Percentages and durations are compared exactly: both are
// produced as round(x) / 10 (or / 100), which is the double nearest the
// decimal literal.

#include <catch2/catch.hpp>
#include <optional>

#include "scrapekeep/core/progress.hpp"
#include "scrapekeep/core/time_format.hpp"
#include "support/fake_clock.hpp"

namespace {

using scrapekeep::core::CompletionReason;
using scrapekeep::core::derive_progress;
using scrapekeep::core::Job;
using scrapekeep::core::JobStatus;
using scrapekeep::core::Micros;
using scrapekeep::core::Progress;
using scrapekeep::testing::FakeClock;

constexpr Micros k_second = 1'000'000;
// 2026-01-12T07:00:00Z
constexpr Micros k_t0 = 1'768'201'200'000'000;

Job base_job() {
  Job job;
  job.job_id = "job_0123456789abcdef01234567";
  job.org_id = 1;
  job.url = "http://127.0.0.1:9000/listings?page=1";
  job.created_at = k_t0;
  return job;
}

// A job being processed since k_t0 + 1 s.
Job processing_job() {
  Job job = base_job();
  job.status = JobStatus::processing;
  job.started_at = k_t0 + k_second;
  job.current_page = 1;
  job.attempts = 1;
  job.claim_token = "token";
  job.lease_expires_at = k_t0 + 31 * k_second;
  return job;
}

// The fields every status derives the same way.
void check_copied_fields(const Progress& p, const Job& job) {
  CHECK(p.job_id == job.job_id);
  CHECK(p.status == job.status);
  CHECK(p.url == job.url);
  CHECK(p.created_at == job.created_at);
  CHECK(p.pagination_complete == job.pagination_complete);
  CHECK(p.total_pages_scraped ==
        job.counters.listing_pages_scraped + job.counters.detail_pages_scraped);
  CHECK(p.total_properties_found == job.counters.items_found);
  CHECK(p.error_message == job.error_message);
}

} // namespace

TEST_CASE("FakeClock moves only when told", "[core]") {
  FakeClock clock(k_t0);
  CHECK(clock.now() == k_t0);
  CHECK(clock.now() == k_t0);
  clock.advance(1500);
  CHECK(clock.now() == k_t0 + 1500);
  clock.set_now(42);
  CHECK(clock.now() == 42);
}

TEST_CASE("progress of a pending job", "[core]") {
  FakeClock clock(k_t0 + 90 * k_second);
  Job job = base_job();
  const Progress p = derive_progress(job, clock.now());
  check_copied_fields(p, job);
  CHECK(p.status == JobStatus::pending);
  CHECK(p.current_page == 0);
  CHECK(p.total_pages_scraped == 0);
  CHECK(p.total_properties_found == 0);
  CHECK(p.progress_percentage == 0.0);
  CHECK_FALSE(p.pagination_complete);
  CHECK_FALSE(p.completion_reason.has_value());
  CHECK_FALSE(p.completed_at.has_value());
  CHECK_FALSE(p.processing_time.has_value());
  CHECK_FALSE(p.running_time.has_value());
  CHECK_FALSE(p.error_message.has_value());
  CHECK_FALSE(p.estimated_completion.has_value());
}

TEST_CASE("progress of a pending job put back after a lost lease", "[core]") {
  // A recovered job as binaries before migration 0003 left it (pending again,
  // counters and started_at kept; now it stays processing): API.md's pending
  // rule holds, 0 %, page 0, no running time, no estimate.
  FakeClock clock(k_t0 + 90 * k_second);
  Job job = base_job();
  job.started_at = k_t0 + k_second;
  job.current_page = 3;
  job.attempts = 1;
  job.options.follow_pagination = true;
  job.counters.listing_pages_scraped = 2;
  job.counters.items_found = 20;
  const Progress p = derive_progress(job, clock.now());
  check_copied_fields(p, job);
  CHECK(p.current_page == 0);
  CHECK(p.progress_percentage == 0.0);
  CHECK(p.total_pages_scraped == 2);
  CHECK(p.total_properties_found == 20);
  CHECK_FALSE(p.running_time.has_value());
  CHECK_FALSE(p.processing_time.has_value());
  CHECK_FALSE(p.estimated_completion.has_value());
  CHECK_FALSE(p.completion_reason.has_value());
}

TEST_CASE("progress of a completed job: 100 and the processing time", "[core]") {
  FakeClock clock(k_t0 + 3600 * k_second);
  Job job = base_job();
  job.status = JobStatus::completed;
  job.started_at = k_t0 + 1'500'000;     // 07:00:01.500000
  job.completed_at = k_t0 + 61'534'567;  // 07:01:01.534567
  job.current_page = 4;
  job.pagination_complete = true;
  job.options.follow_pagination = true;
  job.counters.listing_pages_scraped = 4;
  job.counters.items_found = 37;

  SECTION("done") {
    job.completion_reason = CompletionReason::done;
    const Progress p = derive_progress(job, clock.now());
    check_copied_fields(p, job);
    CHECK(p.progress_percentage == 100.0);
    CHECK(p.completion_reason == std::optional<CompletionReason>(CompletionReason::done));
    CHECK(p.completed_at == job.completed_at);
    // 61.534567 - 1.5 = 60.034567 s -> 60.03
    CHECK(p.processing_time == std::optional<double>(60.03));
    CHECK(p.current_page == 4);
    CHECK(p.total_pages_scraped == 4);
    CHECK(p.total_properties_found == 37);
    CHECK_FALSE(p.running_time.has_value());
    CHECK_FALSE(p.estimated_completion.has_value());
  }
  SECTION("timeout: partial work still reads 100") {
    job.completion_reason = CompletionReason::timeout;
    job.pagination_complete = false;
    job.counters.listing_pages_scraped = 1;  // of max_pages 10
    job.completed_at = k_t0 + 301'535'000;   // 300.035 s after the start -> 300.04
    const Progress p = derive_progress(job, clock.now());
    check_copied_fields(p, job);
    CHECK(p.progress_percentage == 100.0);
    CHECK(p.completion_reason == std::optional<CompletionReason>(CompletionReason::timeout));
    CHECK(p.processing_time == std::optional<double>(300.04));
    CHECK_FALSE(p.pagination_complete);
    CHECK_FALSE(p.running_time.has_value());
    CHECK_FALSE(p.estimated_completion.has_value());
  }
  SECTION("the answer does not depend on the clock once terminal") {
    job.completion_reason = CompletionReason::done;
    const Progress a = derive_progress(job, clock.now());
    clock.advance(86'400 * k_second);
    const Progress b = derive_progress(job, clock.now());
    CHECK(a.processing_time == b.processing_time);
    CHECK(a.progress_percentage == b.progress_percentage);
    CHECK_FALSE(b.running_time.has_value());
  }
}

TEST_CASE("progress of a failed job keeps the percentage it stopped at", "[core]") {
  FakeClock clock(k_t0 + 600 * k_second);
  Job job = base_job();
  job.status = JobStatus::failed;
  job.completion_reason = CompletionReason::error;
  job.error_message = "listing page http://127.0.0.1:9000/listings?page=3 failed: HTTP 500";
  job.started_at = k_t0 + k_second;
  job.completed_at = k_t0 + 46 * k_second + 4'999;  // 45.004999 s -> 45.0
  job.current_page = 3;
  job.options.follow_pagination = true;
  job.counters.listing_pages_scraped = 2;
  job.counters.listing_pages_failed = 1;
  job.counters.items_found = 20;
  // Stored at the moment it stopped; rounded to 1 decimal on the way out
  // (37.46 -> 37.5), even though the live formula would now say 30.0.
  job.stopped_percentage = 37.46;

  const Progress p = derive_progress(job, clock.now());
  check_copied_fields(p, job);
  CHECK(p.progress_percentage == 37.5);
  CHECK(p.completion_reason == std::optional<CompletionReason>(CompletionReason::error));
  CHECK(p.error_message == job.error_message);
  CHECK(p.completed_at == job.completed_at);
  CHECK(p.processing_time == std::optional<double>(45.0));
  CHECK(p.current_page == 3);
  CHECK(p.total_pages_scraped == 2);
  CHECK_FALSE(p.running_time.has_value());
  CHECK_FALSE(p.estimated_completion.has_value());

  clock.advance(3600 * k_second);
  CHECK(derive_progress(job, clock.now()).progress_percentage == 37.5);
}

TEST_CASE("progress of a cancelled job", "[core]") {
  FakeClock clock(k_t0 + 600 * k_second);
  Job job = base_job();
  job.status = JobStatus::cancelled;
  job.completion_reason = CompletionReason::cancelled;

  SECTION("cancelled while processing: frozen percentage, processing time") {
    job.started_at = k_t0 + k_second;
    job.completed_at = k_t0 + 13 * k_second + 345'678;  // 12.345678 s -> 12.35
    job.current_page = 2;
    job.counters.listing_pages_scraped = 1;
    job.counters.items_found = 12;
    job.stopped_percentage = 12.0;
    const Progress p = derive_progress(job, clock.now());
    check_copied_fields(p, job);
    CHECK(p.progress_percentage == 12.0);
    CHECK(p.completion_reason == std::optional<CompletionReason>(CompletionReason::cancelled));
    CHECK(p.completed_at == job.completed_at);
    CHECK(p.processing_time == std::optional<double>(12.35));
    CHECK(p.current_page == 1);  // the last listing page processed, not the next one
    CHECK_FALSE(p.running_time.has_value());
    CHECK_FALSE(p.estimated_completion.has_value());
  }
  SECTION("cancelled while pending: 0, never started, no processing time") {
    job.completed_at = k_t0 + 5 * k_second;
    job.stopped_percentage = 0.0;
    const Progress p = derive_progress(job, clock.now());
    check_copied_fields(p, job);
    CHECK(p.progress_percentage == 0.0);
    CHECK(p.current_page == 0);
    CHECK(p.completed_at == job.completed_at);
    CHECK_FALSE(p.processing_time.has_value());
    CHECK_FALSE(p.running_time.has_value());
    CHECK_FALSE(p.estimated_completion.has_value());
  }
}

TEST_CASE("processing without follow_pagination plans one listing page", "[core]") {
  FakeClock clock(k_t0 + 11 * k_second);  // 10 s after started_at
  Job job = processing_job();
  job.options.follow_pagination = false;
  job.options.max_pages = 10;  // ignored: L = 1
  job.options.max_items = 100;

  SECTION("before page 1 is stored: 0 %, no estimate") {
    const Progress p = derive_progress(job, clock.now());
    check_copied_fields(p, job);
    CHECK(p.progress_percentage == 0.0);
    CHECK(p.current_page == 1);
    CHECK(p.running_time == std::optional<double>(10.0));
    CHECK_FALSE(p.estimated_completion.has_value());
    CHECK_FALSE(p.completion_reason.has_value());
    CHECK_FALSE(p.completed_at.has_value());
    CHECK_FALSE(p.processing_time.has_value());
  }
  SECTION("after page 1: (1 + 0) / (1 + 0) = 1 -> capped at 99.9") {
    job.counters.listing_pages_scraped = 1;
    job.counters.items_found = 10;  // 10 / 100 = 0.1 loses to 1
    job.pagination_complete = true;
    const Progress p = derive_progress(job, clock.now());
    CHECK(p.progress_percentage == 99.9);
    // estimated_completion = started_at + 10 s / 1
    CHECK(p.estimated_completion == std::optional<Micros>(*job.started_at + 10 * k_second));
  }
  SECTION("a failed listing page counts as done") {
    job.counters.listing_pages_failed = 1;
    const Progress p = derive_progress(job, clock.now());
    CHECK(p.progress_percentage == 99.9);
    CHECK(p.total_pages_scraped == 0);
  }
}

TEST_CASE("processing with follow_pagination plans max_pages until pagination is complete",
          "[core]") {
  FakeClock clock(k_t0 + 31 * k_second);  // 30 s after started_at
  Job job = processing_job();
  job.options.follow_pagination = true;
  job.options.max_items = 1000;

  SECTION("L = max_pages = 8, 2 scraped + 1 failed: 3 / 8 = 37.5 %") {
    job.options.max_pages = 8;
    job.counters.listing_pages_scraped = 2;
    job.counters.listing_pages_failed = 1;
    job.counters.items_found = 20;  // 20 / 1000 = 0.02 loses
    job.current_page = 4;
    const Progress p = derive_progress(job, clock.now());
    check_copied_fields(p, job);
    CHECK(p.progress_percentage == 37.5);
    CHECK(p.current_page == 4);
    CHECK(p.total_pages_scraped == 2);
    CHECK(p.running_time == std::optional<double>(30.0));
    // 30 s / 0.375 = 80 s after started_at
    CHECK(p.estimated_completion == std::optional<Micros>(*job.started_at + 80 * k_second));
  }
  SECTION("1 decimal: 1 / 3 -> 33.3, 2 / 3 -> 66.7") {
    job.options.max_pages = 3;
    job.counters.listing_pages_scraped = 1;
    Progress p = derive_progress(job, clock.now());
    CHECK(p.progress_percentage == 33.3);
    // 30 s / (1/3) = 90 s
    CHECK(p.estimated_completion == std::optional<Micros>(*job.started_at + 90 * k_second));
    job.counters.listing_pages_scraped = 2;
    p = derive_progress(job, clock.now());
    CHECK(p.progress_percentage == 66.7);
    // 30 s / (2/3) = 45 s
    CHECK(p.estimated_completion == std::optional<Micros>(*job.started_at + 45 * k_second));
  }
  SECTION("pagination complete: L = listing pages seen") {
    job.options.max_pages = 10;
    job.counters.listing_pages_scraped = 4;
    job.pagination_complete = true;
    const Progress p = derive_progress(job, clock.now());
    CHECK(p.pagination_complete);
    // (4 + 0) / (4 + 0) = 1 -> 99.9, not 4 / 10
    CHECK(p.progress_percentage == 99.9);
  }
  SECTION("the cap: 99.95 and 99.94 both read 99.9") {
    job.options.max_pages = 10000;
    job.counters.listing_pages_scraped = 9995;
    CHECK(derive_progress(job, clock.now()).progress_percentage == 99.9);
    job.counters.listing_pages_scraped = 9994;
    CHECK(derive_progress(job, clock.now()).progress_percentage == 99.9);
  }
}

TEST_CASE("processing: items / max_items wins when it is larger", "[core]") {
  FakeClock clock(k_t0 + 21 * k_second);  // 20 s after started_at
  Job job = processing_job();
  job.options.follow_pagination = true;
  job.options.max_pages = 10;
  job.options.max_items = 100;
  job.counters.listing_pages_scraped = 2;  // pages: 2 / 10 = 0.2

  SECTION("40 of 100 items: max(0.2, 0.4) = 40.0 %") {
    job.counters.items_found = 40;
    const Progress p = derive_progress(job, clock.now());
    CHECK(p.progress_percentage == 40.0);
    CHECK(p.total_properties_found == 40);
    // 20 s / 0.4 = 50 s
    CHECK(p.estimated_completion == std::optional<Micros>(*job.started_at + 50 * k_second));
  }
  SECTION("10 of 100 items: max(0.2, 0.1) = 20.0 %") {
    job.counters.items_found = 10;
    const Progress p = derive_progress(job, clock.now());
    CHECK(p.progress_percentage == 20.0);
    // 20 s / 0.2 = 100 s
    CHECK(p.estimated_completion == std::optional<Micros>(*job.started_at + 100 * k_second));
  }
  SECTION("max_items reached: capped at 99.9 until the job is finished") {
    job.counters.items_found = 100;
    CHECK(derive_progress(job, clock.now()).progress_percentage == 99.9);
  }
}

TEST_CASE("processing at depth 1 before pagination is complete extrapolates D", "[core]") {
  FakeClock clock(k_t0 + 26 * k_second);  // 25 s after started_at
  Job job = processing_job();
  job.options.depth = 1;
  job.options.follow_pagination = true;
  job.options.max_pages = 10;
  job.options.max_items = 1000;

  SECTION("no listing page done yet: D = discovered = 0, fraction 0") {
    const Progress p = derive_progress(job, clock.now());
    CHECK(p.progress_percentage == 0.0);
    CHECK_FALSE(p.estimated_completion.has_value());
    CHECK(p.running_time == std::optional<double>(25.0));
  }
  SECTION("2 listing pages, 8 links, 3 detail pages done") {
    job.counters.listing_pages_scraped = 2;
    job.counters.detail_pages_discovered = 8;
    job.counters.detail_pages_scraped = 2;
    job.counters.detail_pages_failed = 1;
    job.counters.items_found = 8;  // 8 / 1000 loses
    job.current_page = 3;
    // L = 10; D = 8 + (10 - 2) x (8 / 2) = 40; (2 + 3) / (10 + 40) = 0.1 -> 10.0
    const Progress p = derive_progress(job, clock.now());
    CHECK(p.progress_percentage == 10.0);
    // listing 2 + detail 2 scraped (failed pages are not "scraped")
    CHECK(p.total_pages_scraped == 4);
    // 25 s / 0.1 = 250 s
    CHECK(p.estimated_completion == std::optional<Micros>(*job.started_at + 250 * k_second));
  }
  SECTION("a failed listing page counts as done in the average too") {
    job.counters.listing_pages_scraped = 1;
    job.counters.listing_pages_failed = 1;
    job.counters.detail_pages_discovered = 6;
    job.counters.detail_pages_scraped = 6;
    // done = 2; D = 6 + (10 - 2) x (6 / 2) = 30; (2 + 6) / (10 + 30) = 0.2 -> 20.0
    CHECK(derive_progress(job, clock.now()).progress_percentage == 20.0);
  }
  SECTION("without follow_pagination L = 1, nothing to extrapolate") {
    job.options.follow_pagination = false;
    job.counters.listing_pages_scraped = 1;
    job.counters.detail_pages_discovered = 5;
    // D = 5 + (1 - 1) x 5 = 5; (1 + 0) / (1 + 5) = 1/6 -> 16.7
    CHECK(derive_progress(job, clock.now()).progress_percentage == 16.7);
  }
}

TEST_CASE("processing at depth 1 after pagination is complete plans the links found", "[core]") {
  FakeClock clock(k_t0 + 61 * k_second);  // 60 s after started_at
  Job job = processing_job();
  job.options.depth = 1;
  job.options.follow_pagination = true;
  job.options.max_pages = 10;
  job.options.max_items = 1000;
  job.pagination_complete = true;
  job.current_page = 4;
  job.counters.listing_pages_scraped = 4;
  job.counters.detail_pages_discovered = 20;
  job.counters.detail_pages_scraped = 9;
  job.counters.detail_pages_failed = 1;
  job.counters.items_found = 20;
  // L = 4; D = 20; (4 + 10) / (4 + 20) = 14/24 = 0.58333 -> 58.3
  const Progress p = derive_progress(job, clock.now());
  CHECK(p.pagination_complete);
  CHECK(p.progress_percentage == 58.3);
  CHECK(p.total_pages_scraped == 13);
  CHECK(p.running_time == std::optional<double>(60.0));
  // 60 s / (14/24) = 102.857142857 s -> 102'857'143 us after started_at
  CHECK(p.estimated_completion == std::optional<Micros>(*job.started_at + 102'857'143));

  SECTION("every detail page tried: 99.9 until the worker finishes the job") {
    job.counters.detail_pages_scraped = 18;
    job.counters.detail_pages_failed = 2;
    CHECK(derive_progress(job, clock.now()).progress_percentage == 99.9);
  }
}

TEST_CASE("running_time follows the clock while processing", "[core]") {
  FakeClock clock(k_t0 + k_second);
  Job job = processing_job();  // started at k_t0 + 1 s
  job.options.follow_pagination = true;
  job.options.max_pages = 4;
  job.counters.listing_pages_scraped = 1;  // 1/4

  CHECK(derive_progress(job, clock.now()).running_time == std::optional<double>(0.0));
  clock.advance(12'345'678);  // 12.345678 s -> 12.35
  Progress p = derive_progress(job, clock.now());
  CHECK(p.running_time == std::optional<double>(12.35));
  // 12.345678 s / 0.25 = 49.382712 s
  CHECK(p.estimated_completion == std::optional<Micros>(*job.started_at + 49'382'712));
  clock.set_now(*job.started_at + 60'034'999);  // 60.034999 -> 60.03
  CHECK(derive_progress(job, clock.now()).running_time == std::optional<double>(60.03));
  clock.set_now(*job.started_at + 60'035'000);  // 60.035 -> 60.04
  CHECK(derive_progress(job, clock.now()).running_time == std::optional<double>(60.04));
  // A clock behind started_at (another host's clock) never gives a negative time.
  clock.set_now(*job.started_at - 5 * k_second);
  CHECK(derive_progress(job, clock.now()).running_time == std::optional<double>(0.0));
}

TEST_CASE("progress: an ended job's current_page is the last listing page it processed",
          "[core][progress]") {
  FakeClock clock(k_t0 + 60 * k_second);
  Job job = base_job();
  job.started_at = k_t0 + k_second;
  job.completed_at = k_t0 + 5 * k_second;
  job.options.follow_pagination = true;
  job.options.max_pages = 50;
  // The worker stored page 1 and was about to fetch page 2 when time ran
  // out: the row points at page 2, which was never processed.
  job.current_page = 2;
  job.counters.listing_pages_scraped = 1;
  job.counters.items_found = 20;
  job.stopped_percentage = 2.0;

  SECTION("timeout") {
    job.status = JobStatus::completed;
    job.completion_reason = CompletionReason::timeout;
    CHECK(derive_progress(job, clock.now()).current_page == 1);
  }
  SECTION("cancelled") {
    job.status = JobStatus::cancelled;
    job.completion_reason = CompletionReason::cancelled;
    CHECK(derive_progress(job, clock.now()).current_page == 1);
  }
  SECTION("a failed page counts as processed") {
    job.status = JobStatus::failed;
    job.completion_reason = CompletionReason::error;
    job.counters.listing_pages_failed = 1;
    CHECK(derive_progress(job, clock.now()).current_page == 2);
  }
  SECTION("cancelled while pending: none") {
    job.status = JobStatus::cancelled;
    job.completion_reason = CompletionReason::cancelled;
    job.started_at.reset();
    job.current_page = 0;
    job.counters = {};
    CHECK(derive_progress(job, clock.now()).current_page == 0);
  }
  SECTION("still processing: the page being fetched") {
    job.status = JobStatus::processing;
    job.completed_at.reset();
    job.lease_expires_at = k_t0 + 90 * k_second;
    CHECK(derive_progress(job, clock.now()).current_page == 2);
  }
}
