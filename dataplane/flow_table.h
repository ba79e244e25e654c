// A worker's flow table: (interface, relay UDP port) -> leg.
//
// A relay port belongs to exactly one worker (owner_of_port) and a leg is
// named by its interface and its port, so the key space is small and dense:
// the table is a plain array with one slot per interface and port, indexed by
// flow_key(). A lookup is one load from a line that classify has already
// prefetched - no hashing, no bucket walk, no key compare - which is what
// keeps the cost flat from a thousand legs to a million (rtpengine's kernel
// module indexes its destinations by port the same way).
//
// Memory: 512 KiB per interface and worker (65536 pointers), from the DPDK
// heap (hugepages when the EAL has them: no TLB miss per lookup).
//
// Only the owning worker reads or writes it (commands arrive on its ring), so
// no atomics are needed.
#pragma once

#include <cerrno>
#include <cstdint>

#include "dataplane/classify.h"

namespace isar::dp {

struct leg;

class flow_table {
public:
    static constexpr uint32_t slots_per_iface = 65536;

    flow_table() = default;
    flow_table(const flow_table&) = delete;            // lint: control-only
    flow_table& operator=(const flow_table&) = delete; // lint: control-only
    ~flow_table() { release(); }

    // Allocates (zeroed) room for `nifaces` interfaces and at most
    // `capacity` legs. Init path only. Returns 0 or -ENOMEM.
    int init(unsigned nifaces, uint32_t capacity, int socket) noexcept;
    void release() noexcept;

    void prefetch(uint32_t key) const noexcept
    {
        if (key < nslots_)
            __builtin_prefetch(&slots_[key], 0, 3);
    }
    leg* lookup(uint32_t key) const noexcept { return key < nslots_ ? slots_[key] : nullptr; }

    // 0, -EEXIST (slot taken), -ENOSPC (capacity reached) or -EINVAL (key
    // out of range).
    int insert(uint32_t key, leg* l) noexcept
    {
        if (key >= nslots_)
            return -EINVAL;
        if (slots_[key] != nullptr)
            return -EEXIST;
        if (size_ >= capacity_)
            return -ENOSPC;
        slots_[key] = l;
        size_++;
        return 0;
    }
    // Removes `key` if it maps to `l` (a stale delete never removes a newer
    // leg on the same port). Returns whether it did.
    bool erase(uint32_t key, const leg* l) noexcept
    {
        if (key >= nslots_ || slots_[key] != l || l == nullptr)
            return false;
        slots_[key] = nullptr;
        size_--;
        return true;
    }
    uint32_t size() const noexcept { return size_; }
    uint32_t capacity() const noexcept { return capacity_; }

private:
    leg** slots_ = nullptr;
    uint32_t nslots_ = 0;
    uint32_t size_ = 0;
    uint32_t capacity_ = 0;
};

} // namespace isar::dp
