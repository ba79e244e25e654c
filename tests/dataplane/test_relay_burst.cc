// Burst sizes through the RX ring (0, 1, 3, 4, 31, 32, 33, 257: the unrolled
// loop and its tail, and several polls past max_burst), mixed bursts where
// packets for different workers and verdicts interleave, and the handoff of a
// packet received by worker 0 for a port owned by worker 1.
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"

#include <gtest/gtest.h>
#include <map>
#include <set>

ISAR_TEST_EAL_ENV("test_relay_burst");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

uint16_t seq_of(const bytes& frame)
{
    auto v = parse_udp4(frame);
    if (!v || v->payload.size() < 4)
        return 0xffff;
    return static_cast<uint16_t>(v->payload[2] << 8 | v->payload[3]);
}

json worker_of(relay& r, const std::string& id)
{
    return r.call({{"cmd", "session.get"}, {"session", id}})["worker"];
}

} // namespace

struct burst_case {
    unsigned nworkers;
    unsigned n;
    bool other_worker; // session owned by the worker that does not poll the RX queue
};

class Burst : public RelayTest, public ::testing::WithParamInterface<burst_case> {};

TEST_P(Burst, AllForwardedInOrder)
{
    const auto& c = GetParam();
    relay_options o;
    o.nworkers = c.nworkers;
    start(o);
    r->learn(alice);
    r->learn(bob);
    if (c.other_worker)
        r->two_legs("filler", alice, bob); // takes worker 0: the next session goes to 1
    auto [pa, pb] = r->two_legs("call", alice, bob);
    const unsigned owner = c.other_worker ? 1 : 0;
    ASSERT_EQ(worker_of(*r, "call"), owner);
    ASSERT_EQ(dp::owner_of_port(pa, c.nworkers), owner) << "ports come from the owner's share";

    std::vector<bytes> payloads;
    for (unsigned i = 0; i < c.n; i++) {
        payloads.push_back(rtp(static_cast<uint16_t>(i), 0xabc, 40 + i % 50));
        r->inject(r->from_peer(alice, pa, payloads.back()));
    }
    EXPECT_EQ(r->ports[0]->rx_pending(), c.n);
    // Every poll of the RX worker takes at most max_burst.
    unsigned polls = 0;
    while (r->ports[0]->rx_pending() > 0) {
        const unsigned before = r->ports[0]->rx_pending();
        r->poll_worker(0);
        EXPECT_EQ(before - r->ports[0]->rx_pending(), std::min(before, dp::max_burst));
        polls++;
        ASSERT_LT(polls, 1000u);
    }
    EXPECT_EQ(polls, (c.n + dp::max_burst - 1) / dp::max_burst);
    r->settle();

    auto out = r->sent(0, owner);
    for (unsigned q = 0; q < c.nworkers; q++) {
        if (q != owner) {
            EXPECT_EQ(r->ports[0]->tx_pending(q), 0u) << "only the owner transmits";
        }
    }
    ASSERT_EQ(out.size(), c.n);
    for (unsigned i = 0; i < c.n; i++)
        ASSERT_EQ(out[i], r->expected(bob, pb, payloads[i])) << "packet " << i;
    EXPECT_EQ(r->sum(&dp::worker_stats::rx_pkts), c.n);
    EXPECT_EQ(r->sum(&dp::worker_stats::tx_pkts), c.n);
    EXPECT_EQ(r->sum(&dp::worker_stats::handoff_out), c.other_worker ? c.n : 0u);
    EXPECT_EQ(r->sum(&dp::worker_stats::handoff_in), c.other_worker ? c.n : 0u);
    EXPECT_EQ(r->total_drops(), 0u);
    r->expect_accounted("burst");
}

std::vector<burst_case> burst_cases()
{
    std::vector<burst_case> v;
    for (unsigned n : {0u, 1u, 3u, 4u, 31u, 32u, 33u, 257u}) {
        v.push_back({1, n, false});
        v.push_back({2, n, false});
        v.push_back({2, n, true});
    }
    return v;
}

INSTANTIATE_TEST_SUITE_P(Sizes, Burst, ::testing::ValuesIn(burst_cases()), [](const auto& i) {
    return std::to_string(i.param.nworkers) + "w_" + std::to_string(i.param.n) +
           (i.param.other_worker ? "_handoff" : "");
});

