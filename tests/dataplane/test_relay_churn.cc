// Session churn while packets flow (one thread interleaving polls): thousands
// of creates and deletes through the commands API, no mbuf leak, no stale
// forwarding to a deleted session, ports reused; requests that fail
// validation change nothing; the pool running dry is reported and recovers.
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"

#include <deque>
#include <gtest/gtest.h>
#include <random>
#include <set>

ISAR_TEST_EAL_ENV("test_relay_churn");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

// What a failed request must leave untouched.
struct snapshot {
    size_t sessions, legs, free0, free1, pending_tx;
    uint64_t cmds_applied, created, failed;
    unsigned in_use;
    bool operator==(const snapshot&) const = default;
};

snapshot snap(relay& r)
{
    uint64_t cmds = 0;
    for (unsigned w = 0; w < r.dp->nworkers(); w++)
        cmds += dp::read(r.dp->wk(w).stats.cmds_applied);
    return {r.sm->sessions().size(),
            r.sm->leg_count(),
            r.sm->pool(0).free_total(),
            r.dp->nifaces() > 1 ? r.sm->pool(1).free_total() : 0,
            r.pending_tx(),
            cmds,
            r.sm->stats().created,
            r.sm->stats().failed,
            r.dp->mbufs_in_use()};
}

std::ostream& operator<<(std::ostream& os, const snapshot& s)
{
    return os << "{sessions " << s.sessions << " legs " << s.legs << " free " << s.free0 << "/"
              << s.free1 << " cmds " << s.cmds_applied << " in_use " << s.in_use << "}";
}

json leg(const std::string& name, const std::optional<peer>& remote = std::nullopt)
{
    json l{{"name", name}};
    if (remote)
        l["remote"] = remote->ep();
    return l;
}

} // namespace

class Churn : public RelayTest, public ::testing::WithParamInterface<unsigned> {};

