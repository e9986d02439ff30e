#include "scrapekeep/scrape/xml_memory.hpp"

#include <libxml/xmlmemory.h>

#include <malloc.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace scrapekeep::scrape {
namespace {

// Every block handed out starts 16 bytes into a malloc'd chunk whose first 16
// bytes say what it is. The magic sits where glibc keeps a chunk's size, so a
// pointer malloc'd by anyone else (before the switch, say) is told apart and
// given back to free().
constexpr std::uint64_t k_magic = 0x4c4d585f504f4f4cULL;  // "LOOP_XML"
constexpr std::size_t k_header = 16;
constexpr std::size_t k_granule = 16;
constexpr std::size_t k_classes = 32;  // blocks of up to 512 bytes are kept
constexpr std::uint64_t k_large = ~std::uint64_t{0};
// Bytes a thread keeps for reuse; what is freed beyond goes back to malloc.
constexpr std::size_t k_max_kept_bytes = 1 << 20;

struct Header {
  std::uint64_t size_class;  // k_large, or the index of the block's class
  std::uint64_t magic;
};
static_assert(sizeof(Header) == k_header);

constexpr std::size_t class_bytes(std::size_t c) { return (c + 1) * k_granule; }

// Trivially destructible, so still readable while the thread's other
// thread_local objects are destroyed; `dead` once drained.
struct Kept {
  void* head[k_classes];
  std::size_t bytes;
  bool dead;
  bool registered;
};
thread_local Kept t_kept{};

// AllocationCharge's, on this thread: where to count, up to what.
thread_local unsigned long* t_charged = nullptr;
thread_local unsigned long t_charge_limit = 0;
// StopEvaluationsOn's, on this thread.
thread_local const std::atomic<bool>* t_stop = nullptr;

void charge(std::size_t size) {
  if (t_charged != nullptr) {
    if (t_stop != nullptr && t_stop->load(std::memory_order_relaxed)) {
      *t_charged = t_charge_limit;
      return;
    }
    const unsigned long steps = size / k_bytes_per_step;
    *t_charged = t_charge_limit - *t_charged < steps ? t_charge_limit : *t_charged + steps;
  }
}

void drain() {
  for (void*& head : t_kept.head) {
    while (head != nullptr) {
      void* next = *static_cast<void**>(head);
      std::free(static_cast<char*>(head) - k_header);
      head = next;
    }
  }
  t_kept.bytes = 0;
}

struct Drainer {
  ~Drainer() {
    drain();
    t_kept.dead = true;
  }
};

void register_drainer() {
  thread_local Drainer drainer;
  (void)drainer;
  t_kept.registered = true;
}

void* with_header(void* chunk, std::uint64_t size_class) {
  if (chunk == nullptr) {
    return nullptr;
  }
  auto* header = static_cast<Header*>(chunk);
  header->size_class = size_class;
  header->magic = k_magic;
  return static_cast<char*>(chunk) + k_header;
}

const Header* header_of(void* block) {
  return reinterpret_cast<const Header*>(static_cast<char*>(block) - k_header);
}

void* pooled_malloc(std::size_t size) {
  charge(size);
  const std::size_t c = size == 0 ? 0 : (size - 1) / k_granule;
  if (c >= k_classes) {
    if (size > SIZE_MAX - k_header) {
      return nullptr;
    }
    return with_header(std::malloc(k_header + size), k_large);
  }
  void*& head = t_kept.head[c];
  if (head != nullptr && !t_kept.dead) {
    void* block = head;
    head = *static_cast<void**>(block);
    t_kept.bytes -= class_bytes(c);
    return block;  // its header still says class c
  }
  return with_header(std::malloc(k_header + class_bytes(c)), c);
}

void pooled_free(void* block) {
  if (block == nullptr) {
    return;
  }
  const Header* header = header_of(block);
  if (header->magic != k_magic) {
    std::free(block);  // not one of ours
    return;
  }
  const std::uint64_t c = header->size_class;
  if (c == k_large || t_kept.dead || t_kept.bytes + class_bytes(c) > k_max_kept_bytes) {
    std::free(static_cast<char*>(block) - k_header);
    return;
  }
  if (!t_kept.registered) {
    register_drainer();
  }
  *static_cast<void**>(block) = t_kept.head[c];
  t_kept.head[c] = block;
  t_kept.bytes += class_bytes(c);
}

// What growing a block to `size` bytes asks for: what it had is not asked
// again (libxml2 grows a text buffer a piece at a time).
void charge_growth(std::size_t had, std::size_t size) { charge(size > had ? size - had : 0); }

void* pooled_realloc(void* block, std::size_t size) {
  if (block == nullptr) {
    return pooled_malloc(size);
  }
  const Header* header = header_of(block);
  if (header->magic != k_magic) {
    return std::realloc(block, size);
  }
  const std::uint64_t c = header->size_class;
  if (c == k_large) {
    if (size > SIZE_MAX - k_header) {
      return nullptr;
    }
    charge_growth(malloc_usable_size(static_cast<char*>(block) - k_header) - k_header, size);
    void* chunk = std::realloc(static_cast<char*>(block) - k_header, k_header + size);
    return chunk == nullptr ? nullptr : static_cast<char*>(chunk) + k_header;
  }
  if (size <= class_bytes(c)) {
    return block;
  }
  void* grown = pooled_malloc(size);
  if (grown != nullptr) {
    std::memcpy(grown, block, class_bytes(c));
    pooled_free(block);
  }
  return grown;
}

// Where the pool is off: counted, not kept.
void* counted_malloc(std::size_t size) {
  charge(size);
  return std::malloc(size);
}

void* counted_realloc(void* block, std::size_t size) {
  charge_growth(block == nullptr ? 0 : malloc_usable_size(block), size);
  return std::realloc(block, size);
}

// libxml2's strdup, through one of the mallocs above.
template <void* (*Malloc)(std::size_t)>
char* strdup_with(const char* text) {
  const std::size_t n = std::strlen(text) + 1;
  auto* copy = static_cast<char*>(Malloc(n));
  if (copy != nullptr) {
    std::memcpy(copy, text, n);
  }
  return copy;
}

// Off under AddressSanitizer and ThreadSanitizer: they see every block, and
// a foreign block's header is read from memory their allocators do not own.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool k_pool = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool k_pool = false;
#else
constexpr bool k_pool = true;
#endif
#else
constexpr bool k_pool = true;
#endif

} // namespace

void use_pooled_xml_memory() {
  if (k_pool) {
    xmlMemSetup(pooled_free, pooled_malloc, pooled_realloc, strdup_with<pooled_malloc>);
  } else {
    xmlMemSetup(std::free, counted_malloc, counted_realloc, strdup_with<counted_malloc>);
  }
}

AllocationCharge::AllocationCharge(unsigned long* count, unsigned long limit)
    : m_count_before(t_charged), m_limit_before(t_charge_limit) {
  t_charged = limit == 0 ? nullptr : count;
  t_charge_limit = limit;
}

AllocationCharge::~AllocationCharge() {
  t_charged = m_count_before;
  t_charge_limit = m_limit_before;
}

StopEvaluationsOn::StopEvaluationsOn(const std::atomic<bool>* stop) : m_stop_before(t_stop) {
  t_stop = stop;
}

StopEvaluationsOn::~StopEvaluationsOn() { t_stop = m_stop_before; }

bool evaluations_stopped() { return t_stop != nullptr && t_stop->load(); }

} // namespace scrapekeep::scrape
