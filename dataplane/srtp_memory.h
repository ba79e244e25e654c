// SRTP contexts on the DPDK heap. A packet of an SRTP leg reads lines of
// two contexts (its own receiving one, its target's sending one): with 100k
// legs they are cold, and on the C++ heap's 4 KiB pages each is a TLB miss
// too (in a VM a nested page walk). On the DPDK heap - hugepages when the EAL
// has them, as the legs and the flow table - they are not (isar-bench,
// transcrypt at 100k legs: README, "Performance"). They are cut from 2 MiB
// slabs, one size class each, with no header per context.
#pragma once

#include <cstddef>
#include <cstdint>

namespace isar::dp {

// Makes every SRTP context created afterwards come from the DPDK heap, or,
// when it is exhausted, from the C++ heap (counted: srtp_context_counts).
// Only where the EAL has hugepages, unless `without_hugepages` (tests): with
// --no-huge the heap is a fixed -m of ordinary pages that the legs and the
// mempool need more. Returns whether it did. Control thread, after
// rte_eal_init and before any context exists; contexts must be freed before
// rte_eal_cleanup.
bool place_srtp_contexts(bool without_hugepages = false) noexcept;

// Bytes between neighbouring contexts of `size` bytes aligned to `align` in
// a slab: the size rounded up to the alignment and, where that is a whole
// even number of lines, one line more.
size_t srtp_slab_stride(size_t size, size_t align) noexcept;

struct srtp_context_count {
    uint64_t dpdk_heap = 0;      // contexts on the DPDK heap now
    uint64_t cxx_fallbacks = 0; // contexts that did not fit there, since start
};
srtp_context_count srtp_context_counts() noexcept;

} // namespace isar::dp