TEST_P(Churn, CreateDeleteWhilePacketsFlow)
{
    relay_options o;
    o.nworkers = GetParam();
    o.port_min = 30000;
    o.port_max = 30063; // 64 ports: heavy reuse
    start(o);
    for (const peer* p : {&alice, &bob, &carol, &mallory})
        r->learn(*p);
    const unsigned rounds = 3000, live_max = 8;
    std::mt19937 rng(42);
    struct live {
        std::string id;
        uint16_t pa, pb;
    };
    std::deque<live> alive;
    std::set<uint16_t> ports_seen;
    std::vector<std::pair<uint16_t, uint16_t>> dead; // ports of deleted sessions, not yet reused
    uint64_t expect_fwd = 0;

    for (unsigned i = 0; i < rounds; i++) {
        const std::string id = "s" + std::to_string(i);
        json rep = r->call({{"cmd", "session.create"},
                            {"session", id},
                            {"id", i},
                            {"legs", {leg("a", alice), leg("b", bob)}}});
        ASSERT_FALSE(rep.contains("error")) << i << ": " << rep.dump();
        ASSERT_EQ(rep["id"], i);
        live l{id, relay::local_port(rep, "a"), relay::local_port(rep, "b")};
        ports_seen.insert(l.pa);
        ports_seen.insert(l.pb);
        alive.push_back(l);

        // Traffic on a random live session, in both directions.
        const live& t = alive[rng() % alive.size()];
        const bytes p = rtp(static_cast<uint16_t>(i), 7, 20 + i % 100);
        r->inject(r->from_peer(alice, t.pa, p));
        r->inject(r->from_peer(bob, t.pb, p));
        // And at the ports of the most recently deleted session.
        uint64_t no_flow_before = r->drops(drop::no_flow);
        bool stale_probe = false;
        if (!dead.empty()) {
            auto [da, db] = dead.back();
            bool reused = false;
            for (const auto& x : alive)
                reused = reused || x.pa == da || x.pb == da || x.pa == db || x.pb == db;
            if (!reused) {
                r->inject(r->from_peer(alice, da, p));
                stale_probe = true;
            }
        }
        r->settle();
        auto out = r->sent_by_workers(0);
        expect_fwd += 2;
        ASSERT_EQ(out.size(), 2u) << "round " << i;
        // Each packet went to its own session's peer, from its own ports.
        bool to_bob = false, to_alice = false;
        for (const auto& f : out) {
            if (f == r->expected(bob, t.pb, p))
                to_bob = true;
            if (f == r->expected(alice, t.pa, p))
                to_alice = true;
        }
        ASSERT_TRUE(to_bob && to_alice) << "round " << i;
        if (stale_probe) {
            ASSERT_EQ(r->drops(drop::no_flow), no_flow_before + 1)
                    << "stale forwarding, round " << i;
        }

        if (alive.size() > live_max || rng() % 3 == 0) {
            const size_t k = rng() % alive.size();
            const live victim = alive[k];
            alive.erase(alive.begin() + static_cast<long>(k));
            json d = r->call({{"cmd", "session.delete"}, {"session", victim.id}});
            ASSERT_EQ(d["deleted"], true) << d.dump();
            dead.push_back({victim.pa, victim.pb});
        }
        if (i % 500 == 0) {
            ASSERT_EQ(r->dp->mbufs_in_use(), r->baseline) << "round " << i;
        }
    }
    EXPECT_EQ(ports_seen.size(), 64u) << "every port of the pool was used";
    EXPECT_EQ(r->sum(&dp::worker_stats::fwd_pkts), expect_fwd);
    EXPECT_EQ(r->sm->stats().created, rounds);

    // Delete the rest: everything returns to the pools.
    for (const auto& l : alive) {
        json d = r->call({{"cmd", "session.delete"}, {"session", l.id}});
        ASSERT_EQ(d["deleted"], true) << d.dump();
    }
    EXPECT_TRUE(r->sm->sessions().empty());
    EXPECT_EQ(r->sm->leg_count(), 0u);
    EXPECT_EQ(r->sm->pool(0).free_total(), 64u);
    EXPECT_FALSE(r->sm->pending());
    EXPECT_EQ(r->dp->mbufs_in_use(), r->baseline);
    r->expect_accounted("churn");
}

// Pipelined requests: many creates and deletes queued before any ack, a
// delete issued before its create was acknowledged, and an id reused while
// the old session's delete is still in flight.
TEST_P(Churn, PipelinedRequests)
{
    relay_options o;
    o.nworkers = GetParam();
    start(o);
    r->learn(alice);
    r->learn(bob);
    std::vector<std::shared_ptr<std::optional<json>>> replies;
    for (unsigned i = 0; i < 50; i++)
        replies.push_back(r->start({{"cmd", "session.create"},
                                    {"session", "p" + std::to_string(i)},
                                    {"legs", {leg("a", alice), leg("b", bob)}}}));
    // Delete every other one before it was installed.
    std::vector<std::shared_ptr<std::optional<json>>> dels;
    for (unsigned i = 0; i < 50; i += 2)
        dels.push_back(r->start({{"cmd", "session.delete"}, {"session", "p" + std::to_string(i)}}));
    // Reuse an id whose delete is still queued.
    auto again = r->start({{"cmd", "session.create"},
                           {"session", "p0"},
                           {"legs", {leg("a", alice), leg("b", bob)}}});
    r->settle();
    for (unsigned i = 0; i < 50; i++) {
        ASSERT_TRUE(replies[i]->has_value()) << i;
        json j = **replies[i];
        if (i % 2 == 0)
            EXPECT_EQ(j["error"]["code"], "not_found") << "deleted before the ack: " << j.dump();
        else
            EXPECT_FALSE(j.contains("error")) << j.dump();
    }
    for (auto& d : dels) {
        ASSERT_TRUE(d->has_value());
        json dj = **d;
        EXPECT_EQ(dj["deleted"], true) << dj.dump();
    }
    ASSERT_TRUE(again->has_value());
    ASSERT_FALSE((**again).contains("error")) << (**again).dump();
    EXPECT_EQ(r->sm->sessions().size(), 26u);
    EXPECT_EQ(r->sm->leg_count(), 52u);
    EXPECT_EQ(r->sm->pool(0).free_total(), 200u - 52u);
    EXPECT_FALSE(r->sm->pending());

    // The new p0 forwards.
    const uint16_t pa = relay::local_port(**again, "a"), pb = relay::local_port(**again, "b");
    const bytes p = rtp(1, 1);
    r->inject(r->from_peer(alice, pa, p));
    r->settle();
    auto out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(bob, pb, p));
}

