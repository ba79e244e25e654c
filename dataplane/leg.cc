#include "dataplane/leg.h"

#include <new>

#include <rte_malloc.h>

namespace isar::dp {

void leg_array_free::operator()(leg* p) const noexcept
{
    if (p == nullptr)
        return;
    for (uint32_t i = 0; i < n; i++)
        p[i].~leg();
    if (dpdk_heap)
        rte_free(p);
    else
        ::operator delete[](p, std::align_val_t{alignof(leg)});
}

leg_sent leg_out(const session& s, unsigned i) noexcept
{
    const leg& l = s.legs[i];
    leg_sent r{read(l.out_pkts), read(l.out_bytes)};
    for (unsigned j = 0; j < s.nlegs; j++) {
        const leg& f = s.legs[j];
        // hot: written by the worker (refresh_hot), a byte read whole.
        if (j == i || f.ntargets != 1 || f.target(0) != i ||
            !(__atomic_load_n(&f.hot, __ATOMIC_RELAXED) & hot_fast))
            continue;
        // unfwd_* before ctr.in_*: the worker bumps in_* first, so a
        // concurrent read may count a packet in flight, never go below.
        const uint64_t up = read(f.unfwd_pkts), ub = read(f.unfwd_bytes);
        r.pkts += read(f.ctr.in_pkts) - up;
        r.bytes += read(f.ctr.in_bytes) - ub;
    }
    return r;
}

session::session(uint32_t n, int socket) : nlegs(n)
{
    const size_t bytes = size_t{n} * sizeof(leg);
    void* mem = rte_malloc_socket("isar_legs", bytes, alignof(leg), socket);
    const bool dpdk = mem != nullptr;
    if (!dpdk)
        mem = ::operator new[](bytes, std::align_val_t{alignof(leg)}); // throws bad_alloc
    auto* p = static_cast<leg*>(mem);
    for (uint32_t i = 0; i < n; i++)
        new (&p[i]) leg();
    legs = std::unique_ptr<leg[], leg_array_free>(p, leg_array_free{n, dpdk});
}

} // namespace isar::dp
