#include "scrapekeep/scrape/worker.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>

#include "scrapekeep/core/thread_name.hpp"
#include "scrapekeep/scrape/extractor.hpp"
#include "scrapekeep/scrape/xml_memory.hpp"

namespace scrapekeep::scrape {
namespace {

using core::Micros;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

// How often a worker waiting for fetches looks at stop, timeout and lease.
constexpr milliseconds k_tick{25};
// How old the answer to "is the job still ours?" may be when a request goes
// out (JobGate).
constexpr milliseconds k_gate_interval{10};
// How old that answer may be while the worker waits for a fetch in flight (a
// slow page, a Retry-After wait): a cancel through the API, or the job taken
// by another process, ends the wait within this.
constexpr milliseconds k_cancel_poll{250};
// Tries to give a job back on stop before leaving it to lease expiry.
constexpr int k_release_tries = 5;
constexpr milliseconds k_first_store_backoff{20};
// Detail pages stored in one transaction while more are coming, unless a
// tick passes first: each transaction writes the job's row and the pages
// of the events' indexes again, whether it stores one page or many.
constexpr std::size_t k_detail_batch = 64;
// Longest wait for the job clock to reach a deadline the steady clock passed.
constexpr milliseconds k_max_deadline_skew{1000};

Micros to_micros(milliseconds d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

// When a page's fetch started: when its request went out, after any wait for
// the host's turn since `asked_at`, and never after it finished.
Micros request_sent_at(Micros asked_at, const FetchResult& fetched, Micros finished_at) {
  return std::min(asked_at + static_cast<Micros>(fetched.host_wait.count()), finished_at);
}

// A fetch that throws (out of memory, a library bug) is a failed page, not
// a dead worker thread.
FetchResult guarded_fetch(Fetcher& fetcher, const std::string& url, SteadyTime deadline) {
  try {
    return fetcher.fetch(url, deadline);
  } catch (const std::exception& e) {
    FetchResult failed;
    failed.final_url = url;
    failed.error = std::string("internal error: ") + e.what();
    return failed;
  }
}

// Runs `extract(fetched)` on a page that came back; a page that cannot be
// parsed is a failed page, one whose deadline came before its turn to be
// parsed, or whose evaluation its job's end stopped, an abandoned one. The
// body is dropped once extracted.
template <typename Extract>
void extract_or_fail(FetchResult& fetched, Extract extract) {
  if (fetched.ok) {
    try {
      extract(fetched);
    } catch (const PageAbandoned&) {
      fetched.ok = false;
      fetched.interrupted = true;
    } catch (const std::exception& e) {
      fetched.ok = false;
      fetched.error = std::string("cannot parse the page: ") + e.what();
    }
    std::string().swap(fetched.body);  // its memory too: clear() keeps it
    fetched.body_room.release();
  }
}

// Fetches `url` and extracts from it as extract_or_fail() does.
template <typename Extract>
FetchResult fetch_and_extract(Fetcher& fetcher, const std::string& url, SteadyTime deadline,
                              Extract extract) {
  FetchResult fetched = guarded_fetch(fetcher, url, deadline);
  extract_or_fail(fetched, extract);
  return fetched;
}

// How many of a listing page's `found` items the job still has room for.
std::size_t items_to_take(const core::JobOptions& options, std::int64_t items_before, std::size_t found) {
  const auto room = static_cast<std::size_t>(std::max<std::int64_t>(0, options.max_items - items_before));
  return std::min(room, found);
}

// Where a job's pagination goes on from.
struct PaginationStart {
  std::string url;
  std::int64_t page_number = 1;
  std::int64_t items_found = 0;
  std::unordered_set<std::string> visited;  // page_identity of the listing URLs stored
};

// A listing page fetched and parsed, with the listing page to follow it.
struct ListingPage {
  std::int64_t page_number = 0;
  std::string url;
  Micros asked_at = 0;                  // when its fetch was asked for
  Micros finished_at = 0;               // fetched and parsed
  FetchResult fetched;                  // body cleared once parsed
  std::optional<ParsedListing> parsed;  // when fetched.ok
  std::optional<std::string> next;      // by the job's pagination rules
  std::int64_t items_before = 0;        // the job's items before this page's
  std::size_t take = 0;                 // of its items, those max_items leaves room for
  // A redirect took it to a listing page of the job's already stored: a loop,
  // so it is not stored, and the pagination ends there.
  bool loop = false;
};

// A job's listing pages, fetched and parsed one after the other on a thread
// of its own. Once page N is parsed, its next link is known and the rules of
// API.md say whether to follow it (follow_pagination, max_pages, max_items,
// a loop back to a page seen), page N+1 is requested while the runner
// extracts N's items and stores N. Pages are taken in order and count only
// once stored; one page at most waits to be taken, so no more than three are
// fetched and not yet stored (one being stored, one waiting, one on its
// way). Every
// request asks the fetcher's gate first, so after a cancel no new listing
// request goes out. A fetch still running when it ends is cancelled.
//
// No parse waits for ever for the parse budget (first come, first served):
// nothing that holds bytes of it waits for anything that waits for it.
// - A detail thread holds its page's bytes while it parses and extracts it,
//   and waits for nothing meanwhile.
// - A listing page holds them from its parse until the runner has extracted
//   it. The runner takes each page as it comes: it waits for detail pages
//   only once the pipeline is gone (store_details(0), settle_details), and
//   the pipeline's destructor frees the page waiting to be taken before it
//   joins. A page given back (recycle) is freed at once, or by the pipeline
//   before its next parse while it only fetches; a fetch may wait for room
//   in process_body_budget() that detail bodies waiting for their parse
//   hold, so the runner frees it once the next page is a tick late
//   (free_given_back).
// - The pipeline waits for detail pages (max_details_ahead) only before a
//   fetch, holding no page itself.
// So every holder gives its bytes back in time, and each caller of acquire()
// gets in once those before it have.
class ListingPipeline {
 public:
  // `details_behind` (may be empty): whether the job's detail pages are so
  // far behind that the next listing page waits. Called on the pipeline's
  // thread.
  ListingPipeline(const core::JobOptions& options, Fetcher& fetcher, const core::Clock& clock,
                  SteadyTime deadline, PaginationStart start,
                  std::function<bool()> details_behind)
      : m_options(options), m_fetcher(fetcher), m_clock(clock), m_deadline(deadline),
        m_start(std::move(start)), m_details_behind(std::move(details_behind)),
        m_thread([this] {
          core::name_this_thread("sk-listing");
          loop();
        }) {}
  ListingPipeline(const ListingPipeline&) = delete;
  ListingPipeline& operator=(const ListingPipeline&) = delete;
  ~ListingPipeline() {
    // The parses held here are freed first: the thread may be waiting for
    // their bytes of the parse budget.
    std::optional<ListingPage> ready;
    std::vector<ParsedListing> freed;
    {
      std::lock_guard lock(m_mutex);
      m_quit = true;
      ready.swap(m_ready);
      freed.swap(m_freed);
    }
    ready.reset();
    freed.clear();
    m_fetcher.cancel();
    m_stop_evaluations = true;
    process_parse_budget().wake();  // a page waiting for its parse turn
    m_cv.notify_all();
    m_thread.join();
  }

  // Whether the next page is ready, after waiting up to `wait`.
  bool wait_for(milliseconds wait) {
    std::unique_lock lock(m_mutex);
    return m_cv.wait_for(lock, wait, [&] { return m_ready.has_value(); });
  }

  // Gives a page's parse back, to be freed on the pipeline's thread before
  // it parses the next page: libxml2's memory is kept per thread
  // (xml_memory.cpp), and a thread that only allocated would reuse none.
  // While the pipeline parses or waits for detail pages it is freed here
  // instead: the parse it holds counts against the process's parse budget,
  // which the pipeline or the detail threads may be waiting for.
  void recycle(std::optional<ParsedListing>& parsed) {
    std::optional<ParsedListing> now;
    {
      std::lock_guard lock(m_mutex);
      if (parsed && m_free_at_once) {
        now = std::move(parsed);
      } else if (parsed) {
        m_freed.push_back(std::move(*parsed));
      }
    }
    parsed.reset();
  }

  // Frees the parses given back, here and from now on until the next parse
  // ends: for a fetch that is slow to come, which may be waiting for room in
  // process_body_budget() that bodies waiting for those parses' bytes hold.
  void free_given_back() {
    std::vector<ParsedListing> freed;
    std::lock_guard lock(m_mutex);
    freed.swap(m_freed);
    m_free_at_once = true;
  }

  // Waits for the next page and hands it over. Only called while the page
  // taken before had a next page.
  ListingPage take() {
    std::unique_lock lock(m_mutex);
    m_cv.wait(lock, [&] { return m_ready.has_value(); });
    ListingPage page = std::move(*m_ready);
    m_ready.reset();
    lock.unlock();
    m_cv.notify_all();
    return page;
  }

 private:
  void loop() {
    const StopEvaluationsOn stop(&m_stop_evaluations);
    std::optional<std::string> url = m_start.url;
    std::int64_t page_number = m_start.page_number;
    std::int64_t items_found = m_start.items_found;
    while (url) {
      if (!wait_for_details()) {
        return;
      }
      ListingPage page;
      page.page_number = page_number++;
      page.url = *url;
      page.asked_at = m_clock.now();
      page.fetched = fetch_and_extract(m_fetcher, *url, m_deadline, [&](const FetchResult& f) {
        start_parsing();
        page.parsed.emplace(f.body, f.final_url, m_options.selectors, f.charset,
                            k_xpath_step_budget, m_deadline);
      });
      {
        std::lock_guard lock(m_mutex);
        m_free_at_once = false;
      }
      page.finished_at = m_clock.now();
      if (page.fetched.ok) {
        try {
          follow(page, items_found);
        } catch (const std::exception& e) {
          page.fetched.ok = false;
          page.fetched.error = std::string("cannot follow the page: ") + e.what();
          page.parsed.reset();
        }
      }
      url = page.next;
      std::unique_lock lock(m_mutex);
      m_cv.wait(lock, [&] { return m_quit || !m_ready; });
      if (m_quit) {
        return;
      }
      m_ready = std::move(page);
      lock.unlock();
      m_cv.notify_all();
    }
  }

  // Frees the parses given back, and has those given back from now on until
  // the parse ends freed by recycle(): none is held here while the parse
  // waits for the parse budget.
  void start_parsing() {
    std::vector<ParsedListing> freed;
    std::lock_guard lock(m_mutex);
    freed.swap(m_freed);
    m_free_at_once = true;
  }

  // Waits while the job's detail pages are too far behind, holding no parse
  // meanwhile (as start_parsing()); false once told to quit.
  bool wait_for_details() {
    if (!m_details_behind || !m_details_behind()) {
      return true;
    }
    start_parsing();
    bool behind = true;
    std::unique_lock lock(m_mutex);
    while (!m_quit && behind) {
      m_cv.wait_for(lock, k_tick);
      lock.unlock();
      behind = m_details_behind();
      lock.lock();
    }
    m_free_at_once = false;
    return !m_quit;
  }

  // Which of `page`'s items count and the page to fetch after it, if any;
  // `items_found` counts its items. A page a redirect took to one visited
  // before is a loop: none of it counts.
  void follow(ListingPage& page, std::int64_t& items_found) {
    if (m_start.visited.count(page_identity(page.fetched.final_url)) != 0) {
      page.loop = true;
      page.parsed.reset();
      return;
    }
    m_start.visited.insert(page_identity(page.url));
    if (page_identity(page.fetched.final_url) != page_identity(page.url)) {  // redirected
      m_start.visited.insert(page_identity(page.fetched.final_url));
    }
    page.items_before = items_found;
    page.take = items_to_take(m_options, items_found, page.parsed->item_count());
    items_found += static_cast<std::int64_t>(page.take);
    const std::optional<std::string>& next = page.parsed->next_url();
    if (m_options.follow_pagination && next && items_found < m_options.max_items &&
        page.page_number < m_options.max_pages &&
        m_start.visited.count(page_identity(*next)) == 0) {
      page.next = next;
    }
  }

  const core::JobOptions& m_options;
  Fetcher& m_fetcher;
  const core::Clock& m_clock;
  const SteadyTime m_deadline;
  PaginationStart m_start;  // the thread's own once it runs
  const std::function<bool()> m_details_behind;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::optional<ListingPage> m_ready;
  std::vector<ParsedListing> m_freed;  // by recycle(), not yet freed
  // Parses given back are freed by recycle() at once: while the pipeline
  // parses (from start_parsing()) or waits for detail pages.
  bool m_free_at_once = false;
  bool m_quit = false;
  // Set when the pipeline goes: a page's evaluation that no step bounds
  // (StopEvaluationsOn) ends then, rather than hold the job's end.
  std::atomic<bool> m_stop_evaluations{false};
  std::thread m_thread;  // last: started once the rest is built
};

// The detail pages of a job: fetched and extracted by up to
// --detail-concurrency threads kept for the job run, from a queue that each
// stored listing page adds to. The runner stores what they bring in, in
// batches, while it goes on with the listing pages.
class DetailCrew {
 public:
  struct Done {
    store::PendingDetail pending;
    FetchResult fetched;
    core::FieldValues detail;
    Micros started_at = 0;
    Micros finished_at = 0;
  };

  // `gate` is given to every fetcher (Fetcher::set_gate).
  DetailCrew(const FetcherFactory& factory, std::function<bool()> gate, std::size_t max_threads,
             core::FieldList fields, const core::Clock& clock, SteadyTime deadline)
      : m_factory(factory),
        m_gate(std::move(gate)),
        m_max_threads(std::max<std::size_t>(1, max_threads)),
        m_fields(std::move(fields)),
        m_clock(clock),
        m_deadline(deadline) {}
  DetailCrew(const DetailCrew&) = delete;
  DetailCrew& operator=(const DetailCrew&) = delete;
  ~DetailCrew() {
    abort();
    {
      std::lock_guard lock(m_mutex);
      m_quit = true;
    }
    m_work_cv.notify_all();
    for (std::thread& t : m_threads) {
      t.join();
    }
  }

  void add(const std::vector<store::PendingDetail>& pending) {
    std::lock_guard lock(m_mutex);
    if (m_aborted) {
      return;
    }
    m_queue.insert(m_queue.end(), pending.begin(), pending.end());
    while (m_threads.size() < m_max_threads && m_threads.size() < m_in_flight + m_queue.size()) {
      m_fetchers.push_back(m_factory());
      Fetcher* fetcher = m_fetchers.back().get();
      fetcher->set_gate(m_gate);
      m_threads.emplace_back([this, fetcher] {
        core::name_this_thread("sk-detail");
        loop(*fetcher);
      });
    }
    m_work_cv.notify_all();
  }

  // What is done so far, after waiting up to `wait` for `batch` pages to be
  // done or for no more than `leave` to be left queued or in flight; `left`
  // is how many are. Fewer than `batch` are taken only once none is left or
  // the first of them has waited `wait`: none otherwise.
  std::vector<Done> take(std::size_t leave, milliseconds wait, std::size_t& left, std::size_t batch) {
    std::unique_lock lock(m_mutex);
    const auto due = [&] { return m_done.empty() ? steady_clock::now() + wait : m_first_done_at + wait; };
    if (m_done.size() < batch && m_queue.size() + m_in_flight > leave && !m_cut_short) {
      m_wake_done = batch;
      m_wake_left = leave;
      m_done_cv.wait_until(lock, due(), [&] { return wanted(); });
      m_wake_done = 1;
      m_wake_left = SIZE_MAX;
    }
    left = m_queue.size() + m_in_flight;
    const bool overdue = !m_done.empty() && steady_clock::now() >= m_first_done_at + wait;
    if (m_done.size() < batch && left > 0 && !overdue && !m_cut_short) {
      return {};
    }
    std::vector<Done> out(std::make_move_iterator(m_done.begin()), std::make_move_iterator(m_done.end()));
    m_done.clear();
    m_cut_short = false;
    return out;
  }

  bool aborted() {
    std::lock_guard lock(m_mutex);
    return m_aborted;
  }

  // Detail pages queued or in flight.
  std::size_t left() {
    std::lock_guard lock(m_mutex);
    return m_queue.size() + m_in_flight;
  }

  // Drops what is queued and cancels the fetches in flight (they come back
  // interrupted). For good: the job run is ending.
  void abort() {
    {
      std::lock_guard lock(m_mutex);
      m_aborted = true;
      m_queue.clear();
    }
    m_stop_evaluations = true;
    process_parse_budget().wake();  // a page waiting for its parse turn
    for (auto& fetcher : m_fetchers) {
      fetcher->cancel();
    }
    m_done_cv.notify_all();
  }

 private:
  void loop(Fetcher& fetcher) {
    const StopEvaluationsOn stop(&m_stop_evaluations);
    DetailExtractor extractor(m_fields);
    std::unique_lock lock(m_mutex);
    while (true) {
      m_work_cv.wait(lock, [&] { return m_quit || !m_queue.empty(); });
      if (m_quit) {
        return;
      }
      Done d;
      d.pending = std::move(m_queue.front());
      m_queue.pop_front();
      ++m_in_flight;
      lock.unlock();
      d.started_at = m_clock.now();
      d.fetched = fetch_and_extract(fetcher, d.pending.url, m_deadline, [&](const FetchResult& f) {
        d.detail = extractor.extract(f.body, f.final_url, f.charset, k_xpath_step_budget, m_deadline);
      });
      d.finished_at = m_clock.now();
      lock.lock();
      --m_in_flight;
      m_cut_short = m_cut_short || d.fetched.interrupted;
      if (m_done.empty()) {
        m_first_done_at = steady_clock::now();
      }
      m_done.push_back(std::move(d));
      if (wanted()) {
        m_done_cv.notify_one();  // not for every page: a wake-up costs about what storing a page does
      }
    }
  }

  // Whether take() waits no longer; under m_mutex. A fetch cut short (stop,
  // timeout) is taken at once: the run ends.
  bool wanted() const {
    return m_cut_short || m_done.size() >= m_wake_done || m_queue.size() + m_in_flight <= m_wake_left;
  }

  const FetcherFactory& m_factory;
  const std::function<bool()> m_gate;
  const std::size_t m_max_threads;
  const core::FieldList m_fields;
  const core::Clock& m_clock;
  const SteadyTime m_deadline;
  std::mutex m_mutex;
  std::condition_variable m_work_cv;  // something queued, or quit
  std::condition_variable m_done_cv;  // something done, or idle
  std::deque<store::PendingDetail> m_queue;
  std::deque<Done> m_done;
  std::size_t m_in_flight = 0;
  std::size_t m_wake_done = 1;         // what take() waits for: as many done,
  std::size_t m_wake_left = SIZE_MAX;  // or no more left
  bool m_cut_short = false;            // m_done holds a fetch that came back interrupted
  SteadyTime m_first_done_at{};        // when m_done's first page was done
  bool m_aborted = false;
  bool m_quit = false;
  std::atomic<bool> m_stop_evaluations{false};  // by abort(): as the pipeline's
  std::vector<std::unique_ptr<Fetcher>> m_fetchers;  // one per thread; only grows
  std::vector<std::thread> m_threads;
};

// How a job run ended for this worker.
enum class Outcome {
  finished,   // terminal state written
  lost,       // the claim was lost (cancelled, lease taken over): nothing to do
  released,   // given back (stop): waiting for the next worker
  abandoned,  // store trouble: left to lease expiry and recovery
};

// Why a job run must stop early.
enum class Interrupt { stop, timeout, lost };

struct PoolContext {
  store::JobStore& store;
  const store::StoreConfig& store_config;
  const core::Clock& clock;
  const WorkerConfig& config;
  const FetcherFactory& factory;
  const std::atomic<bool>& stopping;
  std::function<bool(milliseconds)> pause;  // false when stopping
  std::function<void(const std::string&)> log;
};

// A connection of a job run's own beside the worker's (the file is migrated
// already); null when it cannot be opened now.
std::unique_ptr<store::JobStore> open_side_store(const store::StoreConfig& store_config) {
  store::StoreConfig config = store_config;
  config.migrate = false;
  auto opened = store::JobStore::open(config);
  return opened ? std::move(*opened) : nullptr;
}

// Whether a job is still this worker's to fetch for, asked by its fetchers
// right before each request goes out (after any wait for the host's turn), so
// that a cancel or a lost lease stops new requests at once rather than at the
// job's next page write. The claim is read from the database (a connection of
// the gate's own, opened on first need) at most once per k_gate_interval;
// once lost, for good. A database that cannot answer lets the request go:
// the fenced writes still decide. Thread-safe.
class JobGate {
 public:
  JobGate(PoolContext& ctx, const store::Claim& claim) : m_ctx(ctx), m_claim(claim) {}

  // `max_age`: how old an answer may be reused (0: asked every time).
  bool open(milliseconds max_age) {
    if (m_ctx.stopping) {
      return false;
    }
    std::lock_guard lock(m_mutex);
    if (m_lost) {
      return false;
    }
    const SteadyTime now = steady_clock::now();
    if (m_checked && now - *m_checked < max_age) {
      return true;
    }
    // Asked at most once per interval, answered or not: a database that
    // cannot be opened or is busy is not asked again at every request.
    m_checked = now;
    if (!m_store && !(m_store = open_side_store(m_ctx.store_config))) {
      // Not opened because the file is gone (removed after the claim): as
      // below.
      std::error_code ec;
      if (!std::filesystem::exists(m_ctx.store_config.path, ec) && !ec) {
        m_lost = true;
        return false;
      }
      return true;
    }
    // The database file removed or replaced: what this job fetched now
    // would be stored where nobody reads it, and its site asked for nothing.
    // Stopped as a lost job is (nothing written); a file put back in place
    // lets lease recovery give the job out again.
    if (!m_store->check_file()) {
      m_lost = true;
      return false;
    }
    const auto held = m_store->holds(m_claim);
    if (!held) {
      return true;
    }
    m_lost = !*held;
    return !m_lost;
  }

  // Whether open() found the claim lost.
  bool lost() const {
    std::lock_guard lock(m_mutex);
    return m_lost;
  }

 private:
  PoolContext& m_ctx;
  const store::Claim& m_claim;
  mutable std::mutex m_mutex;
  std::optional<SteadyTime> m_checked;
  bool m_lost = false;
  std::unique_ptr<store::JobStore> m_store;
};

class JobRunner {
 public:
  JobRunner(PoolContext& ctx, store::Claim claim) : m_ctx(ctx), m_claim(std::move(claim)) {}
  // The detail pages' evaluations are stopped before the pipeline's thread
  // is joined (m_pipeline goes first): its next page may be waiting for its
  // parse turn behind a detail page whose evaluation no step bounds.
  ~JobRunner() {
    if (m_details) {
      m_details->abort();
    }
  }
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // Scrapes the claimed job until it is finished, lost, stopped or abandoned.
  Outcome run() {
    // Whatever ends the run, the watch thread does not outlive it.
    struct WatchGuard {
      JobRunner& runner;
      ~WatchGuard() { runner.stop_watch(); }
    } guard{*this};
    return run_job();
  }

 private:
  Outcome run_job();
  const core::JobOptions& options() const { return m_claim.job.options; }

  template <typename Op>
  auto with_retry(Op op) -> decltype(op());
  Outcome fail(const core::Error& error);
  Outcome finish(core::CompletionReason reason, std::optional<std::string> message = std::nullopt);
  Outcome release();
  Outcome handle(Interrupt why);
  void wait_for_wall_deadline() const;
  std::optional<Interrupt> tick();
  std::optional<Outcome> checkpoint();
  std::optional<Outcome> fetch_listing(ListingPipeline& pipeline, ListingPage& out);
  void watch_loop();
  void stop_watch();
  // Sets m_extracting for its lifetime, and stops the thread's evaluations
  // once the watch finds the run over.
  struct Watched {
    explicit Watched(JobRunner& runner) : r(runner), stop(&runner.m_stop_extracting) { set(true); }
    ~Watched() { set(false); }
    Watched(const Watched&) = delete;
    Watched& operator=(const Watched&) = delete;
    void set(bool on) {
      std::lock_guard lock(r.m_watch_mutex);
      r.m_extracting = on;
    }
    JobRunner& r;
    const StopEvaluationsOn stop;
  };
  DetailCrew& details();
  std::optional<Outcome> store_details(std::size_t leave, std::size_t batch = k_detail_batch);
  std::optional<Outcome> store_detail_batch(std::vector<DetailCrew::Done>& batch);
  void settle_details();
  Fetcher& listing_fetcher();
  std::string stored_listing_error();

  // Why a fetch came back interrupted when nothing aborted it.
  Interrupt why_interrupted() const {
    return m_ctx.stopping ? Interrupt::stop : m_gate.lost() ? Interrupt::lost : Interrupt::timeout;
  }

  PoolContext& m_ctx;
  store::Claim m_claim;
  JobGate m_gate{m_ctx, m_claim};
  Micros m_deadline_us = 0;
  SteadyTime m_deadline{};
  std::atomic<Micros> m_last_renew{0};
  std::unique_ptr<Fetcher> m_listing_fetcher;
  std::unique_ptr<DetailCrew> m_details;  // once the job has detail pages (depth 1)
  // Declared after what it uses: its destructor cancels a fetch still
  // running when the run ends early, and frees the page waiting to be taken.
  std::optional<ListingPipeline> m_pipeline;

  // Listing pages are fetched by a ListingPipeline of run_job(). While this thread
  // waits for one, a watch thread notices stop and timeout and keeps the
  // lease of a fetch that outlasts renew_interval, through its own store
  // connection, opened on first need.
  std::thread m_watch;
  std::mutex m_watch_mutex;
  std::condition_variable m_watch_cv;
  bool m_watch_quit = false;
  Fetcher* m_watched = nullptr;  // the listing fetcher while it fetches
  // While this thread extracts a listing page's items: the watch keeps the
  // lease (selectors the step budget does not bound, a union inside a
  // function, can take longer than it) and notes a stop, timeout or cancel.
  bool m_extracting = false;
  std::optional<Interrupt> m_watch_why;
  std::atomic<bool> m_stop_extracting{false};  // set with m_watch_why
  std::unique_ptr<store::JobStore> m_watch_store;
};

// Runs `op` until it succeeds or fails with something other than
// `unavailable`: a page is never dropped because the database was busy.
template <typename Op>
auto JobRunner::with_retry(Op op) -> decltype(op()) {
  milliseconds backoff = k_first_store_backoff;
  while (true) {
    auto result = op();
    if (result.ok() || result.error().code != core::ErrorCode::unavailable) {
      return result;
    }
    m_ctx.log("job " + m_claim.job_id + ": store unavailable (" + result.error().message +
              "), retrying");
    if (!m_ctx.pause(backoff)) {
      return result;
    }
    backoff = std::min(backoff * 2, m_ctx.config.max_store_backoff);
  }
}

Outcome JobRunner::fail(const core::Error& error) {
  if (error.code == core::ErrorCode::conflict || error.code == core::ErrorCode::not_found) {
    return Outcome::lost;
  }
  m_ctx.log("job " + m_claim.job_id + ": store error (" + error.message +
            "); leaving the job to lease recovery");
  return Outcome::abandoned;
}

Outcome JobRunner::finish(core::CompletionReason reason, std::optional<std::string> message) {
  settle_details();
  const core::Status status = with_retry(
      [&] { return m_ctx.store.finish(m_claim, reason, message, m_ctx.clock.now()); });
  if (!status) {
    return fail(status.error());
  }
  m_ctx.log("job " + m_claim.job_id + " finished: " + core::to_string(reason) +
            (message ? " (" + *message + ")" : std::string()));
  return Outcome::finished;
}

Outcome JobRunner::release() {
  settle_details();
  for (int attempt = 0; attempt < k_release_tries; ++attempt) {
    const core::Status status = m_ctx.store.release(m_claim);
    if (status) {
      return Outcome::released;
    }
    if (status.error().code != core::ErrorCode::unavailable) {
      return fail(status.error());
    }
    std::this_thread::sleep_for(k_first_store_backoff * (attempt + 1));
  }
  return Outcome::abandoned;
}

Outcome JobRunner::handle(Interrupt why) {
  switch (why) {
    case Interrupt::stop:
      return release();
    case Interrupt::timeout:
      wait_for_wall_deadline();
      return finish(core::CompletionReason::timeout);
    case Interrupt::lost:
      break;
  }
  return Outcome::lost;
}

// Fetches stop at a steady-clock deadline, which may come a little before
// the job clock's; a timeout is never recorded before its time.
void JobRunner::wait_for_wall_deadline() const {
  const auto give_up = steady_clock::now() + k_max_deadline_skew;
  while (!m_ctx.stopping && steady_clock::now() < give_up) {
    const Micros left = m_deadline_us - m_ctx.clock.now();
    if (left <= 0) {
      return;
    }
    std::this_thread::sleep_for(std::min<std::chrono::microseconds>(
        std::chrono::microseconds(left), std::chrono::milliseconds(10)));
  }
}

// Stop, timeout, a lost claim (the job gate, asked at most every
// k_cancel_poll, on its own connection) and lease renewal; never waits out
// a busy database (that only postpones the renewal: the lease is much
// longer, and a gate that cannot read lets the job go on).
std::optional<Interrupt> JobRunner::tick() {
  if (m_ctx.stopping) {
    return Interrupt::stop;
  }
  const Micros now = m_ctx.clock.now();
  if (now >= m_deadline_us) {
    return Interrupt::timeout;
  }
  if (!m_gate.open(k_cancel_poll)) {
    // The gate is shut by a stop too (set since the check above): that job
    // is given back, not left to lease expiry as a lost one.
    return m_gate.lost() ? Interrupt::lost : Interrupt::stop;
  }
  if (now - m_last_renew >= to_micros(m_ctx.config.renew_interval)) {
    const core::Status status = m_ctx.store.renew_lease(m_claim, now, to_micros(m_ctx.config.lease));
    if (status) {
      m_last_renew = now;
    } else if (status.error().code == core::ErrorCode::conflict ||
               status.error().code == core::ErrorCode::not_found) {
      return Interrupt::lost;
    }
  }
  return std::nullopt;
}

// Between pages: like tick(), but a renewal waits out a busy database.
std::optional<Outcome> JobRunner::checkpoint() {
  if (m_ctx.stopping) {
    return release();
  }
  const Micros now = m_ctx.clock.now();
  if (now >= m_deadline_us) {
    return finish(core::CompletionReason::timeout);
  }
  if (now - m_last_renew >= to_micros(m_ctx.config.renew_interval)) {
    const core::Status status = with_retry([&] {
      return m_ctx.store.renew_lease(m_claim, m_ctx.clock.now(), to_micros(m_ctx.config.lease));
    });
    if (!status) {
      return fail(status.error());
    }
    m_last_renew = now;
  }
  return std::nullopt;
}

Fetcher& JobRunner::listing_fetcher() {
  if (!m_listing_fetcher) {
    m_listing_fetcher = m_ctx.factory();
    // Asked afresh before each listing request: a cancel stops the next one.
    m_listing_fetcher->set_gate([this] { return m_gate.open(milliseconds(0)); });
  }
  return *m_listing_fetcher;
}

// Takes the next listing page from the pipeline, waiting under the watch
// thread; an outcome means the job run is over (stop, timeout, lost claim).
std::optional<Outcome> JobRunner::fetch_listing(ListingPipeline& pipeline, ListingPage& out) {
  {
    std::lock_guard lock(m_watch_mutex);
    if (!m_watch.joinable()) {
      m_watch = std::thread([this] {
        core::name_this_thread("sk-watch");
        watch_loop();
      });
    }
    m_watched = &listing_fetcher();
  }
  // Meanwhile the detail pages that came in are stored: each write checks
  // the job is still ours, so a cancel stops the detail threads too.
  std::optional<Outcome> outcome;
  bool ready = false;
  while (!(ready = pipeline.wait_for(k_tick))) {
    pipeline.free_given_back();
    if (m_details && (outcome = store_details(SIZE_MAX, 1))) {
      break;
    }
    std::lock_guard lock(m_watch_mutex);
    if (m_watch_why) {
      break;  // not waiting for a parse to end
    }
  }
  std::optional<Interrupt> why;
  {
    std::lock_guard lock(m_watch_mutex);
    m_watched = nullptr;
    why = m_watch_why;
  }
  if (outcome) {
    return outcome;  // the page still coming is cancelled with the pipeline
  }
  if (!ready) {
    return handle(*why);
  }
  out = pipeline.take();
  if (!why && out.fetched.interrupted) {
    why = why_interrupted();
  }
  if (why) {
    out.parsed.reset();  // not held while the detail pages settle
    return handle(*why);
  }
  return std::nullopt;
}

void JobRunner::watch_loop() {
  std::unique_lock lock(m_watch_mutex);
  while (!m_watch_quit) {
    m_watch_cv.wait_for(lock, k_tick);
    if ((m_watched == nullptr && !m_extracting) || m_watch_why) {
      continue;
    }
    // Asked without the lock: the database may take a moment to answer.
    lock.unlock();
    const bool ours = m_gate.open(k_cancel_poll);
    lock.lock();
    if ((m_watched == nullptr && !m_extracting) || m_watch_why) {
      continue;
    }
    const Micros now = m_ctx.clock.now();
    if (m_ctx.stopping) {
      m_watch_why = Interrupt::stop;
    } else if (now >= m_deadline_us) {
      m_watch_why = Interrupt::timeout;
    } else if (!ours) {
      m_watch_why = Interrupt::lost;  // cancelled, or taken by another process
    } else if (now - m_last_renew >= to_micros(m_ctx.config.renew_interval)) {
      // A long fetch: renew without holding the lock (the fetch may end meanwhile).
      lock.unlock();
      if (!m_watch_store) {
        m_watch_store = open_side_store(m_ctx.store_config);
      }
      std::optional<core::Status> status;
      if (m_watch_store) {
        status = m_watch_store->renew_lease(m_claim, now, to_micros(m_ctx.config.lease));
      }
      lock.lock();
      if (status && status->ok()) {
        m_last_renew = now;
      } else if (status && (status->error().code == core::ErrorCode::conflict ||
                            status->error().code == core::ErrorCode::not_found)) {
        m_watch_why = Interrupt::lost;
      }
      // Otherwise (busy, cannot open): tried again on the next tick.
    }
    if (m_watch_why) {
      m_stop_extracting = true;
    }
    if (m_watch_why && m_watched != nullptr) {
      m_watched->cancel();
    }
  }
}

void JobRunner::stop_watch() {
  {
    std::lock_guard lock(m_watch_mutex);
    m_watch_quit = true;
  }
  m_watch_cv.notify_all();
  if (m_watch.joinable()) {
    m_watch.join();
  }
}

DetailCrew& JobRunner::details() {
  if (!m_details) {
    m_details = std::make_unique<DetailCrew>(
        m_ctx.factory, [this] { return m_gate.open(k_gate_interval); },
        static_cast<std::size_t>(std::max(1, m_ctx.config.detail_concurrency)),
        options().selectors.detail_fields, m_ctx.clock, m_deadline);
  }
  return *m_details;
}

// Stores what the crew brought in, in one transaction. Pages whose fetch was
// interrupted (stop, timeout) are left out: they were not fetched.
std::optional<Outcome> JobRunner::store_detail_batch(std::vector<DetailCrew::Done>& batch) {
  std::vector<store::DetailPageRecord> records;
  bool interrupted = false;
  for (DetailCrew::Done& d : batch) {
    if (d.fetched.interrupted) {
      interrupted = true;
      continue;
    }
    store::DetailPageRecord& record = records.emplace_back();
    record.item_index = d.pending.item_index;
    record.url = d.pending.url;
    record.http_status = d.fetched.http_status;
    record.ok = d.fetched.ok;
    record.error = d.fetched.error;
    record.started_at = request_sent_at(d.started_at, d.fetched, d.finished_at);
    record.finished_at = d.finished_at;
    record.detail = std::move(d.detail);
  }
  if (!records.empty()) {
    const core::Status status = with_retry(
        [&] { return m_ctx.store.record_detail_pages(m_claim, records, m_ctx.clock.now()); });
    if (!status) {
      m_details->abort();
      return fail(status.error());
    }
  }
  // A fetch cut short that nobody aborted met the job's deadline (or a stop):
  // that page was not tried, so the job cannot end as done.
  if (interrupted && !m_details->aborted()) {
    m_details->abort();
    return handle(why_interrupted());
  }
  return std::nullopt;
}

// Stores the detail pages done so far, then, watching stop, timeout and lease,
// those done until no more than `leave` are left to fetch, `batch` at a time
// (see DetailCrew::take). An outcome means the job run is over.
std::optional<Outcome> JobRunner::store_details(std::size_t leave, std::size_t batch) {
  if (!m_details) {
    return std::nullopt;
  }
  while (true) {
    std::size_t left = 0;
    std::vector<DetailCrew::Done> done = m_details->take(leave, k_tick, left, batch);
    if (auto outcome = store_detail_batch(done)) {
      return outcome;
    }
    if (auto why = tick()) {
      return handle(*why);
    }
    if (left <= leave) {
      return std::nullopt;
    }
  }
}

// Before the run ends (finished or given back): what was fetched before is
// still stored, nothing more is fetched. The detail pages are aborted before
// the pipeline is joined: its next page may be waiting for its parse turn
// behind a detail page whose evaluation only the abort ends. The pipeline
// goes before the detail pages are waited for: the page it holds could keep
// them from being parsed.
void JobRunner::settle_details() {
  if (m_details) {
    m_details->abort();
  }
  m_pipeline.reset();
  if (!m_details) {
    return;
  }
  while (true) {
    std::size_t left = 0;
    std::vector<DetailCrew::Done> batch = m_details->take(0, k_tick, left, 1);
    if (store_detail_batch(batch) || left == 0) {
      return;
    }
  }
}

// "<url>: <error>" of the job's failed listing page, from its events.
std::string JobRunner::stored_listing_error() {
  constexpr std::int64_t k_events_per_read = 1000;
  std::int64_t after = 0;
  while (true) {
    auto page = with_retry([&] { return m_ctx.store.list_events(m_claim.job_id, after, k_events_per_read); });
    if (!page || page->events.empty()) {
      return "a listing page failed";
    }
    for (const store::PageEvent& event : page->events) {
      if (event.kind == store::PageKind::listing && !event.ok) {
        return event.url + ": " + event.error.value_or("failed");
      }
    }
    after = page->next_after;
  }
}

Outcome JobRunner::run_job() {
  const core::Job& job = m_claim.job;
  const Micros now = m_ctx.clock.now();
  m_last_renew = now;
  // claim_next sets started_at; were it missing, the time would count from now.
  m_deadline_us = core::time_up(job).value_or(
      now + static_cast<Micros>(job.options.timeout) * core::k_micros_per_second);
  // At most a year ahead: a damaged row's timeout or start could put the
  // deadline beyond what steady_clock holds.
  constexpr Micros k_year = Micros{366} * 86400 * core::k_micros_per_second;
  m_deadline = steady_clock::now() +
               std::chrono::microseconds(std::clamp<Micros>(m_deadline_us - now, 0, k_year));
  if (now >= m_deadline_us) {
    return finish(core::CompletionReason::timeout);
  }

  auto resume = with_retry([&] { return m_ctx.store.resume_point(m_claim); });
  if (!resume) {
    return fail(resume.error());
  }
  PaginationStart pagination;
  for (const std::string& url : resume->visited_listing_urls) {
    pagination.visited.insert(page_identity(url));
  }
  const bool depth1 = job.options.depth >= 1;
  std::function<bool()> details_behind;
  if (depth1) {
    DetailCrew& crew = details();
    if (!resume->pending_details.empty()) {
      crew.add(resume->pending_details);
    }
    details_behind = [&crew, ahead = m_ctx.config.max_details_ahead] {
      return crew.left() > ahead;
    };
  }
  if (job.counters.listing_pages_failed > 0) {
    // Interrupted after storing a failed listing page: the detail pages
    // found before it still count, as when it failed (below), then the job
    // fails.
    if (auto outcome = store_details(0)) {
      return *outcome;
    }
    return finish(core::CompletionReason::error, stored_listing_error());
  }

  std::optional<std::string> url = resume->next_url;
  if (url && resume->next_page_number == 1) {
    // The start URL as a link to it is taken: "/a/../p" asks for "/p", and
    // its events say so.
    url = strip_fragment(resolve_url(*url, *url).value_or(*url));
  }
  if (job.counters.items_found >= job.options.max_items) {
    url.reset();
  }
  if (url) {
    pagination.url = *url;
    pagination.page_number = resume->next_page_number;
    pagination.items_found = job.counters.items_found;
    m_pipeline.emplace(job.options, listing_fetcher(), m_ctx.clock, m_deadline,
                       std::move(pagination), std::move(details_behind));
  }
  while (url) {
    // The next page is fetched while this one is stored (and its detail pages
    // fetched), and counted only after.
    if (auto outcome = checkpoint()) {
      return *outcome;
    }
    ListingPage listing;
    if (auto outcome = fetch_listing(*m_pipeline, listing)) {
      return *outcome;
    }
    if (listing.loop) {
      // The page before was the last: the set of listing pages is final now,
      // as after a last page, whether the run then ends done or otherwise
      // (timeout, cancel), and a resumed run does not fetch the loop again.
      const core::Status status = with_retry(
          [&] { return m_ctx.store.end_pagination(m_claim, listing.page_number - 1); });
      if (!status) {
        return fail(status.error());
      }
      break;
    }
    FetchResult& fetched = listing.fetched;
    ListingExtraction extraction;
    {
      const Watched extracting(*this);
      extract_or_fail(fetched, [&](const FetchResult&) {
        extraction = listing.parsed->extract(depth1, listing.take);
      });
    }
    m_pipeline->recycle(listing.parsed);
    std::optional<Interrupt> why;
    {
      std::lock_guard lock(m_watch_mutex);
      why = m_watch_why;
    }
    if (fetched.interrupted || why) {
      // The watch found the run over while the page was evaluated (which
      // that stopped, or which ended first): the page is abandoned.
      return handle(why.value_or(why_interrupted()));
    }
    store::ListingPageRecord record;
    record.page_number = listing.page_number;
    record.url = listing.url;
    record.finished_at = listing.finished_at;
    record.started_at = request_sent_at(listing.asked_at, fetched, record.finished_at);
    record.http_status = fetched.http_status;

    if (!fetched.ok) {
      record.ok = false;
      record.error = fetched.error;
      record.pagination_complete = true;
      const core::Status status = with_retry(
          [&] { return m_ctx.store.record_listing_page(m_claim, record, m_ctx.clock.now()); });
      if (!status) {
        return fail(status.error());
      }
      // The detail pages of the pages before still count.
      m_pipeline.reset();
      if (auto outcome = store_details(0)) {
        return *outcome;
      }
      return finish(core::CompletionReason::error, listing.url + ": " + fetched.error);
    }

    const std::size_t take = listing.take;
    bool has_detail_links = false;
    record.items.reserve(extraction.items.size());
    for (std::size_t i = 0; i < extraction.items.size(); ++i) {
      ExtractedItem& item = extraction.items[i];
      has_detail_links = has_detail_links || (i < take && item.detail_url.has_value());
      record.items.push_back(store::NewItem{std::move(item.fields), depth1 ? item.detail_url : std::nullopt});
    }
    record.next_url = listing.next;
    record.pagination_complete = !listing.next;
    if (page_identity(fetched.final_url) != page_identity(listing.url)) {
      // Visited too, as follow() counted it: a resumed job must know it. (A
      // URL the fetcher only wrote out, without its fragment or with spaces
      // escaped, is the same page: no redirect took it elsewhere.)
      record.final_url = fetched.final_url;
    }
    const core::Status status = with_retry([&] {
      return m_ctx.store.record_listing_page(m_claim, record, m_ctx.clock.now());
    });
    if (!status) {
      return fail(status.error());
    }
    if (depth1 && has_detail_links) {
      // The items just stored, numbered as record_listing_page numbered them.
      std::vector<store::PendingDetail> pending;
      for (std::size_t i = 0; i < take; ++i) {
        if (record.items[i].detail_url) {
          pending.push_back(store::PendingDetail{listing.items_before + static_cast<std::int64_t>(i),
                                                 listing.page_number, *record.items[i].detail_url});
        }
      }
      details().add(pending);
    }
    // Not waiting for more: listing pages run ahead of their detail pages as
    // far as the pipeline lets them (max_details_ahead).
    if (auto outcome = store_details(SIZE_MAX)) {
      return *outcome;
    }
    url = std::move(listing.next);
  }
  m_pipeline.reset();
  if (auto outcome = store_details(0)) {
    return *outcome;
  }
  return finish(core::CompletionReason::done);
}

} // namespace

FetcherFactory http_fetcher_factory(FetchConfig config, std::shared_ptr<HostLimiter> limiter) {
  return [config = std::move(config), limiter = std::move(limiter)]() -> std::unique_ptr<Fetcher> {
    return std::make_unique<HttpFetcher>(config, limiter);
  };
}

WorkerPool::WorkerPool(store::StoreConfig store_config, WorkerConfig config, const core::Clock& clock,
                       FetcherFactory factory)
    : m_store_config(std::move(store_config)),
      m_config(std::move(config)),
      m_clock(clock),
      m_factory(std::move(factory)) {
  m_config.workers = std::max(0, m_config.workers);
  m_config.detail_concurrency = std::max(1, m_config.detail_concurrency);
}

WorkerPool::~WorkerPool() { stop(); }

void WorkerPool::start() {
  if (!m_threads.empty()) {
    return;
  }
  init_libxml();
  m_stopping = false;
  for (int i = 0; i < m_config.workers; ++i) {
    m_threads.emplace_back([this] {
      core::name_this_thread("sk-worker");
      run_worker();
    });
  }
}

void WorkerPool::stop() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_cv.notify_all();
  for (std::thread& t : m_threads) {
    t.join();
  }
  m_threads.clear();
}

bool WorkerPool::running() const { return !m_threads.empty(); }

int WorkerPool::busy_workers() const { return m_busy.load(); }

std::int64_t WorkerPool::jobs_finished() const { return m_finished.load(); }

bool WorkerPool::pause(milliseconds duration) {
  std::unique_lock lock(m_mutex);
  return !m_cv.wait_for(lock, duration, [this] { return m_stopping.load(); });
}

void WorkerPool::log(const std::string& line) const {
  if (m_config.log) {
    m_config.log(line);
  }
}

void WorkerPool::run_worker() {
  std::unique_ptr<store::JobStore> store;
  milliseconds backoff = k_first_store_backoff;
  while (!m_stopping) {
    auto opened = store::JobStore::open(m_store_config);
    if (opened) {
      store = std::move(*opened);
      break;
    }
    log("worker: cannot open the database: " + opened.error().message);
    pause(backoff);
    backoff = std::min(backoff * 2, m_config.max_store_backoff);
  }
  if (!store) {
    return;
  }
  PoolContext ctx{*store,
                  m_store_config,
                  m_clock,
                  m_config,
                  m_factory,
                  m_stopping,
                  [this](milliseconds d) { return pause(d); },
                  [this](const std::string& line) { log(line); }};

  std::optional<Micros> last_recover;
  // A line that says what the last one said is not written again: a
  // database that stays unavailable would write one per poll.
  std::string last_logged;
  const auto log_once = [&](const std::string& line) {
    if (line != last_logged) {
      log(line);
      last_logged = line;
    }
  };
  while (!m_stopping) {
    const Micros now = m_clock.now();
    if (core::interval_due(last_recover, now, to_micros(m_config.recover_interval))) {
      last_recover = now;
      auto recovered = store->recover_expired(now, m_config.max_attempts);
      if (recovered && *recovered > 0) {
        log("worker: recovered " + std::to_string(*recovered) + " job(s) with an expired lease");
      }
    }
    // No job is claimed from a file removed or replaced underneath (see
    // JobGate); one put back in place is worked on again.
    const core::Status file = store->check_file();
    if (!file) {
      log_once("worker: " + file.error().message + "; no job is taken until it is back");
      pause(m_config.poll_interval);
      continue;
    }
    std::vector<std::pair<std::string, std::string>> damaged;
    auto claimed = store->claim_next(now, to_micros(m_config.lease), &damaged);
    for (const auto& [id, error] : damaged) {
      log("job " + id + " finished: error (" + error + ")");
    }
    if (!claimed) {
      log_once("worker: cannot claim a job: " + claimed.error().message);
      pause(m_config.poll_interval);
      continue;
    }
    last_logged.clear();
    if (!claimed->has_value()) {
      pause(m_config.poll_interval);
      continue;
    }
    ++m_busy;
    const std::string job_id = (*claimed)->job_id;
    Outcome outcome = Outcome::abandoned;
    try {
      JobRunner runner(ctx, std::move(**claimed));
      outcome = runner.run();
    } catch (const std::exception& e) {
      // The lease runs out and recovery gives the job another try.
      log("job " + job_id + ": worker error (" + e.what() + "); leaving the job to lease recovery");
    }
    --m_busy;
    if (outcome == Outcome::finished) {
      ++m_finished;
    } else if (outcome == Outcome::lost) {
      log("job " + job_id +
          ": no longer this worker's (cancelled, deleted, taken back after its lease expired, "
          "or its database file gone); stopped, writing nothing more");
    }
  }
}

} // namespace scrapekeep::scrape
