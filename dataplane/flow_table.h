// A worker's flow table: (local address slot, relay UDP port) -> leg or TURN
// allocation (a relayed port is a relay port like a leg's; the entry's low
// bit says which, both being 64-byte aligned). A leg's entry also carries a
// hint in bit 1, leg_plain_tag: an IPv4 packet to it takes the fast path
// from the lines process_burst always prefetches, so the act pass need not
// read the leg to decide what else to prefetch (with a million legs that read
// waited for each leg's line 0 in turn). The owning worker keeps it current
// (worker::refresh_hot); a stale hint costs a prefetch, never correctness.
//
// A relay port belongs to exactly one worker (owner_of_port) and a leg is
// named by its local address (slot, see local_addr) and its port, so the key
// space is small and dense: the table is a plain array with one entry per
// address and port, indexed by
// flow_key(). A lookup is one load from a line that classify has already
// prefetched - no hashing, no bucket walk, no key compare - which is what
// keeps the cost flat from a thousand legs to a million (rtpengine's kernel
// module indexes its destinations by port the same way).
//
// Memory: 512 KiB per local address and worker (65536 pointers), from the DPDK
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
struct turn_alloc;

// A slot's content: a leg (bit 1: leg_plain_tag), a TURN allocation (low
// bit set) or 0.
using flow_entry = uintptr_t;
constexpr flow_entry alloc_tag = 1;
constexpr flow_entry leg_plain_tag = 2;
inline bool is_alloc(flow_entry e) noexcept { return (e & alloc_tag) != 0; }
inline leg* entry_leg(flow_entry e) noexcept
{
    return is_alloc(e) ? nullptr : reinterpret_cast<leg*>(e & ~leg_plain_tag);
}
// A leg whose IPv4 packets need nothing prefetched beyond its line 0 and RTP
// line (see above).
inline bool entry_leg_plain(flow_entry e) noexcept
{
    return (e & (alloc_tag | leg_plain_tag)) == leg_plain_tag;
}
inline turn_alloc* entry_alloc(flow_entry e) noexcept
{
    return is_alloc(e) ? reinterpret_cast<turn_alloc*>(e & ~alloc_tag) : nullptr;
}

class flow_table {
public:
    static constexpr uint32_t slots_per_laddr = 65536;

    flow_table() = default;
    flow_table(const flow_table&) = delete;            // lint: control-only
    flow_table& operator=(const flow_table&) = delete; // lint: control-only
    ~flow_table() { release(); }

    // Allocates (zeroed) room for `nladdrs` local addresses and at most
    // `capacity` legs. Init path only. Returns 0 or -ENOMEM.
    int init(unsigned nladdrs, uint32_t capacity, int socket) noexcept;
    void release() noexcept;

    void prefetch(uint32_t key) const noexcept
    {
        if (key < nslots_)
            __builtin_prefetch(&slots_[key], 0, 3);
    }
    flow_entry lookup_entry(uint32_t key) const noexcept { return key < nslots_ ? slots_[key] : 0; }
    leg* lookup(uint32_t key) const noexcept { return entry_leg(lookup_entry(key)); }

    // 0, -EEXIST (slot taken), -ENOSPC (capacity reached) or -EINVAL (key
    // out of range).
    int insert(uint32_t key, leg* l, bool plain = false) noexcept
    {
        return insert_entry(key, reinterpret_cast<flow_entry>(l) | (plain ? leg_plain_tag : 0));
    }
    int insert(uint32_t key, turn_alloc* a) noexcept
    {
        return insert_entry(key, reinterpret_cast<flow_entry>(a) | alloc_tag);
    }
    // Removes `key` if it maps to `l` (a stale delete never removes a newer
    // leg on the same port). Returns whether it did.
    bool erase(uint32_t key, const leg* l) noexcept
    {
        if (l == nullptr || key >= nslots_ || entry_leg(slots_[key]) != l)
            return false;
        return erase_entry(key, slots_[key]);
    }
    // Sets the leg_plain_tag hint of `key` if it maps to `l`.
    void set_plain(uint32_t key, const leg* l, bool plain) noexcept
    {
        if (l != nullptr && key < nslots_ && entry_leg(slots_[key]) == l)
            slots_[key] = reinterpret_cast<flow_entry>(l) | (plain ? leg_plain_tag : 0);
    }
    bool erase(uint32_t key, const turn_alloc* a) noexcept
    {
        return a != nullptr && erase_entry(key, reinterpret_cast<flow_entry>(a) | alloc_tag);
    }
    uint32_t size() const noexcept { return size_; }
    uint32_t capacity() const noexcept { return capacity_; }

private:
    int insert_entry(uint32_t key, flow_entry e) noexcept
    {
        if (key >= nslots_)
            return -EINVAL;
        if (slots_[key] != 0)
            return -EEXIST;
        if (size_ >= capacity_)
            return -ENOSPC;
        slots_[key] = e;
        size_++;
        return 0;
    }
    bool erase_entry(uint32_t key, flow_entry e) noexcept
    {
        if (key >= nslots_ || slots_[key] != e)
            return false;
        slots_[key] = 0;
        size_--;
        return true;
    }

    flow_entry* slots_ = nullptr;
    uint32_t nslots_ = 0;
    uint32_t size_ = 0;
    uint32_t capacity_ = 0;
};

} // namespace isar::dp
