// The control protocol (control/commands.cc) as the socket sees it: every
// error names its field, unknown fields are rejected, replies echo "id",
// and the stats document has the documented shape.
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"

#include <cstring>
#include <gtest/gtest.h>
#include <rte_cycles.h>
#include <set>

ISAR_TEST_EAL_ENV("test_commands");

using namespace isar;
using namespace isar::test;

namespace {

class Commands : public RelayTest {
protected:
    void SetUp() override
    {
        relay_options o;
        o.nworkers = 2;
        start(o);
    }
    // A request whose reply must be an error with `code` naming `field`.
    void expect_error(const json& req, const std::string& code, const std::string& field)
    {
        json rep = r->call(req);
        ASSERT_TRUE(rep.contains("error")) << req.dump() << " -> " << rep.dump();
        EXPECT_EQ(rep["error"]["code"], code) << req.dump() << " -> " << rep.dump();
        const std::string msg = rep["error"]["message"].get<std::string>();
        EXPECT_EQ(msg.rfind(field + ":", 0), 0u)
                << req.dump() << ": message should start with \"" << field << ":\": " << msg;
    }
    json line(const std::string& text)
    {
        auto slot = std::make_shared<std::optional<json>>();
        r->cmds->handle_line(text, [slot](const json& j) { *slot = j; });
        for (int i = 0; i < 100 && !slot->has_value(); i++)
            r->poll();
        EXPECT_TRUE(slot->has_value());
        return slot->value_or(json());
    }
    void create(const std::string& id)
    {
        json rep = r->call({{"cmd", "session.create"},
                            {"session", id},
                            {"legs", {{{"name", "a"}, {"remote", alice.ep()}}, {{"name", "b"}}}}});
        ASSERT_FALSE(rep.contains("error")) << rep.dump();
    }
};

} // namespace

TEST_F(Commands, Ping)
{
    json rep = r->call({{"cmd", "ping"}});
    EXPECT_EQ(rep, json({{"pong", true}, {"version", "0.1.0"}, {"workers", 2}}));
}

TEST_F(Commands, RepliesCarryTheCallersId)
{
    for (const json& id : {json(1), json("abc"), json(0), json(-5), json({{"k", 1}}),
                           json::array({1, 2}), json(2.5)}) {
        json rep = r->call({{"cmd", "ping"}, {"id", id}});
        EXPECT_EQ(rep["id"], id);
        // Errors too.
        rep = r->call({{"cmd", "nope"}, {"id", id}});
        EXPECT_EQ(rep["id"], id);
        rep = r->call({{"cmd", "session.get"}, {"id", id}, {"session", "none"}});
        EXPECT_EQ(rep["id"], id);
        EXPECT_EQ(rep["error"]["code"], "not_found");
    }
    // Without an id, none is added; a null id is treated as none.
    EXPECT_FALSE(r->call({{"cmd", "ping"}}).contains("id"));
    EXPECT_FALSE(r->call({{"cmd", "ping"}, {"id", nullptr}}).contains("id"));
    // Asynchronous replies (after the worker's ack) carry it as well.
    json rep = r->call({{"cmd", "session.create"},
                        {"id", "c-1"},
                        {"session", "s"},
                        {"legs", {{{"name", "a"}}, {{"name", "b"}}}}});
    EXPECT_EQ(rep["id"], "c-1");
    rep = r->call({{"cmd", "leg.update"},
                   {"id", "u-1"},
                   {"session", "s"},
                   {"leg", "a"},
                   {"remote", alice.ep()}});
    EXPECT_EQ(rep["id"], "u-1");
    rep = r->call({{"cmd", "session.delete"}, {"id", "d-1"}, {"session", "s"}});
    EXPECT_EQ(rep["id"], "d-1");
}

TEST_F(Commands, RequestShapeErrors)
{
    expect_error(json::array({1}), "invalid", "request");
    expect_error(json("ping"), "invalid", "request");
    expect_error(json::object(), "invalid", "cmd");
    expect_error({{"cmd", 5}}, "invalid", "cmd");
    expect_error({{"cmd", "session.explode"}}, "unknown_command", "cmd");
    expect_error({{"CMD", "ping"}}, "invalid", "cmd");
}

