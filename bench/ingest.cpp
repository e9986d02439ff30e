// ingest: synthetic scraper workers storing page events through the job store
// (no network), or the raw SQLite ceiling for the same rows.
//
//   ingest --db PATH --mode group|single|ceiling [--workers 32] [--jobs 2000]
//          [--events 20000 | --seconds S] [--items 5] [--synchronous normal|full]
//          [--readers 0] [--wal-every 0]
//
// group/single: `--jobs` new jobs are created and claimed, then `--workers`
// threads, each with its own JobStore, record listing pages (each with
// `--items` items) round-robin over their share of the jobs; `single` turns
// group commit off (one transaction per event, as before). ceiling: the same
// rows (event, items, counter update per event) written by one connection in
// one transaction with prepared statements. `--readers` threads, each with its
// own JobStore, read jobs (as progress polls do) while the workers write;
// `--wal-every S` prints the size of the database's -wal file and the frames
// in use every S seconds (`WAL seconds bytes frames`) and the file's largest
// size at the end (`WAL max bytes`); with readers, `READS reads reads_per_s`
// follows. Prints one line:
//   RESULT mode events seconds events_per_s transactions

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "scrapekeep/cli/command.hpp"
#include "scrapekeep/core/clock.hpp"
#include "scrapekeep/store/group_commit.hpp"
#include "scrapekeep/store/job_store.hpp"
#include "scrapekeep/store/json_codec.hpp"