TEST_F(RelayTest, HandoffToOwningWorker)
{
    relay_options o;
    o.nworkers = 2;
    start(o);
    r->learn(alice);
    r->learn(bob);
    r->two_legs("filler", alice, bob);
    auto [pa, pb] = r->two_legs("call", alice, bob);
    ASSERT_EQ(worker_of(*r, "call"), 1);
    ASSERT_EQ(dp::owner_of_port(pa, 2), 1u); // ports are dealt in pairs
    ASSERT_EQ(dp::owner_of_port(pb, 2), 1u);

    const bytes p = rtp(1, 1);
    r->inject(r->from_peer(alice, pa, p));
    // Worker 0 polls the (only) RX queue and hands the packet over.
    r->poll_worker(0);
    EXPECT_EQ(r->dp->wk(0).stats.handoff_out.load(), 1u);
    EXPECT_EQ(r->dp->wk(0).stats.rx_pkts.load(), 1u);
    EXPECT_EQ(r->pending_tx(), 0u);
    EXPECT_EQ(r->dp->wk(1).stats.handoff_in.load(), 0u);
    // Worker 1 forwards it on its own TX queue.
    r->poll_worker(1);
    EXPECT_EQ(r->dp->wk(1).stats.handoff_in.load(), 1u);
    EXPECT_EQ(r->dp->wk(1).stats.fwd_pkts.load(), 1u);
    EXPECT_EQ(r->dp->wk(1).stats.rx_pkts.load(), 0u) << "rx counted once, by the receiver";
    EXPECT_EQ(r->ports[0]->tx_pending(0), 0u);
    auto out = r->sent(0, 1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(bob, pb, p));
    // The leg's counters were written by its owner.
    json s = r->call({{"cmd", "session.get"}, {"session", "call"}});
    EXPECT_EQ(s["legs"][0]["in"]["packets"], 1);
}

TEST_F(RelayTest, HandoffToUnknownPortIsNoFlowOnTheOwner)
{
    relay_options o;
    o.nworkers = 2;
    start(o);
    r->learn(alice);
    r->inject(r->from_peer(alice, 30002, rtp(1, 1))); // pair 15001: owner 1, no session
    r->poll_worker(0);
    EXPECT_EQ(r->dp->wk(0).stats.handoff_out.load(), 1u);
    EXPECT_EQ(r->drops(drop::no_flow), 0u);
    r->poll_worker(1);
    EXPECT_EQ(r->dp->wk(1).stats.drops[static_cast<unsigned>(drop::no_flow)].load(), 1u);
}

// One burst mixing packets for two sessions on two workers, malformed frames,
// no-flow ports and exceptions: each packet must reach its own destination
// (the bulk lookup's results must line up with the right packets).
// With the act pass's prefetch schedule for legs in the L2 or in DRAM (line
// 0 for the whole burst), and for legs in the LLC (line 0 12 packets ahead,
// burst.cc), forced here: a schedule only asks for lines, the packets and
// counters must be the same.
class MixedBurst : public RelayTest, public ::testing::WithParamInterface<bool> {};

TEST_P(MixedBurst, KeepsPacketsApart)
{
    relay_options o;
    o.nworkers = 2;
    start(o);
    for (unsigned w = 0; w < 2; w++) {
        r->dp->wk(w).spread_min_flows = 0;
        r->dp->wk(w).spread_max_flows = GetParam() ? UINT32_MAX : 0;
    }
    for (const peer* p : {&alice, &bob, &carol, &mallory})
        r->learn(*p);
    auto [a0, b0] = r->two_legs("s0", alice, bob);     // worker 0
    auto [a1, b1] = r->two_legs("s1", carol, mallory); // worker 1
    ASSERT_EQ(worker_of(*r, "s0"), 0);
    ASSERT_EQ(worker_of(*r, "s1"), 1);

    std::map<uint16_t, std::pair<const peer*, uint16_t>> want; // seq -> (dest, src port)
    unsigned drops = 0, exc = 0;
    for (uint16_t i = 0; i < 64; i++) {
        switch (i % 8) {
        case 0:
        case 3:
            r->inject(r->from_peer(alice, a0, rtp(i, 0)));
            want[i] = {&bob, b0};
            break;
        case 1:
        case 6:
            r->inject(r->from_peer(carol, a1, rtp(i, 1)));
            want[i] = {&mallory, b1};
            break;
        case 2:
            r->inject(r->from_peer(mallory, b1, rtp(i, 2)));
            want[i] = {&carol, a1};
            break;
        case 4:
            r->inject(r->from_peer(alice, 30100 + i, rtp(i, 3))); // no session
            drops++;
            break;
        case 5: {
            bytes f = r->from_peer(bob, b0, rtp(i, 4));
            f[24] ^= 0xff; // IP checksum
            r->inject(f);
            drops++;
            break;
        }
        case 7:
            r->inject(r->from_peer(bob, b0, rtp(i, 5, 20, 0x00))); // STUN
            exc++;
            break;
        }
    }
    r->settle();
    std::vector<bytes> out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), want.size());
    std::set<uint16_t> seen;
    for (const auto& f : out) {
        const uint16_t seq = seq_of(f);
        ASSERT_TRUE(want.count(seq)) << "unexpected packet seq " << seq;
        EXPECT_TRUE(seen.insert(seq).second) << "twice: " << seq;
        const auto& [to, sport] = want[seq];
        const uint32_t ssrc = seq % 8 == 2 ? 2 : (seq % 8 == 1 || seq % 8 == 6) ? 1 : 0;
        EXPECT_EQ(f, r->expected(*to, sport, rtp(seq, ssrc))) << "seq " << seq;
    }
    EXPECT_EQ(r->total_drops(), drops);
    EXPECT_EQ(r->sum(&dp::worker_stats::exception_pkts), exc);
    r->expect_accounted("mixed");
}

