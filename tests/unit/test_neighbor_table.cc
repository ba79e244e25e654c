// dataplane/neighbor.h: the lock-free neighbour table (IPv4 and IPv6).
#include "dataplane/neighbor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>

using isar::dp::neighbor_table;

namespace {
rte_ether_addr mk(uint32_t v)
{
    return rte_ether_addr{{0x02, 0x10, static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
                           static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)}};
}
bool eq(const rte_ether_addr& a, const rte_ether_addr& b)
{
    return rte_is_same_ether_addr(&a, &b);
}
uint32_t be(uint32_t host)
{
    return rte_cpu_to_be_32(host);
}
using isar::dp::ip6_addr;
// 2001:2::<hi>:<n>
ip6_addr a6(uint32_t n, uint32_t hi = 0)
{
    ip6_addr a{{0x20, 0x01, 0x00, 0x02}};
    for (int i = 0; i < 4; i++) {
        a.b[8 + i] = static_cast<uint8_t>(hi >> (24 - 8 * i));
        a.b[12 + i] = static_cast<uint8_t>(n >> (24 - 8 * i));
    }
    return a;
}
} // namespace

class NeighborTable : public ::testing::Test {
protected:
    // A fixed seed: the collision tests below are then reproducible.
    std::unique_ptr<neighbor_table> t = std::make_unique<neighbor_table>(4096, 42);
};

TEST_F(NeighborTable, EmptyLookupMisses)
{
    rte_ether_addr m = mk(0xdead);
    EXPECT_FALSE(t->lookup(be(0xc6120002), &m));
    EXPECT_TRUE(eq(m, mk(0xdead))) << "a miss must not touch *mac";
    EXPECT_EQ(t->size(), 0u);
    EXPECT_FALSE(t->contains(be(0xc6120002)));
}

TEST_F(NeighborTable, InsertLookupUpdate)
{
    const uint32_t ip = be(0xc6120002);
    ASSERT_TRUE(t->update(ip, mk(1)));
    rte_ether_addr m{};
    ASSERT_TRUE(t->lookup(ip, &m));
    EXPECT_TRUE(eq(m, mk(1)));
    EXPECT_TRUE(t->contains(ip));
    EXPECT_EQ(t->size(), 1u);
    ASSERT_TRUE(t->update(ip, mk(2))); // new MAC for the same address
    ASSERT_TRUE(t->lookup(ip, &m));
    EXPECT_TRUE(eq(m, mk(2)));
    EXPECT_EQ(t->size(), 1u);
    EXPECT_FALSE(t->lookup(be(0xc6120003), &m));
}

TEST_F(NeighborTable, AllMacBytesSurvive)
{
    const rte_ether_addr odd{{0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54}};
    ASSERT_TRUE(t->update(be(0x0a000001), odd));
    rte_ether_addr m{};
    ASSERT_TRUE(t->lookup(be(0x0a000001), &m));
    EXPECT_TRUE(eq(m, odd));
    ASSERT_TRUE(t->update(be(0x0a000002), rte_ether_addr{{0, 0, 0, 0, 0, 0}}));
    ASSERT_TRUE(t->lookup(be(0x0a000002), &m)) << "an all-zero MAC is still a valid entry";
    EXPECT_TRUE(rte_is_zero_ether_addr(&m));
}

TEST_F(NeighborTable, InvalidateThenRelearn)
{
    const uint32_t ip = be(0xc6120002);
    ASSERT_TRUE(t->update(ip, mk(1)));
    t->invalidate(ip);
    rte_ether_addr m{};
    EXPECT_FALSE(t->lookup(ip, &m));
    EXPECT_FALSE(t->contains(ip)) << "invalidate removes the entry";
    EXPECT_EQ(t->size(), 0u);
    t->invalidate(be(0x01020304)); // unknown: no effect
    EXPECT_FALSE(t->contains(be(0x01020304)));
    ASSERT_TRUE(t->update(ip, mk(3)));
    ASSERT_TRUE(t->lookup(ip, &m));
    EXPECT_TRUE(eq(m, mk(3)));
    EXPECT_EQ(t->size(), 1u);
}

TEST_F(NeighborTable, ZeroAddressIsNeverAnEntry)
{
    EXPECT_FALSE(t->update(0, mk(1)));
    rte_ether_addr m{};
    EXPECT_FALSE(t->lookup(0, &m));
    EXPECT_FALSE(t->contains(0));
    EXPECT_EQ(t->size(), 0u);
}