// leg.update, then delete, then a new session with the same id, all queued
// before any ack: the update's reply must not describe the successor.
TEST_P(Churn, UpdateOfDeletedSessionIsNotReportedOnItsSuccessor)
{
    relay_options o;
    o.nworkers = GetParam();
    start(o);
    json c = r->call({{"cmd", "session.create"}, {"session", "s"}, {"legs", {leg("a"), leg("b")}}});
    ASSERT_FALSE(c.contains("error")) << c.dump();
    auto upd = r->start(
            {{"cmd", "leg.update"}, {"session", "s"}, {"leg", "a"}, {"remote", alice.ep()}});
    auto del = r->start({{"cmd", "session.delete"}, {"session", "s"}});
    auto again = r->start(
            {{"cmd", "session.create"}, {"session", "s"}, {"legs", {leg("a", bob), leg("b")}}});
    r->settle();
    ASSERT_TRUE(upd->has_value() && del->has_value() && again->has_value());
    json u = **upd;
    EXPECT_TRUE(u.contains("error")) << "update of the deleted session reported as: " << u.dump();
    json a = **again;
    ASSERT_FALSE(a.contains("error")) << a.dump();
    EXPECT_EQ(a["legs"][0]["remote"], bob.ep());
}

INSTANTIATE_TEST_SUITE_P(Workers, Churn, ::testing::Values(1u, 2u),
                         [](const auto& i) { return std::to_string(i.param) + "w"; });

// ---- failed validation changes nothing ---------------------------------------

struct bad_create {
    const char* what;
    json legs;
    const char* code;
    const char* field; // must appear in the message
    std::string session = "new";
};

void PrintTo(const bad_create& c, std::ostream* os)
{
    *os << c.what;
}

class BadCreate : public RelayTest, public ::testing::WithParamInterface<bad_create> {};

TEST_P(BadCreate, ChangesNothing)
{
    const auto& c = GetParam();
    relay_options o;
    o.nifaces = 2;
    start(o);
    r->learn(alice);
    r->learn(bob);
    auto [pa, pb] = r->two_legs("existing", alice, bob);
    const snapshot before = snap(*r);

    json rep = r->call(
            {{"cmd", "session.create"}, {"session", c.session}, {"legs", c.legs}, {"id", "req-1"}});
    ASSERT_TRUE(rep.contains("error")) << c.what << ": accepted: " << rep.dump();
    EXPECT_EQ(rep["error"]["code"], c.code) << rep.dump();
    EXPECT_NE(rep["error"]["message"].get<std::string>().find(c.field), std::string::npos)
            << c.what << ": message does not name " << c.field << ": " << rep.dump();
    EXPECT_EQ(rep["id"], "req-1");
    r->settle();
    EXPECT_EQ(snap(*r), before) << c.what;
    EXPECT_EQ(r->sm->find("new"), nullptr);

    // The existing session is untouched and a valid create still works.
    const bytes p = rtp(1, 1);
    r->inject(r->from_peer(alice, pa, p));
    r->settle();
    auto out = r->sent_by_workers(0);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], r->expected(bob, pb, p));
    json ok = r->call(
            {{"cmd", "session.create"}, {"session", "new"}, {"legs", {leg("x", alice), leg("y")}}});
    EXPECT_FALSE(ok.contains("error")) << ok.dump();
}

