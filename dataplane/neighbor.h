// Neighbour table of one interface: IPv4 (ARP) and IPv6 (ND) address -> MAC.
//
// Single writer (the control lcore), many lock-free readers (workers).
// Each family is an open-addressing hash with linear probing over a power of
// two number of slots (at least twice the capacity). A lookup reads at most
// `max_probe` slots from the home slot: never a scan of the table. Entries
// can be removed (aging): a removed slot becomes a tombstone (lookups go on
// past it, inserts reuse it) or, when the next slot is empty, empty again.
//
// Each slot is guarded by a sequence number (a per-slot seqlock): the writer
// makes it odd, stores key and MAC, makes it even again; a reader retries a
// slot whose number was odd or changed under it, so it never pairs one
// address with another's MAC even when the slot is removed and reused while
// it reads. A reader that keeps losing that race (at most `max_retry` times)
// reports a miss: the packet is then held and control sends it.
//
// Per-entry control state (last confirmation, probes) lives in a parallel
// array the workers never read. An entry whose confirmation time is 0 is
// static: never aged (update()/update6(), as tests and fixed neighbours use).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>

#include <rte_ether.h>
#include <rte_pause.h>

#include "dataplane/ip6.h"

namespace isar::dp {

// Control side only: what neighbor_manager keeps per entry for aging.
struct neighbor_state {
    uint64_t confirmed_tsc = 0; // last reply/NA; 0 = static, never aged
    uint64_t probe_tsc = 0;     // last unicast probe
    uint8_t probes = 0;         // probes sent since it went stale
};

namespace detail {

inline uint64_t mac_word(const rte_ether_addr& mac) noexcept
{
    uint64_t v = 0;
    for (int b = 0; b < RTE_ETHER_ADDR_LEN; b++)
        v |= static_cast<uint64_t>(mac.addr_bytes[b]) << (8 * b);
    return v;
}

inline void word_mac(uint64_t v, rte_ether_addr* mac) noexcept
{
    for (int b = 0; b < RTE_ETHER_ADDR_LEN; b++)
        mac->addr_bytes[b] = static_cast<uint8_t>(v >> (8 * b));
}

// One family's map: keys of N 64-bit words (all-zero is never a key).
template <unsigned N>
class neigh_map {
public:
    using key = std::array<uint64_t, N>;
    static constexpr unsigned max_probe = 64;
    static constexpr unsigned max_retry = 64;
    static constexpr uint64_t live_bit = 1ull << 63;
    static constexpr uint64_t tomb_bit = 1ull << 62;
    static constexpr uint64_t mac_mask = (1ull << 48) - 1;

    neigh_map(unsigned capacity, uint64_t seed0, uint64_t seed1)
        : cap_(capacity == 0 ? 1 : capacity), seed_{seed0, seed1}
    {
        unsigned bits = 4;
        while ((1ull << bits) < 2ull * cap_)
            bits++;
        bits_ = bits;
        mask_ = (1u << bits) - 1;
        slots_ = std::make_unique<slot[]>(mask_ + 1);
        state_ = std::make_unique<neighbor_state[]>(mask_ + 1);
    }

    // Worker side: lock-free, at most max_probe slots.
    bool lookup(const key& k, uint64_t* mac) const noexcept
    {
        unsigned i = home(k);
        for (unsigned n = 0; n < max_probe; n++, i = (i + 1) & mask_) {
            key sk;
            uint64_t v;
            if (!read(slots_[i], &sk, &v))
                return false; // writer busy on it: a miss (held, control sends)
            if (v == 0)
                return false; // empty: the chain ends here
            if ((v & live_bit) && sk == k) {
                *mac = v & mac_mask;
                return true;
            }
        }
        return false;
    }

    // Worker side: starts loading the slot a lookup of `k` reads first.
    void prefetch(const key& k) const noexcept { __builtin_prefetch(&slots_[home(k)], 0, 3); }

    // ---- control side (the single writer) ---------------------------------
    int find(const key& k) const noexcept
    {
        if (is_zero(k))
            return -1;
        unsigned i = home(k);
        for (unsigned n = 0; n < max_probe; n++, i = (i + 1) & mask_) {
            const uint64_t v = slots_[i].mac.load(std::memory_order_relaxed);
            if (v == 0)
                return -1;
            if ((v & live_bit) && own_key(i) == k)
                return static_cast<int>(i);
        }
        return -1;
    }