TEST_F(NeighborTable, FullTableAndCollisions)
{
    // Fill every slot: with linear probing over 4096 slots this forces long
    // collision chains (addresses in one /20 hash all over the table).
    const unsigned cap = t->capacity();
    ASSERT_EQ(cap, 4096u);
    for (unsigned i = 0; i < cap; i++)
        ASSERT_TRUE(t->update(be(0x0a000001 + i), mk(i))) << i;
    EXPECT_EQ(t->size(), cap);
    EXPECT_FALSE(t->update(be(0x0b000001), mk(9))) << "capacity reached";
    rte_ether_addr m{};
    EXPECT_FALSE(t->lookup(be(0x0b000001), &m)) << "a miss in a full table terminates";
    // The IPv6 side has its own capacity.
    EXPECT_TRUE(t->update6(a6(1), mk(1)));
    EXPECT_FALSE(t->contains(be(0x0b000001)));
    for (unsigned i = 0; i < cap; i++) {
        ASSERT_TRUE(t->lookup(be(0x0a000001 + i), &m)) << i;
        ASSERT_TRUE(eq(m, mk(i))) << i;
    }
    // Updating an existing address still works when the table is full.
    EXPECT_TRUE(t->update(be(0x0a000001 + 77), mk(100000)));
    ASSERT_TRUE(t->lookup(be(0x0a000001 + 77), &m));
    EXPECT_TRUE(eq(m, mk(100000)));
    // for_each visits every valid entry exactly once.
    std::set<uint32_t> seen;
    t->for_each([&](uint32_t ip, const rte_ether_addr&) { seen.insert(ip); });
    EXPECT_EQ(seen.size(), cap);
    t->invalidate(be(0x0a000001 + 5));
    seen.clear();
    t->for_each([&](uint32_t ip, const rte_ether_addr&) { seen.insert(ip); });
    EXPECT_EQ(seen.size(), cap - 1);
    EXPECT_FALSE(seen.count(be(0x0a000001 + 5)));
}

TEST_F(NeighborTable, ClusteredAddressesAllFound)
{
    // Addresses that differ only in high bits (the hash's weak spot for a
    // multiplicative hash) and a realistic /24 next to each other.
    std::vector<uint32_t> ips;
    for (unsigned i = 0; i < 256; i++) {
        ips.push_back(be(0xc6120000 | i));
        ips.push_back(be((i << 24) | 0x000001));
    }
    for (size_t i = 0; i < ips.size(); i++) {
        if (ips[i] == 0)
            continue;
        ASSERT_TRUE(t->update(ips[i], mk(static_cast<uint32_t>(i)))) << i;
    }
    rte_ether_addr m{};
    for (size_t i = 0; i < ips.size(); i++) {
        if (ips[i] == 0)
            continue;
        ASSERT_TRUE(t->lookup(ips[i], &m)) << i;
        EXPECT_TRUE(eq(m, mk(static_cast<uint32_t>(i)))) << i;
    }
}

TEST_F(NeighborTable, Ipv6InsertLookupRemove)
{
    rte_ether_addr m = mk(0xdead);
    EXPECT_FALSE(t->lookup6(a6(2), &m));
    EXPECT_TRUE(eq(m, mk(0xdead))) << "a miss must not touch *mac";
    ASSERT_TRUE(t->update6(a6(2), mk(2)));
    ASSERT_TRUE(t->update6(a6(3), mk(3)));
    ASSERT_TRUE(t->lookup6(a6(2), &m));
    EXPECT_TRUE(eq(m, mk(2)));
    ASSERT_TRUE(t->lookup6(a6(3), &m));
    EXPECT_TRUE(eq(m, mk(3)));
    EXPECT_FALSE(t->lookup6(a6(2, 1), &m)) << "the upper 64 bits are part of the key";
    EXPECT_EQ(t->size6(), 2u);
    EXPECT_EQ(t->size4(), 0u);
    // The IPv4 side does not see an IPv6 entry whose low word looks alike.
    EXPECT_FALSE(t->lookup(be(2), &m));
    t->invalidate6(a6(2));
    EXPECT_FALSE(t->lookup6(a6(2), &m));
    EXPECT_FALSE(t->contains6(a6(2)));
    ASSERT_TRUE(t->lookup6(a6(3), &m));
    EXPECT_EQ(t->size6(), 1u);
    EXPECT_FALSE(t->update6(ip6_addr{}, mk(1))) << ":: is never an entry";
    std::set<uint32_t> seen;
    t->for_each6([&](const ip6_addr& ip, const rte_ether_addr& mac) {
        seen.insert(ip.b[15]);
        EXPECT_TRUE(eq(mac, mk(3)));
    });
    EXPECT_EQ(seen, std::set<uint32_t>{3});
}

