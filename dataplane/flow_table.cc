#include "dataplane/flow_table.h"

#include <rte_malloc.h>

namespace isar::dp {

int flow_table::init(unsigned nladdrs, uint32_t capacity, int socket) noexcept
{
    release();
    const size_t n = size_t{nladdrs} * slots_per_laddr;
    slots_ = static_cast<flow_entry*>(
            rte_zmalloc_socket("isar_flows", n * sizeof(flow_entry), 64, socket));
    if (slots_ == nullptr)
        return -ENOMEM;
    nslots_ = static_cast<uint32_t>(n);
    capacity_ = capacity;
    size_ = 0;
    return 0;
}

void flow_table::release() noexcept
{
    rte_free(slots_);
    slots_ = nullptr;
    nslots_ = size_ = capacity_ = 0;
}

} // namespace isar::dp