    // Inserts or updates. -1 when full (capacity reached or no free slot
    // within max_probe of the home slot), else the slot; *created tells
    // whether it is new, *old the previous MAC of an existing entry.
    int insert(const key& k, uint64_t mac, bool* created, uint64_t* old) noexcept
    {
        *created = false;
        if (is_zero(k))
            return -1;
        unsigned i = home(k);
        int free_slot = -1;
        for (unsigned n = 0; n < max_probe; n++, i = (i + 1) & mask_) {
            const uint64_t v = slots_[i].mac.load(std::memory_order_relaxed);
            if ((v & live_bit) && own_key(i) == k) {
                *old = v & mac_mask;
                if ((v & mac_mask) != (mac & mac_mask))
                    write(i, k, live_bit | (mac & mac_mask));
                return static_cast<int>(i);
            }
            if (!(v & live_bit) && free_slot < 0)
                free_slot = static_cast<int>(i);
            if (v == 0)
                break;
        }
        if (free_slot < 0 || size_ >= cap_)
            return -1;
        state_[free_slot] = neighbor_state{};
        write(static_cast<unsigned>(free_slot), k, live_bit | (mac & mac_mask));
        size_++;
        *created = true;
        return free_slot;
    }

    bool remove(const key& k) noexcept
    {
        const int f = find(k);
        if (f < 0)
            return false;
        remove_slot(static_cast<unsigned>(f));
        return true;
    }

    void remove_slot(unsigned i) noexcept
    {
        size_--;
        const unsigned next = (i + 1) & mask_;
        if (slots_[next].mac.load(std::memory_order_relaxed) != 0) {
            write(i, key{}, tomb_bit); // a chain may go on past it
            return;
        }
        // Nothing lies beyond: this slot and the tombstones before it end
        // no chain any more.
        write(i, key{}, 0);
        for (unsigned j = (i - 1) & mask_;
             j != i && slots_[j].mac.load(std::memory_order_relaxed) == tomb_bit;
             j = (j - 1) & mask_)
            write(j, key{}, 0);
    }

    neighbor_state& state(unsigned i) noexcept { return state_[i]; }
    const neighbor_state& state(unsigned i) const noexcept { return state_[i]; }
    uint64_t mac_at(unsigned i) const noexcept
    {
        return slots_[i].mac.load(std::memory_order_relaxed) & mac_mask;
    }
    key key_at(unsigned i) const noexcept { return own_key(i); }
    bool live(unsigned i) const noexcept
    {
        return slots_[i].mac.load(std::memory_order_relaxed) & live_bit;
    }
    // Bumped (release) after every change of a slot: a worker that cached a
    // MAC read at generation g may use it while this is still g.
    uint32_t generation() const noexcept { return gen_.load(std::memory_order_acquire); }
    unsigned slots() const noexcept { return mask_ + 1; }
    unsigned size() const noexcept { return size_; }
    unsigned capacity() const noexcept { return cap_; }

private:
    struct slot {
        std::atomic<uint32_t> seq{0};
        std::atomic<uint64_t> k[N]{};
        std::atomic<uint64_t> mac{0}; // live/tomb bits | MAC; 0 = empty
    };

    static bool is_zero(const key& k) noexcept
    {
        for (uint64_t w : k)
            if (w != 0)
                return false;
        return true;
    }

    unsigned home(const key& k) const noexcept
    {
        uint64_t h = (k[0] ^ seed_[0]) * 0x9e3779b97f4a7c15ull;
        if constexpr (N > 1)
            h ^= (k[1] ^ seed_[1]) * 0xc2b2ae3d27d4eb4full;
        h ^= h >> 31;
        h *= 0x9e3779b97f4a7c15ull;
        return static_cast<unsigned>(h >> (64 - bits_));
    }

    key own_key(unsigned i) const noexcept
    {
        key k;
        for (unsigned w = 0; w < N; w++)
            k[w] = slots_[i].k[w].load(std::memory_order_relaxed);
        return k;
    }