namespace {

using scrapekeep::core::Micros;
using scrapekeep::store::Claim;
using scrapekeep::store::JobStore;
using scrapekeep::store::ListingPageRecord;
using scrapekeep::store::NewItem;
using scrapekeep::store::StoreConfig;
using scrapekeep::store::Synchronous;

struct Options {
  std::string db;
  std::string mode = "group";
  int workers = 32;
  int jobs = 2000;
  long events = 20000;
  double seconds = 0;
  int items = 5;
  std::string synchronous = "normal";
  int readers = 0;
  double wal_every = 0;
};

[[noreturn]] void die(const std::string& message) {
  std::cerr << "ingest: " << message << "\n";
  std::exit(1);
}

Options parse(int argc, char** argv) {
  Options o;
  CLI::App app("Synthetic scraper workers storing page events (see the comment at the top of "
               "bench/ingest.cpp)",
               "ingest");
  app.add_option("--db", o.db, "Database file")->required();
  app.add_option("--mode", o.mode)
      ->check(CLI::IsMember({"group", "single", "ceiling"}))
      ->capture_default_str();
  const auto positive = scrapekeep::cli::at_least_one();
  const auto whole = scrapekeep::cli::whole_number(0, std::numeric_limits<int>::max());
  app.add_option("--workers", o.workers)->transform(positive)->capture_default_str();
  app.add_option("--jobs", o.jobs)->transform(positive)->capture_default_str();
  app.add_option("--events", o.events)->transform(positive)->capture_default_str();
  app.add_option("--seconds", o.seconds)->capture_default_str();
  app.add_option("--items", o.items)->transform(whole)->capture_default_str();
  app.add_option("--synchronous", o.synchronous)
      ->check(CLI::IsMember({"normal", "full"}))
      ->capture_default_str();
  app.add_option("--readers", o.readers)->transform(whole)->capture_default_str();
  app.add_option("--wal-every", o.wal_every)->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  o.jobs = std::max(o.workers, o.jobs);
  return o;
}

ListingPageRecord make_page(std::int64_t number, int items, Micros now) {
  ListingPageRecord r;
  r.page_number = number;
  r.url = "http://127.0.0.1:9000/listing?page=" + std::to_string(number);
  r.http_status = 200;
  r.started_at = now - 200'000;
  r.finished_at = now;
  for (int i = 0; i < items; ++i) {
    NewItem item;
    item.fields = {{"title", "Synthetic item " + std::to_string(number) + "-" + std::to_string(i)},
                   {"price", std::to_string(100 + i) + " EUR"}};
    r.items.push_back(std::move(item));
  }
  r.next_url = "http://127.0.0.1:9000/listing?page=" + std::to_string(number + 1);
  return r;
}

double since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The WAL's length in frames (mxFrame of the wal-index header at the start
// of the -shm file, https://sqlite.org/walformat.html); 0 when unknown.
std::uint32_t wal_frames(const std::string& db) {
  std::uint32_t frames = 0;
  if (std::FILE* shm = std::fopen((db + "-shm").c_str(), "rb")) {
    if (std::fseek(shm, 16, SEEK_SET) != 0 || std::fread(&frames, sizeof frames, 1, shm) != 1) {
      frames = 0;
    }
    std::fclose(shm);
  }
  return frames;
}

// The size of `db`'s -wal file; 0 when there is none.
std::uintmax_t wal_bytes(const std::string& db) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(db + "-wal", ec);
  return ec ? 0 : size;
}

} // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  scrapekeep::core::SystemClock clock;
  StoreConfig config{.path = o.db,
                     .synchronous = o.synchronous == "full" ? Synchronous::full
                                                            : Synchronous::normal,
                     .group_commit = o.mode == "group"};
  auto opened = JobStore::open(config);
  if (!opened) {
    die(opened.error().message);
  }
  JobStore& setup = **opened;
  auto key = setup.create_key("ingest-bench", clock.now());
  if (!key) {
    die(key.error().message);
  }
  scrapekeep::core::JobOptions options;
  options.follow_pagination = true;
  options.max_pages = 1'000'000;
  options.max_items = 1'000'000'000;
  // Pending jobs of the database (if any) are claimed too; only ours are used.
  std::vector<std::string> ours;
  for (int i = 0; i < o.jobs; ++i) {
    auto job = setup.create_job(key->info.org_id, "http://127.0.0.1:9000/listing?page=1", options,
                                clock.now());
    if (!job) {
      die(job.error().message);
    }
    ours.push_back(job->job_id);
  }
  std::vector<Claim> claims;
  {
    // Claim our jobs directly (the database may hold other pending jobs).
    SQLite::Database& db = setup.database();
    SQLite::Statement q(db,
                        "UPDATE jobs SET status = 'processing', started_at = ?, attempts = 1, "
                        "claim_token = ?, claimed_by = ?, lease_expires_at = ?, current_page = 1 "
                        "WHERE job_id = ?");
    SQLite::Transaction tx(db);
    for (size_t i = 0; i < ours.size(); ++i) {
      Claim c;
      c.job_id = ours[i];
      c.token = "bench" + std::to_string(i);
      q.bind(1, clock.now());
      q.bind(2, c.token);
      q.bind(3, JobStore::process_identity());
      q.bind(4, static_cast<std::int64_t>(clock.now() + 3600LL * 1'000'000));
      q.bind(5, c.job_id);
      q.exec();
      q.reset();
      claims.push_back(std::move(c));
    }
    tx.commit();
  }

  const Micros now = clock.now();
  std::atomic<long> stored{0};
  std::atomic<long> failed{0};
  auto start = std::chrono::steady_clock::now();
  long transactions = 0;

  if (o.mode == "ceiling") {
    SQLite::Database& db = setup.database();
    SQLite::Statement ins(db,
                          "INSERT INTO result_items (job_id, item_index, page_number, page_url, "
                          "fields, detail_url) VALUES (?, ?, ?, ?, ?, NULL)");
    SQLite::Statement ev(db,
                         "INSERT INTO page_events (job_id, kind, page_number, url, http_status, "
                         "outcome, items_found, detail_links, next_url, error, started_at, "
                         "finished_at, job_seq) VALUES (?, 'listing', ?, ?, 200, 'ok', ?, 0, ?, NULL, "
                         "?, ?, ?)");
    SQLite::Statement up(db,
                         "UPDATE jobs SET listing_pages_scraped = listing_pages_scraped + 1, "
                         "items_found = items_found + ?, current_page = ? WHERE job_id = ?");
    std::vector<std::int64_t> next_page(claims.size(), 1);
    // Pages are built before the clock starts for the ceiling (they are built
    // by the workers' own threads in the other modes).
    std::vector<ListingPageRecord> pages;
    for (long e = 0; e < o.events; ++e) {
      const size_t j = static_cast<size_t>(e) % claims.size();
      pages.push_back(make_page(next_page[j]++, o.items, now));
    }
    start = std::chrono::steady_clock::now();
    SQLite::Transaction tx(db, SQLite::TransactionBehavior::IMMEDIATE);
    std::vector<std::int64_t> items_so_far(claims.size(), 0);
    for (long e = 0; e < o.events; ++e) {
      const size_t j = static_cast<size_t>(e) % claims.size();
      const ListingPageRecord& p = pages[static_cast<size_t>(e)];
      for (size_t i = 0; i < p.items.size(); ++i) {
        ins.bind(1, claims[j].job_id);
        ins.bind(2, items_so_far[j]++);
        ins.bind(3, p.page_number);
        ins.bind(4, p.url);
        ins.bind(5, scrapekeep::store::to_json(p.items[i].fields).dump());
        ins.exec();
        ins.reset();
      }
      ev.bind(1, claims[j].job_id);
      ev.bind(2, p.page_number);
      ev.bind(3, p.url);
      ev.bind(4, static_cast<std::int64_t>(p.items.size()));
      ev.bind(5, *p.next_url);
      ev.bind(6, p.started_at);
      ev.bind(7, p.finished_at);
      ev.bind(8, p.page_number);  // a job's events here are its listing pages, in order
      ev.exec();
      ev.reset();
      up.bind(1, static_cast<std::int64_t>(p.items.size()));
      up.bind(2, p.page_number + 1);
      up.bind(3, claims[j].job_id);
      up.exec();
      up.reset();
    }
    tx.commit();
    stored = o.events;
    transactions = 1;
  } else {
    // Jobs are ready: a script running readers alongside starts them now.
    std::printf("STARTED\n");
    std::fflush(stdout);
    start = std::chrono::steady_clock::now();
    const auto deadline =
        start + std::chrono::microseconds(static_cast<long>(o.seconds * 1'000'000));
    // Every worker's connection, opened before the clock starts.
    std::vector<std::unique_ptr<JobStore>> stores;
    for (int w = 0; w < o.workers; ++w) {
      auto mine = JobStore::open(config);
      if (!mine) {
        die(mine.error().message);
      }
      stores.push_back(std::move(*mine));
    }
    const std::size_t batches_before = stores.front()->committed_batches();
    std::atomic<bool> writing{true};
    std::atomic<long> reads{0};
    std::vector<std::thread> watchers;
    for (int r = 0; r < o.readers; ++r) {
      auto reader = JobStore::open(config);
      if (!reader) {
        die(reader.error().message);
      }
      watchers.emplace_back([&, r, store = std::shared_ptr<JobStore>(std::move(*reader))] {
        for (size_t j = static_cast<size_t>(r); writing; j += 7) {
          (void)store->get_job(claims[j % claims.size()].job_id, std::nullopt);
          ++reads;
        }
      });
    }
    std::uintmax_t wal_max = 0;
    if (o.wal_every > 0) {
      watchers.emplace_back([&] {
        const auto every = std::chrono::microseconds(static_cast<long>(o.wal_every * 1'000'000));
        for (auto next = start + every; writing; next += every) {
          while (writing && std::chrono::steady_clock::now() < next) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            wal_max = std::max(wal_max, wal_bytes(o.db));
          }
          std::printf("WAL %.1f %ju %u\n", since(start), wal_bytes(o.db), wal_frames(o.db));
          std::fflush(stdout);
        }
      });
    }
    std::vector<std::thread> threads;
    for (int w = 0; w < o.workers; ++w) {
      threads.emplace_back([&, w] {
        JobStore* mine = stores[static_cast<size_t>(w)].get();
        // This worker's jobs: every workers-th one, starting at w.
        std::vector<size_t> jobs;
        for (size_t j = static_cast<size_t>(w); j < claims.size();
             j += static_cast<size_t>(o.workers)) {
          jobs.push_back(j);
        }
        std::vector<std::int64_t> next_page(jobs.size(), 1);
        const long quota = o.events / o.workers + (w < o.events % o.workers ? 1 : 0);
        for (long e = 0;; ++e) {
          if (o.seconds > 0 ? std::chrono::steady_clock::now() >= deadline : e >= quota) {
            break;
          }
          const size_t k = static_cast<size_t>(e) % jobs.size();
          auto page = make_page(next_page[k]++, o.items, now);
          auto st = mine->record_listing_page(claims[jobs[k]], page, now);
          (st ? stored : failed)++;
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    writing = false;
    for (auto& t : watchers) {
      t.join();
    }
    if (o.wal_every > 0) {
      std::printf("WAL max %ju\n", std::max(wal_max, wal_bytes(o.db)));
    }
    if (o.readers > 0) {
      std::printf("READS %ld %.0f\n", reads.load(),
                  static_cast<double>(reads.load()) / since(start));
    }
    transactions = o.mode == "group"
                       ? static_cast<long>(stores.front()->committed_batches() - batches_before)
                       : stored.load();
  }
  const double secs = since(start);
  if (failed > 0) {
    std::cerr << "ingest: " << failed << " events failed\n";
  }
  std::printf("RESULT %s %ld %.3f %.0f %ld\n", o.mode.c_str(), stored.load(), secs,
              static_cast<double>(stored.load()) / secs, transactions);
  return failed > 0 ? 1 : 0;
}
