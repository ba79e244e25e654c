// control/port_pool.cc: ports dealt to workers by dp::owner_of_port, FIFO
// reuse, exhaustion, foreign and double releases ignored.
#include "control/port_pool.h"
#include "dataplane/leg.h"

#include <gtest/gtest.h>
#include <set>

using isar::ctl::port_pool;
using isar::dp::owner_of_port;

TEST(PortPool, DealsPortsByOwner)
{
    for (unsigned nw : {1u, 2u, 3u, 4u}) {
        port_pool p(30000, 30099, nw);
        EXPECT_EQ(p.capacity(), 100u);
        EXPECT_EQ(p.free_total(), 100u);
        size_t sum = 0;
        for (unsigned w = 0; w < nw; w++) {
            size_t expect = 0;
            for (unsigned port = 30000; port <= 30099; port++)
                expect += owner_of_port(static_cast<uint16_t>(port), nw) == w;
            EXPECT_EQ(p.free_count(w), expect) << "nw=" << nw << " w=" << w;
            sum += p.free_count(w);
        }
        EXPECT_EQ(sum, 100u);
        for (unsigned w = 0; w < nw; w++) {
            while (auto port = p.alloc(w)) {
                EXPECT_EQ(owner_of_port(*port, nw), w) << *port;
                EXPECT_GE(*port, 30000);
                EXPECT_LE(*port, 30099);
                EXPECT_TRUE(p.in_use(*port));
            }
            EXPECT_EQ(p.free_count(w), 0u);
        }
        EXPECT_EQ(p.free_total(), 0u);
    }
}

TEST(PortPool, AllocatesInOrderAndUnique)
{
    port_pool p(40000, 40009, 2);
    std::set<uint16_t> seen;
    uint16_t prev = 0;
    while (auto port = p.alloc(1)) {
        EXPECT_TRUE(seen.insert(*port).second) << "handed out twice: " << *port;
        EXPECT_GT(*port, prev);
        prev = *port;
    }
    EXPECT_EQ(seen, (std::set<uint16_t>{40001, 40003, 40005, 40007, 40009}));
}

TEST(PortPool, ReleasedPortsGoToTheBack)
{
    port_pool p(30000, 30005, 1);
    auto a = p.alloc(0), b = p.alloc(0);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, 30000);
    EXPECT_EQ(*b, 30001);
    p.release(*a);
    EXPECT_FALSE(p.in_use(*a));
    // 30002..30005 come first, then the released 30000.
    for (uint16_t want : {30002, 30003, 30004, 30005, 30000}) {
        auto x = p.alloc(0);
        ASSERT_TRUE(x);
        EXPECT_EQ(*x, want);
    }
    EXPECT_FALSE(p.alloc(0));
    p.release(30003);
    p.release(30001);
    EXPECT_EQ(*p.alloc(0), 30003);
    EXPECT_EQ(*p.alloc(0), 30001);
}

TEST(PortPool, ReleaseGoesBackToTheOwnersQueue)
{
    port_pool p(30000, 30003, 2);
    auto odd = p.alloc(1);
    ASSERT_TRUE(odd);
    EXPECT_EQ(p.free_count(1), 1u);
    p.release(*odd);
    EXPECT_EQ(p.free_count(0), 2u);
    EXPECT_EQ(p.free_count(1), 2u);
}

TEST(PortPool, Exhaustion)
{
    port_pool p(30000, 30001, 2);
    EXPECT_TRUE(p.alloc(0));
    EXPECT_FALSE(p.alloc(0));
    EXPECT_TRUE(p.alloc(1));
    EXPECT_FALSE(p.alloc(1));
    EXPECT_FALSE(p.alloc(2)) << "owner beyond nworkers";
    EXPECT_FALSE(p.alloc(1000));
}

TEST(PortPool, ForeignAndDoubleReleasesIgnored)
{
    port_pool p(30000, 30009, 2);
    auto a = p.alloc(0);
    ASSERT_TRUE(a);
    const size_t f0 = p.free_count(0), f1 = p.free_count(1);
    p.release(29999); // below the range
    p.release(30010); // above
    p.release(0);
    p.release(65535);
    p.release(30002); // in range but never allocated
    p.release(30001); // another owner's, not allocated
    EXPECT_EQ(p.free_count(0), f0);
    EXPECT_EQ(p.free_count(1), f1);
    p.release(*a);
    EXPECT_EQ(p.free_count(0), f0 + 1);
    p.release(*a); // double release
    EXPECT_EQ(p.free_count(0), f0 + 1);
    // Every port is handed out exactly once more.
    std::set<uint16_t> seen;
    while (auto x = p.alloc(0))
        EXPECT_TRUE(seen.insert(*x).second) << *x;
    EXPECT_EQ(seen.size(), 5u);
}

TEST(PortPool, FullRangeToTop)
{
    port_pool p(65530, 65535, 1);
    EXPECT_EQ(p.capacity(), 6u);
    unsigned n = 0;
    while (auto x = p.alloc(0)) {
        EXPECT_GE(*x, 65530);
        n++;
    }
    EXPECT_EQ(n, 6u);
    p.release(65535);
    EXPECT_EQ(*p.alloc(0), 65535);
}