    // Seqlock read: false when the writer kept the slot busy.
    static bool read(const slot& s, key* k, uint64_t* v) noexcept
    {
        for (unsigned r = 0; r < max_retry; r++) {
            const uint32_t q = s.seq.load(std::memory_order_acquire);
            if (q & 1) {
                rte_pause();
                continue;
            }
            for (unsigned w = 0; w < N; w++)
                (*k)[w] = s.k[w].load(std::memory_order_relaxed);
            *v = s.mac.load(std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_acquire);
            if (s.seq.load(std::memory_order_relaxed) == q)
                return true;
        }
        return false;
    }

    void write(unsigned i, const key& k, uint64_t v) noexcept
    {
        slot& s = slots_[i];
        const uint32_t q = s.seq.load(std::memory_order_relaxed);
        s.seq.store(q + 1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        for (unsigned w = 0; w < N; w++)
            s.k[w].store(k[w], std::memory_order_relaxed);
        s.mac.store(v, std::memory_order_relaxed);
        s.seq.store(q + 2, std::memory_order_release);
        gen_.store(gen_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }

    unsigned cap_;
    unsigned bits_ = 4;
    unsigned mask_ = 15;
    unsigned size_ = 0;
    uint64_t seed_[2];
    std::unique_ptr<slot[]> slots_;
    std::unique_ptr<neighbor_state[]> state_;
    std::atomic<uint32_t> gen_{0};
};

} // namespace detail

class neighbor_table {
public:
    static constexpr unsigned default_capacity = 4096; // per family
    static constexpr unsigned max_probe = detail::neigh_map<1>::max_probe;

    // `capacity` entries per family ([dataplane] neighbors). The hash is
    // seeded (random unless `seed` is given) so that on-link hosts cannot
    // pick addresses that crowd one probe window.
    explicit neighbor_table(unsigned capacity = default_capacity, uint64_t seed = random_seed())
        : v4_(capacity, seed, 0), v6_(capacity, seed, seed * 0x9e3779b97f4a7c15ull + 1)
    {
    }

    // ---- worker side: lock-free; true and *mac set when known ------------
    bool lookup(uint32_t ip_be, rte_ether_addr* mac) const noexcept
    {
        uint64_t v;
        if (!v4_.lookup({ip_be}, &v))
            return false;
        detail::word_mac(v, mac);
        return true;
    }
    // Starts loading what lookup(ip_be) reads (a fan-out's next hops, so
    // that their misses overlap).
    void prefetch(uint32_t ip_be) const noexcept { v4_.prefetch({ip_be}); }
    bool lookup6(const ip6_addr& ip, rte_ether_addr* mac) const noexcept
    {
        uint64_t v;
        if (!v6_.lookup(key6(ip), &v))
            return false;
        detail::word_mac(v, mac);
        return true;
    }

    // Changes on every insert, MAC change or removal of an IPv4 entry: a
    // MAC cached with the generation it was looked up at (after reading
    // this, acquire) is still right while this has not moved (leg::fwd_mac).
    uint32_t generation4() const noexcept { return v4_.generation(); }
    // The same for the IPv6 entries (an IPv6 leg's fwd_mac).
    uint32_t generation6() const noexcept { return v6_.generation(); }

    // ---- control side (one writer) ----------------------------------------
    enum class learn_result { added, same, moved, full };
    // Adds or updates an entry and stamps it confirmed at `now_tsc` (0 makes
    // it static). *old gets the previous MAC when the result is `moved`.
    learn_result learn(uint32_t ip_be, const rte_ether_addr& mac, uint64_t now_tsc,
                       rte_ether_addr* old = nullptr) noexcept
    {
        return learn_in(v4_, {ip_be}, mac, now_tsc, old);
    }
    learn_result learn6(const ip6_addr& ip, const rte_ether_addr& mac, uint64_t now_tsc,
                        rte_ether_addr* old = nullptr) noexcept
    {
        return learn_in(v6_, key6(ip), mac, now_tsc, old);
    }
    // A static entry (never aged). False when the table is full.
    bool update(uint32_t ip_be, const rte_ether_addr& mac) noexcept
    {
        return learn(ip_be, mac, 0) != learn_result::full;
    }
    bool update6(const ip6_addr& ip, const rte_ether_addr& mac) noexcept
    {
        return learn6(ip, mac, 0) != learn_result::full;
    }
    // Removes the entry (its next packet is held and resolved again).
    void invalidate(uint32_t ip_be) noexcept { v4_.remove({ip_be}); }
    void invalidate6(const ip6_addr& ip) noexcept { v6_.remove(key6(ip)); }