TEST_F(Commands, InvalidJsonLine)
{
    json rep = line("{\"cmd\": \"ping\"");
    EXPECT_EQ(rep["error"]["code"], "parse");
    rep = line("");
    EXPECT_EQ(rep["error"]["code"], "parse");
    rep = line("{\"cmd\": \"ping\", \"id\": 3}");
    EXPECT_EQ(rep["pong"], true);
    EXPECT_EQ(rep["id"], 3);
}

TEST_F(Commands, UnknownFieldsRejectedEverywhere)
{
    create("s");
    expect_error({{"cmd", "ping"}, {"verbose", true}}, "invalid", "verbose");
    expect_error({{"cmd", "stats"}, {"worker", 0}}, "invalid", "worker");
    expect_error({{"cmd", "session.list"}, {"filter", "x"}}, "invalid", "filter");
    expect_error({{"cmd", "session.get"}, {"session", "s"}, {"legs", true}}, "invalid", "legs");
    expect_error({{"cmd", "session.delete"}, {"session", "s"}, {"force", true}}, "invalid",
                 "force");
    expect_error({{"cmd", "leg.update"},
                  {"session", "s"},
                  {"leg", "a"},
                  {"remote", nullptr},
                  {"latch", true}},
                 "invalid", "latch");
    expect_error({{"cmd", "session.create"},
                  {"session", "t"},
                  {"legs", {{{"name", "a"}}, {{"name", "b"}}}},
                  {"codec", "opus"}},
                 "invalid", "codec");
    expect_error({{"cmd", "session.create"},
                  {"session", "t"},
                  {"legs", {{{"name", "a"}}, {{"name", "b"}, {"srtp", {}}}}}},
                 "invalid", "legs[1].srtp");
    // None of them changed anything.
    EXPECT_EQ(r->sm->sessions().size(), 1u);
    ASSERT_NE(r->sm->find("s"), nullptr);
    EXPECT_FALSE(r->sm->find("s")->remote_configured[0] == false);
}

TEST_F(Commands, FieldErrorsNameTheField)
{
    create("s");
    expect_error({{"cmd", "session.create"}, {"legs", json::array()}}, "invalid", "session");
    expect_error({{"cmd", "session.create"}, {"session", 1}, {"legs", json::array()}}, "invalid",
                 "session");
    expect_error({{"cmd", "session.create"}, {"session", "t"}}, "invalid", "legs");
    expect_error({{"cmd", "session.get"}}, "invalid", "session");
    expect_error({{"cmd", "session.get"}, {"session", nullptr}}, "invalid", "session");
    expect_error({{"cmd", "session.get"}, {"session", "zz"}}, "not_found", "session");
    expect_error({{"cmd", "session.delete"}}, "invalid", "session");
    expect_error({{"cmd", "session.delete"}, {"session", "zz"}}, "not_found", "session");
    expect_error({{"cmd", "leg.update"}, {"leg", "a"}, {"remote", nullptr}}, "invalid", "session");
    expect_error({{"cmd", "leg.update"}, {"session", "s"}, {"remote", nullptr}}, "invalid", "leg");
    expect_error({{"cmd", "leg.update"}, {"session", "s"}, {"leg", "a"}}, "invalid", "remote");
    expect_error({{"cmd", "leg.update"}, {"session", "s"}, {"leg", "a"}, {"remote", 5}}, "invalid",
                 "remote");
    expect_error({{"cmd", "leg.update"}, {"session", "s"}, {"leg", "a"}, {"remote", "1.2.3.4"}},
                 "invalid", "remote");
    expect_error(
            {{"cmd", "leg.update"}, {"session", "s"}, {"leg", "a"}, {"remote", "1.2.3.4:70000"}},
            "invalid", "remote");
    expect_error({{"cmd", "leg.update"}, {"session", "zz"}, {"leg", "a"}, {"remote", nullptr}},
                 "not_found", "session");
    expect_error({{"cmd", "leg.update"}, {"session", "s"}, {"leg", "zz"}, {"remote", nullptr}},
                 "not_found", "leg");
    // The failed updates left the configured remote alone.
    json g = r->call({{"cmd", "session.get"}, {"session", "s"}});
    EXPECT_EQ(g["legs"][0]["remote"], alice.ep());
}