json L(std::initializer_list<json> l)
{
    json a = json::array();
    for (const auto& x : l)
        a.push_back(x);
    return a;
}

INSTANTIATE_TEST_SUITE_P(
        Cases, BadCreate,
        ::testing::Values(
                bad_create{"2nd leg bad remote",
                           L({leg("a", alice), {{"name", "b"}, {"remote", "198.18.0.20:0"}}}),
                           "invalid", "legs[1].remote"},
                bad_create{"2nd leg remote not a string",
                           L({leg("a"), {{"name", "b"}, {"remote", 42}}}), "invalid",
                           "legs[1].remote"},
                bad_create{"2nd leg multicast remote",
                           L({leg("a"), {{"name", "b"}, {"remote", "239.1.1.1:5000"}}}), "invalid",
                           "legs[1].remote"},
                bad_create{"duplicate leg names", L({leg("a", alice), leg("a", bob)}), "invalid",
                           "legs[1].name"},
                bad_create{"unknown target", L({leg("a"), {{"name", "b"}, {"targets", {"zz"}}}}),
                           "invalid", "legs[1].targets"},
                bad_create{"self target", L({{{"name", "a"}, {"targets", {"a"}}}, leg("b")}),
                           "invalid", "legs[0].targets"},
                bad_create{"targets not an array", L({{{"name", "a"}, {"targets", "b"}}, leg("b")}),
                           "invalid", "legs[0].targets"},
                bad_create{"target not a string", L({{{"name", "a"}, {"targets", {1}}}, leg("b")}),
                           "invalid", "legs[0].targets"},
                bad_create{"one leg", L({leg("a")}), "invalid", "legs"},
                bad_create{"no legs", json::array(), "invalid", "legs"},
                bad_create{"257 legs",
                           [] {
                               json l = json::array();
                               for (int i = 0; i < 257; i++)
                                   l.push_back(leg("l" + std::to_string(i)));
                               return l;
                           }(),
                           "invalid", "legs"},
                bad_create{"legs not an array", json::object(), "invalid", "legs"},
                bad_create{"leg not an object", L({leg("a"), "b"}), "invalid", "legs[1]"},
                bad_create{"leg without name", L({leg("a"), {{"remote", bob.ep()}}}), "invalid",
                           "legs[1].name"},
                bad_create{"leg name wrong type", L({leg("a"), {{"name", 5}}}), "invalid",
                           "legs[1].name"},
                bad_create{"leg name bad characters", L({leg("a"), leg("b c")}), "invalid",
                           "legs[1].name"},
                bad_create{"leg name too long", L({leg("a"), leg(std::string(65, 'x'))}), "invalid",
                           "legs[1].name"},
                bad_create{"unknown leg field", L({leg("a"), {{"name", "b"}, {"remot", "x"}}}),
                           "invalid", "legs[1].remot"},
                bad_create{"interface out of range",
                           L({leg("a"), {{"name", "b"}, {"interface", 2u}}}), "invalid",
                           "legs[1].interface"},
                bad_create{"interface negative", L({leg("a"), {{"name", "b"}, {"interface", -1}}}),
                           "invalid", "legs[1].interface"},
                bad_create{"interface 2^32 (must not wrap to 0)",
                           L({leg("a"), {{"name", "b"}, {"interface", 4294967296ull}}}), "invalid",
                           "legs[1].interface"},
                bad_create{"interface as string",
                           L({leg("a"), {{"name", "b"}, {"interface", "1"}}}), "invalid",
                           "legs[1].interface"},
                bad_create{"session id taken", L({leg("a"), leg("b")}), "exists", "session",
                           "existing"},
                bad_create{"session id bad characters", L({leg("a"), leg("b")}), "invalid",
                           "session", "a/b"},
                bad_create{"session id empty", L({leg("a"), leg("b")}), "invalid", "session", ""}),
        [](const auto& i) { return "case" + std::to_string(i.index); });