    bool contains(uint32_t ip_be) const noexcept { return v4_.find({ip_be}) >= 0; }
    bool contains6(const ip6_addr& ip) const noexcept { return v6_.find(key6(ip)) >= 0; }
    // Control state of an entry, nullptr when unknown.
    neighbor_state* state(uint32_t ip_be) noexcept { return state_in(v4_, {ip_be}); }
    neighbor_state* state6(const ip6_addr& ip) noexcept { return state_in(v6_, key6(ip)); }

    unsigned size() const noexcept { return v4_.size() + v6_.size(); }
    unsigned size4() const noexcept { return v4_.size(); }
    unsigned size6() const noexcept { return v6_.size(); }
    unsigned capacity() const noexcept { return v4_.capacity(); } // per family

    // f(ip_be, mac) for every IPv4 entry.
    template <typename F>
    void for_each(F&& f) const
    {
        for (unsigned i = 0; i < v4_.slots(); i++)
            if (v4_.live(i)) {
                rte_ether_addr mac;
                detail::word_mac(v4_.mac_at(i), &mac);
                f(static_cast<uint32_t>(v4_.key_at(i)[0]), mac);
            }
    }
    // f(ip6, mac) for every IPv6 entry.
    template <typename F>
    void for_each6(F&& f) const
    {
        for (unsigned i = 0; i < v6_.slots(); i++)
            if (v6_.live(i)) {
                rte_ether_addr mac;
                detail::word_mac(v6_.mac_at(i), &mac);
                f(addr6(v6_.key_at(i)), mac);
            }
    }
    // Aging walk: f(ip_be, mac, state&) for every IPv4 entry; the entry is
    // removed when f returns false.
    template <typename F>
    void sweep(F&& f)
    {
        sweep_in(v4_, [&](const auto& k, const rte_ether_addr& m, neighbor_state& s) {
            return f(static_cast<uint32_t>(k[0]), m, s);
        });
    }
    template <typename F>
    void sweep6(F&& f)
    {
        sweep_in(v6_, [&](const auto& k, const rte_ether_addr& m, neighbor_state& s) {
            return f(addr6(k), m, s);
        });
    }

private:
    static uint64_t random_seed()
    {
        std::random_device rd;
        return (static_cast<uint64_t>(rd()) << 32) | rd();
    }
    static detail::neigh_map<2>::key key6(const ip6_addr& ip) noexcept
    {
        detail::neigh_map<2>::key k;
        memcpy(k.data(), ip.b, 16);
        return k;
    }
    static ip6_addr addr6(const detail::neigh_map<2>::key& k) noexcept
    {
        ip6_addr a;
        memcpy(a.b, k.data(), 16);
        return a;
    }

    template <unsigned N>
    static learn_result learn_in(detail::neigh_map<N>& m, const typename detail::neigh_map<N>::key& k,
                                 const rte_ether_addr& mac, uint64_t now, rte_ether_addr* old)
    {
        bool created;
        uint64_t prev = 0;
        const int i = m.insert(k, detail::mac_word(mac), &created, &prev);
        if (i < 0)
            return learn_result::full;
        neighbor_state& s = m.state(static_cast<unsigned>(i));
        s.confirmed_tsc = now;
        s.probes = 0;
        if (created)
            return learn_result::added;
        if (prev == detail::mac_word(mac))
            return learn_result::same;
        if (old != nullptr)
            detail::word_mac(prev, old);
        return learn_result::moved;
    }

    template <unsigned N>
    static neighbor_state* state_in(detail::neigh_map<N>& m, const typename detail::neigh_map<N>::key& k)
    {
        const int i = m.find(k);
        return i < 0 ? nullptr : &m.state(static_cast<unsigned>(i));
    }

    template <unsigned N, typename F>
    static void sweep_in(detail::neigh_map<N>& m, F&& f)
    {
        for (unsigned i = 0; i < m.slots(); i++) {
            if (!m.live(i))
                continue;
            rte_ether_addr mac;
            detail::word_mac(m.mac_at(i), &mac);
            if (!f(m.key_at(i), mac, m.state(i)))
                m.remove_slot(i);
        }
    }

    detail::neigh_map<1> v4_;
    detail::neigh_map<2> v6_;
};

} // namespace isar::dp