TEST_F(NeighborTable, LearnReportsAddSameMoveAndState)
{
    using lr = neighbor_table::learn_result;
    const uint32_t ip = be(0xc6120002);
    rte_ether_addr old{};
    EXPECT_EQ(t->learn(ip, mk(1), 1000, &old), lr::added);
    ASSERT_NE(t->state(ip), nullptr);
    EXPECT_EQ(t->state(ip)->confirmed_tsc, 1000u);
    t->state(ip)->probes = 2;
    EXPECT_EQ(t->learn(ip, mk(1), 2000, &old), lr::same);
    EXPECT_EQ(t->state(ip)->confirmed_tsc, 2000u) << "a confirmation restamps";
    EXPECT_EQ(t->state(ip)->probes, 0u) << "and ends probing";
    EXPECT_EQ(t->learn(ip, mk(7), 3000, &old), lr::moved);
    EXPECT_TRUE(eq(old, mk(1))) << "the previous MAC is reported";
    rte_ether_addr m{};
    ASSERT_TRUE(t->lookup(ip, &m));
    EXPECT_TRUE(eq(m, mk(7)));
    EXPECT_EQ(t->learn6(a6(9), mk(9), 5, &old), lr::added);
    EXPECT_EQ(t->learn6(a6(9), mk(8), 6, &old), lr::moved);
    EXPECT_TRUE(eq(old, mk(9)));
    EXPECT_EQ(t->state6(a6(9))->confirmed_tsc, 6u);
    EXPECT_EQ(t->state(be(0x01010101)), nullptr);
}

// A small table: the capacity bounds the entries, the probe window bounds
// every lookup, removals keep every other entry reachable.
TEST(NeighborTableSmall, CapacityFromTheConstructor)
{
    neighbor_table t(8, 1);
    EXPECT_EQ(t.capacity(), 8u);
    for (uint32_t i = 1; i <= 8; i++)
        ASSERT_TRUE(t.update(be(i), mk(i))) << i;
    EXPECT_FALSE(t.update(be(9), mk(9))) << "9th entry of 8";
    for (uint32_t i = 1; i <= 8; i++)
        ASSERT_TRUE(t.update6(a6(i), mk(i))) << i;
    EXPECT_FALSE(t.update6(a6(9), mk(9)));
    t.invalidate(be(4));
    EXPECT_TRUE(t.update(be(9), mk(9))) << "a removed entry frees its place";
    EXPECT_EQ(t.size(), 16u);
}

// Random inserts, updates and removals against a std::map model, both
// families, in a table small enough to have long chains and many tombstones.
TEST(NeighborTableSmall, ModelCheckedChurn)
{
    neighbor_table t(64, 7);
    std::map<uint32_t, uint32_t> m4, m6;
    std::mt19937 rng(123);
    for (int step = 0; step < 200000; step++) {
        const uint32_t k = 1 + rng() % 96; // more keys than room: inserts fail
        const bool v6 = rng() & 1;
        auto& model = v6 ? m6 : m4;
        switch (rng() % 3) {
        case 0:
        case 1: {
            const uint32_t mac = rng() & 0xffffff;
            const bool ok = v6 ? t.update6(a6(k, k * 77), mk(mac)) : t.update(be(k << 8), mk(mac));
            if (model.count(k) || model.size() < 64) {
                // Capacity is not the limit here; only a full probe window
                // could refuse, and 128 slots for 64 entries leave room.
                ASSERT_TRUE(ok) << step;
                model[k] = mac;
            } else {
                ASSERT_FALSE(ok) << step;
            }
            break;
        }
        case 2:
            if (v6)
                t.invalidate6(a6(k, k * 77));
            else
                t.invalidate(be(k << 8));
            model.erase(k);
            break;
        }
        if (step % 997 == 0 || step == 199999) {
            ASSERT_EQ(t.size4(), m4.size());
            ASSERT_EQ(t.size6(), m6.size());
            for (uint32_t q = 1; q <= 96; q++) {
                rte_ether_addr mac{};
                const bool f4 = t.lookup(be(q << 8), &mac);
                ASSERT_EQ(f4, m4.count(q) == 1) << step << " v4 " << q;
                if (f4) {
                    ASSERT_TRUE(eq(mac, mk(m4[q])));
                }
                const bool f6 = t.lookup6(a6(q, q * 77), &mac);
                ASSERT_EQ(f6, m6.count(q) == 1) << step << " v6 " << q;
                if (f6) {
                    ASSERT_TRUE(eq(mac, mk(m6[q])));
                }
            }
        }
    }
}

