// Operations through the real worker loop: RFC 3550 loss accounting per leg,
// the max_pps rate limit (counted rate_limit drops), status/drain and the
// debug.wedge_worker gate, and the /metrics exposition of a metrics session.
#include "control/metrics.h"
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"

#include <gtest/gtest.h>
#include <rte_cycles.h>

ISAR_TEST_EAL_ENV("test_ops_relay");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

uint16_t port_of(const json& rep, const std::string& leg)
{
    return relay::local_port(rep, leg);
}

json create(relay& r, const std::string& id, json a, json b, bool metrics = false)
{
    json req{{"cmd", "session.create"}, {"session", id}, {"legs", {a, b}}};
    if (metrics)
        req["metrics"] = true;
    return r.call(req);
}

} // namespace

class Ops : public RelayTest {
protected:
    void SetUp() override
    {
        start();
        r->learn(alice);
        r->learn(bob);
    }
};

TEST_F(Ops, LossIsCountedPerLeg)
{
    json rep = create(*r, "q", {{"name", "a"}, {"remote", alice.ep()}},
                      {{"name", "b"}, {"remote", bob.ep()}}, true);
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    const uint16_t pa = port_of(rep, "a");
    // seq 10..39 without 20, 21 and 30.
    for (uint16_t s = 10; s < 40; s++)
        if (s != 20 && s != 21 && s != 30)
            r->inject(r->from_peer(alice, pa, rtp(s, 0x1234)));
    r->settle();
    EXPECT_EQ(r->sent_by_workers(0).size(), 27u);
    json a = leg_of(r->call({{"cmd", "session.get"}, {"session", "q"}}), "a");
    EXPECT_EQ(a["rtp"]["expected"], 29); // 11..39 (10 is the probation)
    EXPECT_EQ(a["rtp"]["received"], 26);
    EXPECT_EQ(a["rtp"]["lost"], 3);
    EXPECT_EQ(a["rtp"]["ssrc"], 0x1234);
    EXPECT_EQ(a["rtp"]["ext_max_seq"], 39);
    json b = leg_of(r->call({{"cmd", "session.get"}, {"session", "q"}}), "b");
    EXPECT_EQ(b["rtp"]["expected"], 0);

    // RTCP is counted apart and does not disturb the sequence accounting.
    bytes sr = {0x80, 200, 0, 6, 0, 0, 0x12, 0x34};
    sr.resize(28, 0);
    r->inject(r->from_peer(alice, pa, sr));
    r->settle();
    (void)r->sent_by_workers(0);
    a = leg_of(r->call({{"cmd", "session.get"}, {"session", "q"}}), "a");
    EXPECT_EQ(a["rtp"]["rtcp_packets"], 1);
    EXPECT_EQ(a["rtp"]["lost"], 3);

    // The same numbers in /metrics, labelled by session and leg.
    ctl::metrics_exporter ex(*r->dp, *r->sm, *r->nm, *r->cmds);
    const std::string m = ex.render({});
    EXPECT_NE(m.find("isar_leg_rtp_lost{session=\"q\",leg=\"a\"} 3\n"), std::string::npos) << m;
    EXPECT_NE(m.find("isar_leg_rtp_expected_total{session=\"q\",leg=\"a\"} 29\n"),
              std::string::npos);
    EXPECT_NE(m.find("isar_leg_packets_total{session=\"q\",leg=\"a\",dir=\"in\"} 28\n"),
              std::string::npos);
    EXPECT_NE(m.find("isar_sessions 1\n"), std::string::npos);
    EXPECT_NE(m.find("isar_control_requests_total{cmd=\"session.create\"} 1\n"), std::string::npos);
    EXPECT_EQ(r->call({{"cmd", "session.delete"}, {"session", "q"}})["deleted"], true);
}

