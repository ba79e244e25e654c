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

session::session(uint32_t n) : nlegs(n)
{
    const size_t bytes = size_t{n} * sizeof(leg);
    void* mem = rte_malloc("isar_legs", bytes, alignof(leg));
    const bool dpdk = mem != nullptr;
    if (!dpdk)
        mem = ::operator new[](bytes, std::align_val_t{alignof(leg)}); // throws bad_alloc
    auto* p = static_cast<leg*>(mem);
    for (uint32_t i = 0; i < n; i++)
        new (&p[i]) leg();
    legs = std::unique_ptr<leg[], leg_array_free>(p, leg_array_free{n, dpdk});
}

} // namespace isar::dp
