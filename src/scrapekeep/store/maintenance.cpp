#include "scrapekeep/store/maintenance.hpp"

#include <algorithm>

#include "scrapekeep/core/thread_name.hpp"
#include "scrapekeep/store/holder.hpp"

namespace scrapekeep::store {

namespace {

using std::chrono::milliseconds;

} // namespace

bool holder_is_gone(const std::string& holder) {
  const auto theirs = parse_holder(holder);
  const auto mine = parse_holder(JobStore::process_identity());
  return theirs && mine && holder_is_gone(*theirs, *mine);
}

core::Result<RecoveryCount> recover_at_start(JobStore& store, core::Micros now,
                                             std::int64_t max_attempts) {
  RecoveryCount count;
  auto orphaned = store.expire_orphaned_leases(
      [](const std::string& holder) { return holder_is_gone(holder); });
  if (!orphaned) {
    return orphaned.error();
  }
  count.orphaned = *orphaned;
  auto recovered = store.recover_expired(now, max_attempts);
  if (!recovered) {
    return recovered.error();
  }
  count.recovered = *recovered;
  return count;
}

Maintenance::Maintenance(StoreConfig store_config, MaintenanceConfig config,
                         const core::Clock& clock)
    : m_store_config(std::move(store_config)), m_config(std::move(config)), m_clock(clock) {
  // The process migrated at start; a file removed since is not re-created.
  m_store_config.migrate = false;
}

Maintenance::~Maintenance() { stop(); }

void Maintenance::start() {
  if (m_thread.joinable()) {
    return;
  }
  {
    std::lock_guard lock(m_mutex);
    m_stopping = false;
  }
  m_thread = std::thread([this] {
    core::name_this_thread("sk-maintenance");
    run();
  });
}

void Maintenance::stop() {
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_cv.notify_all();
  if (m_thread.joinable()) {
    m_thread.join();
  }
}

void Maintenance::wake() {
  {
    std::lock_guard lock(m_mutex);
    m_woken = true;
  }
  m_cv.notify_all();
}

bool Maintenance::pause(milliseconds duration, bool wakeable) {
  std::unique_lock lock(m_mutex);
  m_cv.wait_for(lock, duration, [this, wakeable] { return m_stopping || (wakeable && m_woken); });
  if (wakeable) {
    m_woken = false;
  }
  return !m_stopping;
}

void Maintenance::log(const std::string& line) const {
  if (m_config.log) {
    m_config.log(line);
  }
}

void Maintenance::run() {
  std::unique_ptr<JobStore> store;
  const milliseconds tick = m_config.recover_interval.count() > 0
                                ? std::min(m_config.recover_interval, m_config.retention_interval)
                                : m_config.retention_interval;
  std::optional<core::Micros> last_recover;
  std::optional<core::Micros> last_retention;
  bool file_gone = false;
  bool purging = false;
  do {
    if (!store) {
      auto opened = JobStore::open(m_store_config);
      if (!opened) {
        log("maintenance: cannot open the database: " + opened.error().message);
        continue;
      }
      store = std::move(*opened);
    }
    // A removed or replaced file is not recoverable from here; say so once.
    const core::Status file = store->check_file();
    if (!file && !file_gone) {
      log("maintenance: " + file.error().message +
          "; this process takes no job and fetches nothing until it is back in place. To "
          "restore a backup, stop this process first (its -wal beside the file would be "
          "read into the restored one), then restore it and start again");
    }
    file_gone = !file;
    const core::Micros now = m_clock.now();
    const auto due = [now](std::optional<core::Micros> last, milliseconds every) {
      return core::interval_due(
          last, now, std::chrono::duration_cast<std::chrono::microseconds>(every).count());
    };
    if (due(last_recover, m_config.recover_interval)) {
      last_recover = now;
      auto moved = store->recover_expired(now, m_config.max_attempts);
      if (!moved) {
        log("maintenance: lease recovery failed: " + moved.error().message);
      } else if (*moved > 0) {
        log("recovered " + std::to_string(*moved) +
            " job(s) whose lease expired: back in work, or ended (timeout, attempt cap)");
      }
    }
    if (m_config.retain && due(last_retention, m_config.retention_interval)) {
      last_retention = now;
      const core::Micros cutoff =
          now - std::chrono::duration_cast<std::chrono::microseconds>(*m_config.retain).count();
      // Batch by batch with a pause between, so API writes interleave.
      while (true) {
        auto deleted = store->delete_terminal_before(cutoff, m_config.retention_batch);
        if (!deleted) {
          log("maintenance: retention failed: " + deleted.error().message);
          break;
        }
        if (*deleted > 0) {
          log("retention: deleted " + std::to_string(*deleted) + " job(s)");
        }
        if (*deleted < m_config.retention_batch || !pause(milliseconds(10))) {
          break;
        }
      }
    }
    // With rows left after its time slice, the loop comes round at once
    // (leases are looked at in between) and purges on.
    purging = purge(*store);
  } while (pause(purging ? milliseconds(1) : tick, true));
}

bool Maintenance::purge(JobStore& store) {
  using std::chrono::steady_clock;
  const auto until = steady_clock::now() + std::chrono::seconds(1);
  while (true) {
    const auto start = steady_clock::now();
    auto step = store.purge_deleted();
    if (!step) {
      log("maintenance: purging deleted jobs failed: " + step.error().message);
      return false;
    }
    if (step->jobs > 0) {
      log("purge: removed the last rows of " + std::to_string(step->jobs) + " deleted job(s)");
    }
    if (!step->more) {
      return false;
    }
    // As long as the batch held the write lock: a writer that waited for it
    // (sleeping in SQLite's busy handler) wakes to find the lock free.
    const auto held = std::chrono::ceil<milliseconds>(steady_clock::now() - start);
    if (!pause(std::max(milliseconds(1), held))) {
      return false;
    }
    if (steady_clock::now() >= until) {
      return true;
    }
  }
}

} // namespace scrapekeep::store
