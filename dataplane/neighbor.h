// Neighbour (ARP) table of one interface: IPv4 -> MAC.
//
// Single writer (the control lcore), many lock-free readers (workers).
// Open addressing with linear probing over a fixed array; an address once
// inserted keeps its slot forever (its MAC may be invalidated and relearnt),
// so readers never see a slot change owner. Writers store the MAC before the
// address with release order; readers load with acquire.
#pragma once

#include <atomic>
#include <cstdint>

#include <rte_ether.h>

#include "dataplane/ip6.h"

namespace isar::dp {

class neighbor_table {
public:
    static constexpr unsigned capacity = 4096; // power of two

    // Worker side: true and *mac set when ip_be has a valid MAC.
    bool lookup(uint32_t ip_be, rte_ether_addr* mac) const noexcept
    {
        unsigned i = slot_of(ip_be);
        for (unsigned n = 0; n < capacity; n++, i = (i + 1) & (capacity - 1)) {
            uint32_t k = slots_[i].ip.load(std::memory_order_acquire);
            if (k == ip_be) {
                uint64_t v = slots_[i].mac.load(std::memory_order_acquire);
                if (!(v & valid_bit))
                    return false;
                for (int b = 0; b < RTE_ETHER_ADDR_LEN; b++)
                    mac->addr_bytes[b] = static_cast<uint8_t>(v >> (8 * b));
                return true;
            }
            if (k == 0)
                return false;
        }
        return false;
    }

    // Control side. Returns false when the table is full.
    bool update(uint32_t ip_be, const rte_ether_addr& mac) noexcept
    {
        int i = find_or_claim(ip_be);
        if (i < 0)
            return false;
        uint64_t v = valid_bit;
        for (int b = 0; b < RTE_ETHER_ADDR_LEN; b++)
            v |= static_cast<uint64_t>(mac.addr_bytes[b]) << (8 * b);
        slots_[i].mac.store(v, std::memory_order_release);
        slots_[i].ip.store(ip_be, std::memory_order_release);
        return true;
    }

    void invalidate(uint32_t ip_be) noexcept
    {
        int i = find(ip_be);
        if (i >= 0)
            slots_[i].mac.store(0, std::memory_order_release);
    }

    bool contains(uint32_t ip_be) const noexcept { return find(ip_be) >= 0; }

    // ---- IPv6 (Neighbor Discovery) --------------------------------------
    // A simple placeholder with the same rules as IPv4 (a slot keeps its
    // address forever once published; the MAC is an atomic word). The
    // address is written before the slot's `used` flag is set with release
    // order and never changes after, so a reader that saw the flag (acquire)
    // reads it without a race.
    bool lookup6(const ip6_addr& ip, rte_ether_addr* mac) const noexcept
    {
        const int i = find6(ip);
        if (i < 0)
            return false;
        const uint64_t v = slots6_[i].mac.load(std::memory_order_acquire);
        if (!(v & valid_bit))
            return false;
        for (int b = 0; b < RTE_ETHER_ADDR_LEN; b++)
            mac->addr_bytes[b] = static_cast<uint8_t>(v >> (8 * b));
        return true;
    }
    bool update6(const ip6_addr& ip, const rte_ether_addr& mac) noexcept
    {
        if (ip.is_zero())
            return false;
        unsigned i = slot_of6(ip);
        for (unsigned n = 0; n < capacity6; n++, i = (i + 1) & (capacity6 - 1)) {
            slot6& s = slots6_[i];
            const bool used = s.used.load(std::memory_order_relaxed);
            if (used && !(s.ip == ip))
                continue;
            uint64_t v = valid_bit;
            for (int b = 0; b < RTE_ETHER_ADDR_LEN; b++)
                v |= static_cast<uint64_t>(mac.addr_bytes[b]) << (8 * b);
            s.mac.store(v, std::memory_order_release);
            if (!used) {
                s.ip = ip;
                s.used.store(true, std::memory_order_release);
            }
            return true;
        }
        return false;
    }
    void invalidate6(const ip6_addr& ip) noexcept
    {
        const int i = find6(ip);
        if (i >= 0)
            slots6_[i].mac.store(0, std::memory_order_release);
    }

    unsigned size() const noexcept
    {
        unsigned n = 0;
        for (const auto& s : slots_)
            n += (s.mac.load(std::memory_order_relaxed) & valid_bit) ? 1 : 0;
        return n;
    }

    template <typename F>
    void for_each(F&& f) const
    {
        for (const auto& s : slots_) {
            uint64_t v = s.mac.load(std::memory_order_relaxed);
            if (!(v & valid_bit))
                continue;
            rte_ether_addr mac;
            for (int b = 0; b < RTE_ETHER_ADDR_LEN; b++)
                mac.addr_bytes[b] = static_cast<uint8_t>(v >> (8 * b));
            f(s.ip.load(std::memory_order_relaxed), mac);
        }
    }

private:
    static constexpr uint64_t valid_bit = 1ull << 63;
    struct slot {
        std::atomic<uint32_t> ip{0};
        std::atomic<uint64_t> mac{0};
    };

    static unsigned slot_of(uint32_t ip_be) noexcept
    {
        return (ip_be * 2654435761u) >> (32 - 12);
    }
    static_assert(capacity == 1u << 12);

    int find(uint32_t ip_be) const noexcept
    {
        if (ip_be == 0) // 0 marks a free slot: it is never an entry
            return -1;
        unsigned i = slot_of(ip_be);
        for (unsigned n = 0; n < capacity; n++, i = (i + 1) & (capacity - 1)) {
            uint32_t k = slots_[i].ip.load(std::memory_order_relaxed);
            if (k == ip_be)
                return static_cast<int>(i);
            if (k == 0)
                return -1;
        }
        return -1;
    }

    int find_or_claim(uint32_t ip_be) noexcept
    {
        if (ip_be == 0)
            return -1;
        unsigned i = slot_of(ip_be);
        for (unsigned n = 0; n < capacity; n++, i = (i + 1) & (capacity - 1)) {
            uint32_t k = slots_[i].ip.load(std::memory_order_relaxed);
            if (k == ip_be || k == 0)
                return static_cast<int>(i);
        }
        return -1;
    }

    slot slots_[capacity];

    static constexpr unsigned capacity6 = 1024; // power of two
    struct slot6 {
        std::atomic<bool> used{false};
        std::atomic<uint64_t> mac{0};
        ip6_addr ip{};
    };
    static unsigned slot_of6(const ip6_addr& ip) noexcept
    {
        return (ip.fold32() * 2654435761u) >> (32 - 10);
    }
    static_assert(capacity6 == 1u << 10);
    int find6(const ip6_addr& ip) const noexcept
    {
        unsigned i = slot_of6(ip);
        for (unsigned n = 0; n < capacity6; n++, i = (i + 1) & (capacity6 - 1)) {
            if (!slots6_[i].used.load(std::memory_order_acquire))
                return -1;
            if (slots6_[i].ip == ip)
                return static_cast<int>(i);
        }
        return -1;
    }
    slot6 slots6_[capacity6];
};

} // namespace isar::dp
