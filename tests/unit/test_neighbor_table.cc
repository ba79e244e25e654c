// dataplane/neighbor.h: the lock-free ARP table.
#include "dataplane/neighbor.h"

#include <gtest/gtest.h>
#include <memory>
#include <set>

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
} // namespace

class NeighborTable : public ::testing::Test {
protected:
    // 4096 slots of 16 bytes: keep it off the stack.
    std::unique_ptr<neighbor_table> t = std::make_unique<neighbor_table>();
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
    EXPECT_TRUE(t->contains(ip)) << "the slot keeps its address";
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
    const unsigned cap = neighbor_table::capacity;
    for (unsigned i = 0; i < cap; i++)
        ASSERT_TRUE(t->update(be(0x0a000001 + i), mk(i))) << i;
    EXPECT_EQ(t->size(), cap);
    EXPECT_FALSE(t->update(be(0x0b000001), mk(9))) << "no free slot left";
    rte_ether_addr m{};
    EXPECT_FALSE(t->lookup(be(0x0b000001), &m)) << "a miss in a full table terminates";
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