INSTANTIATE_TEST_SUITE_P(Schedules, MixedBurst, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                             return i.param ? "LineZeroAhead" : "LineZeroFirst";
                         });

// ---- full rings and an empty pool: counted drops, nothing leaks ---------------

TEST_F(RelayTest, TxQueueFullIsCountedAndFreed)
{
    relay_options o;
    o.port_ring_size = 64; // the TX ring holds 63 packets
    start(o);
    r->learn(alice);
    r->learn(bob);
    auto [pa, pb] = r->two_legs("call", alice, bob);
    // Nobody drains TX while the worker forwards 200 packets; the RX ring
    // (63 places too) is refilled between polls.
    unsigned injected = 0;
    for (int round = 0; round < 100 && injected < 200; round++) {
        while (injected < 200 && r->ports[0]->rx_pending() < 63) {
            r->inject(r->from_peer(alice, pa, rtp(static_cast<uint16_t>(injected), 1)));
            injected++;
        }
        r->poll_worker(0);
    }
    while (r->ports[0]->rx_pending() > 0)
        r->poll_worker(0);
    ASSERT_EQ(injected, 200u);
    EXPECT_EQ(r->ports[0]->tx_pending(0), 63u);
    EXPECT_EQ(r->drops(drop::tx_full), injected - 63);
    EXPECT_EQ(r->sum(&dp::worker_stats::tx_pkts), 63u);
    // Only what sits in the TX ring is in use.
    EXPECT_EQ(r->dp->mbufs_in_use(), r->baseline + 63);
    (void)pb;
}

TEST_F(RelayTest, ExceptionRingFullIsCountedAndFreed)
{
    relay_options o;
    o.ring_size = 64;
    start(o);
    arp_spec q;
    q.sip = alice.ip;
    q.tip = r->ip(0);
    for (unsigned i = 0; i < 100; i++)
        r->inject(build(q));
    for (int i = 0; i < 10; i++)
        r->poll_worker(0); // control does not poll
    EXPECT_EQ(r->sum(&dp::worker_stats::exception_pkts), 63u);
    EXPECT_EQ(r->drops(drop::exception_full), 37u);
    EXPECT_EQ(r->dp->mbufs_in_use(), r->baseline + 63);
    r->settle();
    EXPECT_EQ(r->nm->stats().arp_in, 63u);
}

TEST_F(RelayTest, HandoffRingFullIsCountedAndFreed)
{
    relay_options o;
    o.nworkers = 2;
    o.ring_size = 64;
    start(o);
    r->learn(alice);
    r->learn(bob);
    r->two_legs("filler", alice, bob);
    auto [pa, pb] = r->two_legs("call", alice, bob); // worker 1
    for (unsigned i = 0; i < 100; i++)
        r->inject(r->from_peer(alice, pa, rtp(static_cast<uint16_t>(i), 1)));
    for (int i = 0; i < 10; i++)
        r->poll_worker(0); // worker 1 does not poll
    EXPECT_EQ(r->sum(&dp::worker_stats::handoff_out), 63u);
    EXPECT_EQ(r->drops(drop::handoff_full), 37u);
    EXPECT_EQ(r->dp->mbufs_in_use(), r->baseline + 63);
    r->settle();
    EXPECT_EQ(r->sent(0, 1).size(), 63u);
    (void)pb;
}

TEST_F(RelayTest, FanOutCopyWithEmptyPool)
{
    start();
    for (const peer* p : {&alice, &bob, &carol})
        r->learn(*p);
    json rep = r->call({{"cmd", "session.create"},
                        {"session", "conf"},
                        {"legs",
                         {{{"name", "a"}, {"remote", alice.ep()}},
                          {{"name", "b"}, {"remote", bob.ep()}},
                          {{"name", "c"}, {"remote", carol.ep()}}}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    const uint16_t pa = relay::local_port(rep, "a"), pc = relay::local_port(rep, "c");
    const bytes p = rtp(1, 1);
    r->inject(r->from_peer(alice, pa, p));
    // Take every other mbuf: the copy for b cannot be made.
    std::vector<rte_mbuf*> hog;
    while (rte_mbuf* m = rte_pktmbuf_alloc(r->dp->pool()))
        hog.push_back(m);
    r->poll_worker(0);
    free_all(hog);
    EXPECT_EQ(r->drops(drop::no_mbuf), 1u);
    auto out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 1u) << "the last target still gets the original";
    EXPECT_EQ(out[0], r->expected(carol, pc, p));
    json s = r->call({{"cmd", "session.get"}, {"session", "conf"}});
    EXPECT_EQ(s["legs"][1]["drops"]["no_mbuf"], 1);
}
