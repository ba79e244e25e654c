// control/port_pool.cc with a Toeplitz owner map (dataplane/ownership.h):
// every port dealt is the owner's by the map, EVEN-PORT pairs stay on one
// worker, released ports go back to their owner, reserved odd ports are
// their pair's owner's.
#include "control/port_pool.h"
#include "dataplane/leg.h"
#include "dataplane/ownership.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <memory>
#include <set>

using isar::ctl::port_pool;
namespace dp = isar::dp;

namespace {

std::unique_ptr<dp::port_owner_map> toeplitz_map(unsigned nrxq)
{
    dp::rss_layout l;
    l.reta = dp::paired_reta(128, nrxq, dp::rss_key); // what the dataplane programs
    for (unsigned q = 0; q < nrxq; q++)
        l.queue_worker.push_back(static_cast<uint8_t>(q % 2));
    l.nworkers = 2;
    l.v4 = l.v6 = true;
    dp::local_addr a;
    a.family = 4;
    a.ip4_be = htonl(0xc6120001); // 198.18.0.1
    auto m = std::make_unique<dp::port_owner_map>();
    dp::fill_toeplitz(*m, a, l, dp::rss_key);
    return m;
}

} // namespace

TEST(RssPortPool, DealsOnlyOwnedPorts)
{
    const auto m = toeplitz_map(3);
    port_pool p(30000, 30999, 2, true, m->owner);
    EXPECT_EQ(p.free_count(0) + p.free_count(1), 1000u);
    unsigned not_pairs = 0;
    for (unsigned port = 30000; port <= 30999; port++) {
        EXPECT_EQ(p.owner_of(static_cast<uint16_t>(port)), m->owner[port]);
        not_pairs += m->owner[port] != dp::owner_of_port(static_cast<uint16_t>(port), 2);
    }
    EXPECT_GT(not_pairs, 100u) << "test needs a map other than the pairs rule";
    for (unsigned w = 0; w < 2; w++) {
        size_t expect = 0;
        for (unsigned port = 30000; port <= 30999; port++)
            expect += m->owner[port] == w;
        EXPECT_EQ(p.free_count(w), expect);
        std::set<uint16_t> seen;
        while (auto port = p.alloc(w)) {
            EXPECT_EQ(m->owner[*port], w) << *port;
            EXPECT_TRUE(seen.insert(*port).second) << *port;
        }
        EXPECT_EQ(seen.size(), expect);
        for (uint16_t port : seen)
            p.release(port);
        EXPECT_EQ(p.free_count(w), expect) << "released ports go back to their owner";
    }
}

TEST(RssPortPool, EvenPortPairsStayOnOneWorker)
{
    const auto m = toeplitz_map(2);
    for (const bool take_next : {false, true}) {
        port_pool p(30000, 30999, 2, true, m->owner);
        for (unsigned w = 0; w < 2; w++) {
            unsigned n = 0;
            while (auto port = p.alloc_even(w, take_next)) {
                ASSERT_EQ(*port % 2, 0) << *port;
                EXPECT_EQ(m->owner[*port], w) << *port;
                EXPECT_EQ(m->owner[*port + 1], w) << "the pair of " << *port << " is split";
                EXPECT_EQ(p.owner_of(static_cast<uint16_t>(*port + 1)), w);
                EXPECT_EQ(p.in_use(static_cast<uint16_t>(*port + 1)), take_next);
                n++;
            }
            // Every pair of the owner's was found, none other.
            unsigned pairs = 0;
            for (unsigned e = 30000; e < 30999; e += 2)
                pairs += m->owner[e] == w && m->owner[e + 1] == w;
            EXPECT_EQ(n, pairs) << "w=" << w << " take_next=" << take_next;
            EXPECT_GT(n, 150u) << "the paired RETA keeps every pair together";
        }
    }
}

// A map where pairs are split (a RETA that is not paired_reta: any map
// from elsewhere): alloc_even hands out only the pairs that share an owner.
TEST(RssPortPool, SplitPairsAreNotHandedOut)
{
    auto m = std::make_unique<dp::port_owner_map>();
    for (unsigned p = 0; p < dp::port_space; p++) // 2k and 2k+1 split, except k % 8 == 0
        m->owner[p] = static_cast<uint8_t>(((p >> 1) % 8 == 0) ? (p >> 4) % 2 : p % 2);
    port_pool pool(30000, 30999, 2, false, m->owner);
    for (unsigned w = 0; w < 2; w++)
        while (auto e = pool.alloc_even(w, true)) {
            EXPECT_EQ((*e >> 1) % 8, 0u) << *e;
            EXPECT_EQ(m->owner[*e], w);
            EXPECT_EQ(m->owner[*e + 1], w);
        }
    EXPECT_GT(pool.free_total(), 800u) << "split pairs stay for plain alloc";
}

TEST(RssPortPool, NoMapIsThePairsRule)
{
    port_pool p(30000, 30099, 2, false, nullptr);
    for (unsigned port = 30000; port <= 30099; port++)
        EXPECT_EQ(p.owner_of(static_cast<uint16_t>(port)),
                  dp::owner_of_port(static_cast<uint16_t>(port), 2));
    auto e = p.alloc_even(1, true);
    ASSERT_TRUE(e);
    EXPECT_EQ(dp::owner_of_port(*e, 2), 1u);
    EXPECT_TRUE(p.in_use(static_cast<uint16_t>(*e + 1)));
}