TEST_F(Commands, SessionGetAndList)
{
    create("s1");
    create("s2");
    json g = r->call({{"cmd", "session.get"}, {"session", "s1"}});
    EXPECT_EQ(g["session"], "s1");
    EXPECT_EQ(g["state"], "active");
    EXPECT_TRUE(g["worker"].is_number_unsigned());
    EXPECT_TRUE(g["age_s"].is_number());
    EXPECT_TRUE(g["idle_s"].is_number());
    ASSERT_EQ(g["legs"].size(), 2u);
    const json& a = g["legs"][0];
    for (const char* k : {"name", "local", "remote", "latched", "interface", "targets", "in", "out",
                          "last_packet_s", "drops"})
        EXPECT_TRUE(a.contains(k)) << k;
    EXPECT_EQ(a["name"], "a");
    EXPECT_EQ(a["remote"], alice.ep());
    EXPECT_EQ(a["latched"], false);
    EXPECT_EQ(a["targets"], json::array({"b"}));
    EXPECT_TRUE(a["last_packet_s"].is_null());
    EXPECT_EQ(a["in"], json({{"packets", 0}, {"bytes", 0}}));
    EXPECT_TRUE(g["legs"][1]["remote"].is_null());

    json l = r->call({{"cmd", "session.list"}});
    ASSERT_EQ(l["sessions"].size(), 2u);
    EXPECT_EQ(l["sessions"][0]["session"], "s1");
    EXPECT_EQ(l["sessions"][1]["session"], "s2");
    EXPECT_EQ(l["sessions"][0]["legs"], 2);
    EXPECT_EQ(l["sessions"][0]["packets"], 0);
}

TEST_F(Commands, StatsShape)
{
    create("s");
    r->learn(alice);
    r->learn(bob);
    // Some traffic and a drop so that the numbers are not all zero.
    r->inject(r->from_peer(
            bob,
            relay::local_port(
                    r->call({{"cmd", "session.create"},
                             {"session", "t"},
                             {"legs", {{{"name", "a"}, {"remote", alice.ep()}}, {{"name", "b"}}}}}),
                    "b"),
            rtp(1, 1)));
    r->inject(r->from_peer(bob, 30150, rtp(1, 1)));
    r->settle();
    r->sent_by_workers(0);
    r->call({{"cmd", "nope"}});

    json s = r->call({{"cmd", "stats"}, {"id", 9}});
    ASSERT_TRUE(s["workers"].is_array());
    ASSERT_EQ(s["workers"].size(), 2u);
    const char* wkeys[] = {"worker",      "rx_pkts",    "rx_bytes",       "tx_pkts",
                           "tx_bytes",    "fwd_pkts",   "exception_pkts", "held_pkts",
                           "handoff_out", "handoff_in", "cmds_applied",   "loops",
                           "busy_loops",  "drops"};
    for (unsigned w = 0; w < 2; w++) {
        EXPECT_EQ(s["workers"][w]["worker"], w);
        for (const char* k : wkeys)
            EXPECT_TRUE(s["workers"][w].contains(k)) << k;
        EXPECT_TRUE(s["workers"][w]["drops"].is_object());
    }
    for (const char* k : wkeys) {
        if (std::string(k) != "worker") {
            EXPECT_TRUE(s["total"].contains(k)) << k;
        }
    }
    // Totals are the sums.
    EXPECT_EQ(s["total"]["rx_pkts"], 2);
    EXPECT_EQ(s["total"]["fwd_pkts"], 1);
    EXPECT_EQ(s["total"]["tx_pkts"], 1);
    EXPECT_EQ(s["total"]["cmds_applied"], s["workers"][0]["cmds_applied"].get<uint64_t>() +
                                                  s["workers"][1]["cmds_applied"].get<uint64_t>());
    EXPECT_EQ(s["total"]["cmds_applied"], 2);
    EXPECT_EQ(s["total"]["drops"], json({{"no_flow", 1}}));
    // Every drop name is a known counter.
    for (auto& [k, v] : s["total"]["drops"].items()) {
        bool known = false;
        for (unsigned i = 0; i < dp::n_drops; i++)
            known = known || k == dp::drop_name(static_cast<dp::drop>(i));
        EXPECT_TRUE(known) << k;
    }
    EXPECT_EQ(s["sessions"], json({{"active", 2},
                                   {"legs", 4},
                                   {"created", 2},
                                   {"deleted", 0},
                                   {"expired", 0},
                                   {"failed", 0}}));
    for (const char* k : {"arp_in", "arp_replies", "arp_requests", "arp_learned", "arp_bad",
                          "icmp_in", "icmp_echo_replies", "icmp_other", "held", "held_sent",
                          "held_dropped", "stun", "dtls", "tx_failed"})
        EXPECT_TRUE(s["exception"].contains(k)) << k;
    EXPECT_EQ(s["control"]["errors"], 1);
    EXPECT_GE(s["control"]["requests"], 4);
    EXPECT_TRUE(s["mbufs_in_use"].is_number_unsigned());
    EXPECT_EQ(s["id"], 9);
}