TEST(NeighborTableSmall, SweepRemovesWhatTheCallbackDrops)
{
    neighbor_table t(32, 3);
    for (uint32_t i = 1; i <= 20; i++) {
        t.learn(be(i), mk(i), i);
        t.learn6(a6(i), mk(i), i);
    }
    t.sweep([](uint32_t, const rte_ether_addr&, isar::dp::neighbor_state& s) {
        s.probes = 1;
        return s.confirmed_tsc % 2 == 0;
    });
    t.sweep6([](const ip6_addr& ip, const rte_ether_addr&, isar::dp::neighbor_state&) {
        return ip.b[15] > 10;
    });
    EXPECT_EQ(t.size4(), 10u);
    EXPECT_EQ(t.size6(), 10u);
    rte_ether_addr m{};
    for (uint32_t i = 1; i <= 20; i++) {
        EXPECT_EQ(t.lookup(be(i), &m), i % 2 == 0) << i;
        EXPECT_EQ(t.lookup6(a6(i), &m), i > 10) << i;
        if (i % 2 == 0) {
            EXPECT_EQ(t.state(be(i))->probes, 1u);
        }
    }
}

// One writer inserting, re-MACing and removing while a reader looks up: the
// reader must never see an address with another address's MAC, and entries
// that stay put must stay visible.
TEST(NeighborTableConcurrent, ReaderDuringInsertAndRemove)
{
    neighbor_table t(256, 11);
    // MAC = 02:<key 3 bytes>:<generation>; the reader checks the key part.
    auto mac_of = [](uint32_t k, uint8_t gen) {
        return rte_ether_addr{{0x02, static_cast<uint8_t>(k >> 16), static_cast<uint8_t>(k >> 8),
                               static_cast<uint8_t>(k), 0x00, gen}};
    };
    constexpr uint32_t stable = 64, churn = 400;
    for (uint32_t k = 1; k <= stable; k++) {
        ASSERT_TRUE(t.update(be(k), mac_of(k, 0)));
        ASSERT_TRUE(t.update6(a6(k), mac_of(k, 0)));
    }
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> wrong{0}, stable_miss{0}, lookups{0}, churn_hits{0};
    std::thread reader([&] {
        uint32_t k = 1;
        while (!stop.load(std::memory_order_relaxed)) {
            k = k % (stable + churn) + 1;
            rte_ether_addr m;
            for (int fam = 0; fam < 2; fam++) {
                const bool f = fam ? t.lookup6(a6(k), &m) : t.lookup(be(k), &m);
                lookups.fetch_add(1, std::memory_order_relaxed);
                if (f && (m.addr_bytes[0] != 0x02 || m.addr_bytes[1] != static_cast<uint8_t>(k >> 16) ||
                          m.addr_bytes[2] != static_cast<uint8_t>(k >> 8) ||
                          m.addr_bytes[3] != static_cast<uint8_t>(k)))
                    wrong.fetch_add(1, std::memory_order_relaxed);
                if (!f && k <= stable)
                    stable_miss.fetch_add(1, std::memory_order_relaxed);
                if (f && k > stable)
                    churn_hits.fetch_add(1, std::memory_order_relaxed);
            }
        }
    });
    std::mt19937 rng(5);
    for (int round = 0; round < 300000; round++) {
        const uint32_t k = stable + 1 + rng() % churn;
        const uint8_t gen = static_cast<uint8_t>(rng());
        switch (rng() % 3) {
        case 0:
            t.update(be(k), mac_of(k, gen));
            break;
        case 1:
            t.update6(a6(k), mac_of(k, gen));
            break;
        default:
            t.invalidate(be(k));
            t.invalidate6(a6(k));
        }
        if (round % 64 == 0) { // re-MAC a stable entry: its key part stays
            const uint32_t s = 1 + rng() % stable;
            t.update(be(s), mac_of(s, gen));
        }
    }
    stop = true;
    reader.join();
    EXPECT_GT(lookups.load(), 1000u) << "the reader ran";
    EXPECT_GT(churn_hits.load(), 0u) << "the reader saw churned entries";
    EXPECT_EQ(wrong.load(), 0u) << "an address was paired with another's MAC";
    // A stable entry is missed only when a slot before it in its chain stayed
    // busy through every retry (the writer preempted mid-write).
    EXPECT_LT(stable_miss.load(), lookups.load() / 1000 + 1);
}