TEST_F(RelayTest, PoolExhaustionIsReportedAndRecovers)
{
    relay_options o;
    o.port_min = 30000;
    o.port_max = 30004; // 5 ports: two sessions of two legs, then one left
    start(o);
    r->learn(alice);
    r->learn(bob);
    r->two_legs("s1", alice, bob);
    r->two_legs("s2", alice, bob);
    const snapshot before = snap(*r);
    json rep = r->call({{"cmd", "session.create"},
                        {"session", "s3"},
                        {"legs", {leg("a", alice), leg("b", bob)}}});
    EXPECT_EQ(rep["error"]["code"], "exhausted") << rep.dump();
    EXPECT_NE(rep["error"]["message"].get<std::string>().find("30000-30004"), std::string::npos);
    r->settle();
    EXPECT_EQ(snap(*r), before) << "the one free port was not consumed";
    EXPECT_EQ(r->sm->pool(0).free_total(), 1u);

    json d = r->call({{"cmd", "session.delete"}, {"session", "s1"}});
    ASSERT_EQ(d["deleted"], true);
    rep = r->call({{"cmd", "session.create"},
                   {"session", "s3"},
                   {"legs", {leg("a", alice), leg("b", bob)}}});
    EXPECT_FALSE(rep.contains("error")) << rep.dump();
}

TEST_F(RelayTest, FullCommandRingIsBusyAndChangesNothing)
{
    relay_options o;
    o.ring_size = 64; // the command ring holds 63
    start(o);
    std::vector<std::shared_ptr<std::optional<json>>> reps;
    for (int i = 0; i < 70; i++)
        reps.push_back(r->start({{"cmd", "session.create"},
                                 {"session", "b" + std::to_string(i)},
                                 {"legs", {leg("a"), leg("b")}}}));
    unsigned busy = 0;
    for (auto& x : reps) {
        if (x->has_value()) { // answered at once: refused
            json j = **x;
            EXPECT_EQ(j["error"]["code"], "busy") << j.dump();
            EXPECT_NE(j["error"]["message"].get<std::string>().find("retry"), std::string::npos);
            busy++;
        }
    }
    EXPECT_EQ(busy, 7u);
    EXPECT_EQ(r->sm->sessions().size(), 63u);
    EXPECT_EQ(r->sm->pool(0).free_total(), 200u - 126u) << "refused creates hold no port";
    EXPECT_EQ(r->sm->leg_count(), 126u);
    r->settle();
    for (auto& x : reps)
        ASSERT_TRUE(x->has_value());
    EXPECT_EQ(r->sm->stats().created, 63u);
    EXPECT_EQ(r->sm->stats().failed, 0u);
}

TEST_F(RelayTest, SessionsSpreadOverWorkersAndPortsFollowOwner)
{
    relay_options o;
    o.nworkers = 2;
    start(o);
    std::vector<unsigned> per(2, 0);
    for (int i = 0; i < 10; i++) {
        const std::string id = "w" + std::to_string(i);
        json rep = r->call({{"cmd", "session.create"},
                            {"session", id},
                            {"legs", {leg("a"), leg("b"), leg("c")}}});
        ASSERT_FALSE(rep.contains("error")) << rep.dump();
        json g = r->call({{"cmd", "session.get"}, {"session", id}});
        const unsigned w = g["worker"];
        per[w]++;
        for (const auto& l : rep["legs"]) {
            std::string err;
            auto ep = ctl::parse_endpoint(l["local"].get<std::string>(), err);
            ASSERT_TRUE(ep);
            EXPECT_EQ(dp::owner_of_port(ep->port, 2), w) << "leg port not owned by the worker";
        }
    }
    EXPECT_EQ(per[0], 5u);
    EXPECT_EQ(per[1], 5u);
}