TEST_F(Ops, NoLegSeriesWithoutMetrics)
{
    json rep = create(*r, "plain", {{"name", "a"}, {"remote", alice.ep()}},
                      {{"name", "b"}, {"remote", bob.ep()}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    ctl::metrics_exporter ex(*r->dp, *r->sm, *r->nm, *r->cmds);
    const std::string m = ex.render({});
    EXPECT_EQ(m.find("session=\"plain\""), std::string::npos);
    EXPECT_NE(m.find("# TYPE isar_leg_rtp_lost gauge\n"), std::string::npos);
    EXPECT_EQ(r->call({{"cmd", "session.get"}, {"session", "plain"}})["metrics"], false);
}

TEST_F(Ops, RateLimitDropsAboveMaxPps)
{
    // 10 pps: the burst is 16 packets; 100 packets within microseconds.
    json rep = create(*r, "lim", {{"name", "a"}, {"remote", alice.ep()}, {"max_pps", 10}},
                      {{"name", "b"}, {"remote", bob.ep()}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    const uint16_t pa = port_of(rep, "a"), pb = port_of(rep, "b");
    for (uint16_t s = 0; s < 100; s++)
        r->inject(r->from_peer(alice, pa, rtp(s, 0x77)));
    r->settle();
    EXPECT_EQ(r->sent_by_workers(0).size(), 16u);
    EXPECT_EQ(r->drops(drop::rate_limit), 84u);
    json s = r->call({{"cmd", "session.get"}, {"session", "lim"}});
    EXPECT_EQ(leg_of(s, "a")["drops"]["rate_limit"], 84);
    EXPECT_EQ(leg_of(s, "a")["max_pps"], 10);
    EXPECT_EQ(leg_of(s, "b")["max_pps"], nullptr);
    r->expect_accounted("rate limit");
    // The other direction has no limit.
    for (uint16_t s2 = 0; s2 < 50; s2++)
        r->inject(r->from_peer(bob, pb, rtp(s2, 0x88)));
    r->settle();
    EXPECT_EQ(r->sent_by_workers(0).size(), 50u);
    // After 0.3 s, 3 more tokens.
    rte_delay_us_block(300000);
    for (uint16_t q = 100; q < 110; q++)
        r->inject(r->from_peer(alice, pa, rtp(q, 0x77)));
    r->settle();
    const size_t n = r->sent_by_workers(0).size();
    EXPECT_GE(n, 2u);
    EXPECT_LE(n, 4u);
}

TEST_F(Ops, CreateValidatesOpsFields)
{
    auto err = [&](json leg) {
        json rep = create(*r, "v", leg, {{"name", "b"}});
        return rep.contains("error") ? rep["error"]["message"].get<std::string>() : "";
    };
    EXPECT_NE(err({{"name", "a"}, {"max_pps", 0}}).find("legs[0].max_pps"), std::string::npos);
    EXPECT_NE(err({{"name", "a"}, {"max_pps", "x"}}).find("legs[0].max_pps"), std::string::npos);
    EXPECT_NE(err({{"name", "a"}, {"clock_rate", 7}}).find("legs[0].clock_rate"),
              std::string::npos);
    json rep = r->call({{"cmd", "session.create"},
                        {"session", "v"},
                        {"metrics", 1},
                        {"legs", {{{"name", "a"}}, {{"name", "b"}}}}});
    EXPECT_EQ(rep["error"]["code"], "invalid");
    EXPECT_NE(rep["error"]["message"].get<std::string>().find("metrics"), std::string::npos);
    EXPECT_EQ(r->sm->sessions().size(), 0u);
    rep = create(*r, "ok", {{"name", "a"}, {"clock_rate", 48000}}, {{"name", "b"}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    EXPECT_EQ(leg_of(r->call({{"cmd", "session.get"}, {"session", "ok"}}), "a")["clock_rate"],
              48000);
}

TEST_F(Ops, StatusDrainAndWedgeGate)
{
    json st = r->call({{"cmd", "status"}});
    EXPECT_EQ(st["state"], "running");
    EXPECT_EQ(st["workers"], 1);
    EXPECT_EQ(st["sessions"], 0);
    auto [pa, pb] = r->two_legs("keep", alice, bob);
    ASSERT_NE(pa, 0);

    json w = r->call({{"cmd", "debug.wedge_worker"}, {"worker", 0}});
    EXPECT_EQ(w["error"]["code"], "forbidden") << w.dump();
    EXPECT_EQ(r->dp->wk(0).wedge_until.load(), 0u);
    r->cfg.allow_wedge = true; // commands reads the live config
    w = r->call({{"cmd", "debug.wedge_worker"}, {"worker", 1}});
    EXPECT_EQ(w["error"]["code"], "invalid");
    w = r->call({{"cmd", "debug.wedge_worker"}, {"worker", 0}, {"seconds", 1}});
    EXPECT_EQ(w["wedged_s"], 1);
    EXPECT_GT(r->dp->wk(0).wedge_until.load(), rte_rdtsc());
    r->dp->wk(0).wedge_until.store(0);

    json d = r->call({{"cmd", "drain"}});
    EXPECT_EQ(d["state"], "draining");
    EXPECT_EQ(d["started"], true);
    EXPECT_EQ(r->call({{"cmd", "drain"}})["started"], false);
    json c = create(*r, "new", {{"name", "a"}}, {{"name", "b"}});
    EXPECT_EQ(c["error"]["code"], "draining");
    EXPECT_EQ(r->sm->sessions().size(), 1u);
    EXPECT_EQ(r->call({{"cmd", "status"}})["state"], "draining");
    // Existing sessions keep forwarding.
    r->inject(r->from_peer(alice, pa, rtp(1, 0x99)));
    r->settle();
    EXPECT_EQ(r->sent_by_workers(0).size(), 1u);
    EXPECT_EQ(r->call({{"cmd", "session.delete"}, {"session", "keep"}})["deleted"], true);
}
