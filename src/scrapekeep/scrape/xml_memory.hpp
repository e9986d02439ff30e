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

namespace scrapekeep::scrape {

// Makes libxml2 allocate through the pool. Called once, by init_libxml(),
// before libxml2 allocates anything; blocks libxml2 allocated before are
// still freed correctly.
void use_pooled_xml_memory();

} // namespace scrapekeep::scrape
