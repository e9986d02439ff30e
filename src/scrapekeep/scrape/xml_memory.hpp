#pragma once
// libxml2's allocations, kept per thread for reuse.
//
// Parsing one listing page makes about a thousand small allocations (nodes,
// attributes, text) that are all freed with the document; glibc's malloc,
// whose per-thread cache holds 7 blocks of a size, spends about a third of
// the parse in malloc and free (measured: 266 us per 7.8 KB page, 171 us with
// a larger cache). Here each thread keeps the blocks of up to 512 bytes it
// frees, up to 1 MiB, for its next allocations; larger blocks, and what is
// freed beyond that, go straight back to malloc. A block freed by another
// thread than the one that allocated it simply joins that thread's blocks.
// Off under AddressSanitizer, so that it still sees every block.

#include <atomic>
#include <cstddef>

namespace scrapekeep::scrape {

// Makes libxml2 allocate through the pool. Called once, by init_libxml(),
// before libxml2 allocates anything; blocks libxml2 allocated before are
// still freed correctly.
void use_pooled_xml_memory();

// While one lives, libxml2's allocations on this thread add one to `*count`
// per k_bytes_per_step bytes asked for, up to `limit`: an XPath evaluation
// charges the text it builds to its step budget, which counts only nodes
// visited, so that string(/) inside a predicate on every element of a large
// page (gigabytes of text, none of it a step) is stopped by it too. They
// are counted also where the pool is off (the sanitizers).
class AllocationCharge {
 public:
  AllocationCharge(unsigned long* count, unsigned long limit);
  ~AllocationCharge();
  AllocationCharge(const AllocationCharge&) = delete;
  AllocationCharge& operator=(const AllocationCharge&) = delete;

 private:
  unsigned long* m_count_before;
  unsigned long m_limit_before;
};
constexpr std::size_t k_bytes_per_step = 32;

// While one lives, an AllocationCharge on this thread takes its whole limit
// at its next allocation once `*stop` is true, so that libxml2 ends the
// evaluation at its next step: what no step counts (building an element's
// empty text walks its whole subtree) is not interrupted, but every such
// walk starts with an allocation, so an evaluation ends within one of them
// of `*stop`. `stop` outlives it; may be null.
class StopEvaluationsOn {
 public:
  explicit StopEvaluationsOn(const std::atomic<bool>* stop);
  ~StopEvaluationsOn();
  StopEvaluationsOn(const StopEvaluationsOn&) = delete;
  StopEvaluationsOn& operator=(const StopEvaluationsOn&) = delete;

 private:
  const std::atomic<bool>* m_stop_before;
};

// Whether this thread's StopEvaluationsOn flag is set.
bool evaluations_stopped();

} // namespace scrapekeep::scrape
