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
    // Dealt in pairs (2k, 2k+1): worker 1 of 2 has 40002/3 and 40006/7.
    EXPECT_EQ(seen, (std::set<uint16_t>{40002, 40003, 40006, 40007}));
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
    port_pool p(30000, 30003, 2); // 30000/1 to worker 0, 30002/3 to worker 1
    EXPECT_TRUE(p.alloc(0));
    EXPECT_TRUE(p.alloc(0));
    EXPECT_FALSE(p.alloc(0));
    EXPECT_TRUE(p.alloc(1));
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
    p.release(30004); // in range but never allocated
    p.release(30002); // another owner's, not allocated
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
    EXPECT_EQ(seen.size(), 6u); // 30000/1, 30004/5, 30008/9
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

// TURN's EVEN-PORT: an even port whose odd neighbour is free, both of the
// same owner; with R the odd one is taken too (reserved), without it stays free.
TEST(PortPool, EvenPort)
{
    port_pool p(30000, 30007, 2); // worker 0: 30000/1, 30004/5; worker 1: 30002/3, 30006/7
    auto a = p.alloc_even(1, true);
    ASSERT_TRUE(a);
    EXPECT_EQ(*a, 30002);
    EXPECT_TRUE(p.in_use(30003)) << "reserved for the RESERVATION-TOKEN";
    auto b = p.alloc_even(1, false);
    ASSERT_TRUE(b);
    EXPECT_EQ(*b, 30006);
    EXPECT_FALSE(p.in_use(30007));
    EXPECT_FALSE(p.alloc_even(1, false)) << "30007 is odd";
    EXPECT_EQ(*p.alloc(1), 30007);
    // An even port whose neighbour is taken is not offered.
    auto c = p.alloc(0);
    ASSERT_TRUE(c);
    EXPECT_EQ(*c, 30000);
    auto d = p.alloc(0); // 30001
    ASSERT_TRUE(d);
    p.release(30000);
    auto e = p.alloc_even(0, false);
    ASSERT_TRUE(e);
    EXPECT_EQ(*e, 30004) << "30000's neighbour 30001 is in use";
    EXPECT_FALSE(p.alloc_even(7, false)) << "owner beyond nworkers";
}

// isard's pools hand ports out unpredictably: not in sequence, every port of
// the owner's share exactly once, and a released port waits at least half a
// queue before it comes back.
TEST(PortPool, Unpredictable)
{
    constexpr uint16_t lo = 30000, hi = 30999;
    port_pool p(lo, hi, 1, true);
    std::vector<uint16_t> order;
    while (auto x = p.alloc(0))
        order.push_back(*x);
    ASSERT_EQ(order.size(), 1000u);
    EXPECT_EQ(std::set<uint16_t>(order.begin(), order.end()).size(), 1000u) << "each once";
    unsigned sequential = 0;
    for (size_t i = 1; i < order.size(); i++)
        sequential += order[i] == order[i - 1] + 1;
    EXPECT_LT(sequential, 50u) << "a predictable pool hands out 999 in sequence";
    port_pool q(lo, hi, 1, true);
    std::vector<uint16_t> first;
    for (int i = 0; i < 20; i++)
        first.push_back(*q.alloc(0));
    port_pool r(lo, hi, 1, true);
    std::vector<uint16_t> second;
    for (int i = 0; i < 20; i++)
        second.push_back(*r.alloc(0));
    EXPECT_NE(first, second) << "two pools draw different ports";
    // Reuse delay: a released port is not handed out again within the next
    // half queue of allocations.
    port_pool s(lo, hi, 1, true);
    for (int i = 0; i < 500; i++)
        s.alloc(0);
    const auto a = s.alloc(0);
    ASSERT_TRUE(a);
    s.release(*a);
    for (int i = 0; i < 250; i++) {
        auto x = s.alloc(0);
        ASSERT_TRUE(x);
        EXPECT_NE(*x, *a) << "handed out again after " << i << " allocations";
    }
}