TEST_F(Commands, DropNamesAreUniqueAndDescribed)
{
    std::set<std::string> names;
    for (unsigned i = 0; i < dp::n_drops; i++) {
        const auto d = static_cast<dp::drop>(i);
        EXPECT_TRUE(names.insert(dp::drop_name(d)).second) << dp::drop_name(d);
        EXPECT_GT(strlen(dp::drop_help(d)), 10u);
    }
    EXPECT_STREQ(dp::drop_name(dp::drop::count), "unknown");
}

TEST_F(Commands, TrafficKeepsASessionAlive)
{
    r->learn(alice);
    r->learn(bob);
    json rep = r->call(
            {{"cmd", "session.create"},
             {"session", "busy"},
             {"legs",
              {{{"name", "a"}, {"remote", alice.ep()}}, {{"name", "b"}, {"remote", bob.ep()}}}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    const uint64_t hz = rte_get_tsc_hz();
    const auto* s = r->sm->find("busy");
    ASSERT_NE(s, nullptr);
    const uint64_t created = s->created_tsc;
    // A packet 50 ms after creation.
    while (rte_rdtsc() - created < hz / 20)
        ;
    r->inject(r->from_peer(alice, relay::local_port(rep, "a"), rtp(1, 1)));
    r->settle();
    r->sent_by_workers(0);
    // Timeout + 25 ms after creation is only timeout - 25 ms after the packet.
    const uint64_t now = created + r->cfg.idle_timeout_s * hz + hz / 40;
    EXPECT_LT(r->sm->idle_seconds(*s, now), r->cfg.idle_timeout_s);
    EXPECT_EQ(r->sm->expire_idle(now), 0u);
    EXPECT_EQ(r->sm->expire_idle(now + hz), 1u);
    r->settle();
    EXPECT_EQ(r->sm->find("busy"), nullptr);
}

TEST_F(Commands, ExpireIdleDeletesOldSessions)
{
    create("old");
    const auto* s = r->sm->find("old");
    ASSERT_NE(s, nullptr);
    const uint64_t later = s->created_tsc + (r->cfg.idle_timeout_s + 1) * rte_get_tsc_hz();
    EXPECT_EQ(r->sm->expire_idle(s->created_tsc + rte_get_tsc_hz()), 0u);
    EXPECT_EQ(r->sm->expire_idle(later), 1u);
    r->settle();
    EXPECT_EQ(r->sm->find("old"), nullptr);
    EXPECT_EQ(r->sm->stats().expired, 1u);
    EXPECT_EQ(r->sm->pool(0).free_total(), 200u);
}
