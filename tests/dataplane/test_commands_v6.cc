// The control protocol with dual-stack interfaces (control/commands.cc,
// session_manager): legs with IPv6 remotes or family=6 get an IPv6 relay
// address, sessions mix families, a leg keeps its family, errors name their
// field, each address slot has its own port pool (more addresses, more
// legs), and public_address is what `local` reports.
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"

#include <gtest/gtest.h>
#include <set>

ISAR_TEST_EAL_ENV("test_commands_v6");

using namespace isar;
using namespace isar::test;

namespace {

dp::addr_config v6(const char* a, uint8_t len = 64)
{
    dp::addr_config c;
    c.family = 6;
    c.ip6 = ctl::to_dp6(*ctl::parse_ipv6(a));
    c.prefix_len = len;
    return c;
}

dp::addr_config v4(uint32_t host, uint8_t len = 24)
{
    dp::addr_config c;
    c.family = 4;
    c.ip_be = rte_cpu_to_be_32(host);
    c.prefix_len = len;
    return c;
}

class CommandsV6 : public RelayTest {
protected:
    // Interface 0: 198.18.0.1/24 (the fixture's) and 2001:2::1/64.
    void start_dual(unsigned nworkers = 1, uint16_t port_max = 30199)
    {
        relay_options o;
        o.nworkers = nworkers;
        o.port_max = port_max;
        o.tweak = [](dp::dp_config& dc) { dc.ifaces[0].addrs.push_back(v6("2001:2::1")); };
        start(o);
        ASSERT_TRUE(r->ok()) << r->error();
    }
    void expect_error(const json& req, const std::string& code, const std::string& field,
                      const std::string& says = "")
    {
        json rep = r->call(req);
        ASSERT_TRUE(rep.contains("error")) << req.dump() << " -> " << rep.dump();
        EXPECT_EQ(rep["error"]["code"], code) << rep.dump();
        const std::string msg = rep["error"]["message"].get<std::string>();
        EXPECT_EQ(msg.rfind(field + ":", 0), 0u) << "should start with " << field << ": " << msg;
        EXPECT_NE(msg.find(says), std::string::npos) << msg;
    }
    json create(const std::string& id, const json& legs)
    {
        return r->call({{"cmd", "session.create"}, {"session", id}, {"legs", legs}});
    }
    json get(const std::string& id) { return r->call({{"cmd", "session.get"}, {"session", id}}); }
};

} // namespace

TEST_F(CommandsV6, Ipv6RemoteGetsAnIpv6RelayAddress)
{
    start_dual();
    json rep = create("s", {{{"name", "a"}, {"remote", "[2001:2::2]:4000"}},
                            {{"name", "b"}, {"remote", alice.ep()}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    const json& a = rep["legs"][0];
    const json& b = rep["legs"][1];
    EXPECT_EQ(a["family"], 6);
    EXPECT_EQ(a["remote"], "[2001:2::2]:4000");
    std::string err;
    auto la = ctl::parse_endpoint_any(a["local"].get<std::string>(), err);
    ASSERT_TRUE(la) << a.dump() << " " << err;
    EXPECT_EQ(ctl::format_ip(la->addr()), "2001:2::1");
    EXPECT_GE(la->port, 30000);
    EXPECT_EQ(b["family"], 4);
    EXPECT_EQ(b["remote"], alice.ep());
    EXPECT_EQ(b["local"].get<std::string>().rfind("198.18.0.1:", 0), 0u) << b.dump();

    json s = get("s");
    ASSERT_FALSE(s.contains("error")) << s.dump();
    EXPECT_EQ(s["legs"][0]["family"], 6);
    EXPECT_EQ(s["legs"][0]["laddr"], 1); // the interface's second slot
    EXPECT_EQ(s["legs"][0]["remote"], "[2001:2::2]:4000");
    EXPECT_EQ(s["legs"][0]["local"], a["local"]);
    EXPECT_EQ(s["legs"][1]["family"], 4);
    EXPECT_EQ(s["legs"][1]["laddr"], 0);
    // The dataplane holds the whole address next to the packed one.
    const dp::leg& l = r->sm->find("s")->ds->legs[0];
    EXPECT_TRUE(dp::ep_is_v6(l.remote.load()));
    EXPECT_EQ(ctl::format_ipv6(ctl::from_dp6(l.remote6)), "2001:2::2");
    EXPECT_EQ(l.family, 6);
}

TEST_F(CommandsV6, FamilySixWithoutRemoteAndUpdate)
{
    start_dual();
    json rep = create("s", {{{"name", "a"}, {"family", 6}}, {{"name", "b"}, {"family", 4}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    EXPECT_EQ(rep["legs"][0]["family"], 6);
    EXPECT_TRUE(rep["legs"][0]["remote"].is_null());
    EXPECT_EQ(rep["legs"][0]["local"].get<std::string>().rfind("[2001:2::1]:", 0), 0u);
    EXPECT_EQ(rep["legs"][1]["family"], 4);

    // Long forms come back canonical (RFC 5952).
    rep = r->call({{"cmd", "leg.update"},
                   {"session", "s"},
                   {"leg", "a"},
                   {"remote", "[2001:0002:0:0::0003]:4002"}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    EXPECT_EQ(rep["legs"][0]["remote"], "[2001:2::3]:4002");
    EXPECT_FALSE(rep["legs"][0]["latched"]);
    // A leg keeps its family.
    expect_error({{"cmd", "leg.update"}, {"session", "s"}, {"leg", "a"}, {"remote", alice.ep()}},
                 "invalid", "remote", "the leg is IPv6");
    expect_error({{"cmd", "leg.update"},
                  {"session", "s"},
                  {"leg", "b"},
                  {"remote", "[2001:2::3]:4002"}},
                 "invalid", "remote", "the leg is IPv4");
    // Cleared: it latches again, still IPv6.
    rep = r->call({{"cmd", "leg.update"}, {"session", "s"}, {"leg", "a"}, {"remote", nullptr}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    EXPECT_TRUE(rep["legs"][0]["remote"].is_null());
    EXPECT_EQ(rep["legs"][0]["family"], 6);
    EXPECT_EQ(r->sm->find("s")->ds->legs[0].remote.load(), 0u);
}

TEST_F(CommandsV6, ErrorsNameTheField)
{
    start_dual();
    const json ok_b = {{"name", "b"}};
    expect_error({{"cmd", "session.create"},
                  {"session", "e"},
                  {"legs", {{{"name", "a"}, {"remote", "[2001:2::2]:4000"}, {"family", 4}}, ok_b}}},
                 "invalid", "legs[0].family", "remote is an IPv6");
    expect_error({{"cmd", "session.create"},
                  {"session", "e"},
                  {"legs", {ok_b, {{"name", "a"}, {"family", 5}}}}},
                 "invalid", "legs[1].family", "4 or 6");
    expect_error({{"cmd", "session.create"},
                  {"session", "e"},
                  {"legs", {{{"name", "a"}, {"family", "6"}}, ok_b}}},
                 "invalid", "legs[0].family");
    expect_error({{"cmd", "session.create"},
                  {"session", "e"},
                  {"legs", {{{"name", "a"}, {"remote", "[2001:2::2]"}}, ok_b}}},
                 "invalid", "legs[0].remote", "[IPv6]:PORT");
    expect_error({{"cmd", "session.create"},
                  {"session", "e"},
                  {"legs", {{{"name", "a"}, {"remote", "[ff02::1]:4000"}}, ok_b}}},
                 "invalid", "legs[0].remote", "not a unicast");
    expect_error({{"cmd", "session.create"},
                  {"session", "e"},
                  {"legs", {{{"name", "a"}, {"family", 6}, {"latch_from", "198.18.0.0/24"}}, ok_b}}},
                 "invalid", "legs[0].latch_from", "leg is IPv6");
    expect_error({{"cmd", "session.create"},
                  {"session", "e"},
                  {"legs", {{{"name", "a"}, {"latch_from", "2001:2::/48"}}, ok_b}}},
                 "invalid", "legs[0].latch_from", "IPv6 networks");
    // Nothing was made and no port consumed.
    EXPECT_EQ(r->sm->sessions().size(), 0u);
    EXPECT_EQ(r->sm->pool(0).free_total(), 200u);
    EXPECT_EQ(r->sm->pool(1).free_total(), 200u);
}

TEST_F(CommandsV6, FamilyTheInterfaceLacksIsRefused)
{
    start(); // the fixture's interface: IPv4 only
    expect_error({{"cmd", "session.create"},
                  {"session", "e"},
                  {"legs", {{{"name", "a"}, {"remote", "[2001:2::2]:4000"}}, {{"name", "b"}}}}},
                 "invalid", "legs[0].remote", "interface 0 has no IPv6 address");
    expect_error({{"cmd", "session.create"},
                  {"session", "e"},
                  {"legs", {{{"name", "a"}}, {{"name", "b"}, {"family", 6}}}}},
                 "invalid", "legs[1].family", "interface 0 has no IPv6 address");
}

TEST_F(CommandsV6, Ipv6OnlyInterface)
{
    relay_options o;
    o.tweak = [](dp::dp_config& dc) { dc.ifaces[0].addrs = {v6("2001:2::1")}; };
    start(o);
    ASSERT_TRUE(r->ok()) << r->error();
    // A leg without remote or family is IPv4: refused here.
    expect_error({{"cmd", "session.create"},
                  {"session", "e"},
                  {"legs", {{{"name", "a"}, {"family", 6}}, {{"name", "b"}}}}},
                 "invalid", "legs[1].family", "no IPv4 address");
    json rep = create("s", {{{"name", "a"}, {"family", 6}},
                            {{"name", "b"}, {"remote", "[2001:2::9]:5000"}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    EXPECT_EQ(rep["legs"][1]["local"].get<std::string>().rfind("[2001:2::1]:", 0), 0u);
    json st = r->call({{"cmd", "stats"}});
    ASSERT_EQ(st["relay_ports"].size(), 1u);
    EXPECT_EQ(st["relay_ports"][0]["address"], "2001:2::1");
    EXPECT_EQ(st["relay_ports"][0]["family"], 6);
}

TEST_F(CommandsV6, OneAddressTwoPortsOneSession)
{
    relay_options o;
    o.port_max = 30001;
    start(o);
    const json legs = {{{"name", "a"}}, {{"name", "b"}}};
    ASSERT_FALSE(create("s1", legs).contains("error"));
    EXPECT_EQ(create("s2", legs)["error"]["code"], "exhausted");
}

TEST_F(CommandsV6, MoreAddressesGiveMoreLegs)
{
    // Two ports per address: one two-leg session per IPv4 address (see
    // OneAddressTwoPortsOneSession).
    relay_options o;
    o.port_max = 30001;
    o.tweak = [](dp::dp_config& dc) { dc.ifaces[0].addrs.push_back(v4(0xc6120004)); };
    start(o);
    const json legs = {{{"name", "a"}}, {{"name", "b"}}};
    json rep = create("s1", legs);
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    rep = create("s2", legs);
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    std::set<std::string> locals;
    for (const char* id : {"s1", "s2"}) {
        const json s = get(id);
        ASSERT_FALSE(s.contains("error")) << s.dump();
        for (auto& l : s["legs"])
            locals.insert(l["local"].get<std::string>());
    }
    EXPECT_EQ(locals.size(), 4u) << "four distinct relay addresses";
    std::set<std::string> addrs;
    for (auto& ep : locals)
        addrs.insert(ep.substr(0, ep.find(':')));
    EXPECT_EQ(addrs, (std::set<std::string>{"198.18.0.1", "198.18.0.4"}));
    json st = r->call({{"cmd", "stats"}});
    ASSERT_EQ(st["relay_ports"].size(), 2u);
    EXPECT_EQ(st["relay_ports"][0]["address"], "198.18.0.1");
    EXPECT_EQ(st["relay_ports"][1]["address"], "198.18.0.4");
    EXPECT_EQ(st["relay_ports"][0]["free"], 0);
    EXPECT_EQ(st["relay_ports"][1]["free"], 0);
    EXPECT_EQ(create("s3", legs)["error"]["code"], "exhausted");
    // Deleting gives the ports back to their own slot's pool.
    ASSERT_FALSE(r->call({{"cmd", "session.delete"}, {"session", "s1"}}).contains("error"));
    EXPECT_EQ(r->sm->pool(0).free_total() + r->sm->pool(1).free_total(), 2u);
    ASSERT_FALSE(create("s3", legs).contains("error"));
}

TEST_F(CommandsV6, PublicAddressIsReportedAsLocal)
{
    start_dual();
    // 1:1 NAT in front of both addresses; session_manager reads the config
    // when it reports.
    r->cfg.interfaces[0].public_addrs = {*ctl::parse_ip("198.18.200.7"),
                                         *ctl::parse_ip("2001:2:0:ff::7")};
    json rep = create("s", {{{"name", "a"}, {"family", 6}}, {{"name", "b"}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    EXPECT_EQ(rep["legs"][0]["local"].get<std::string>().rfind("[2001:2:0:ff::7]:", 0), 0u)
            << rep.dump();
    EXPECT_EQ(rep["legs"][1]["local"].get<std::string>().rfind("198.18.200.7:", 0), 0u)
            << rep.dump();
    EXPECT_EQ(ctl::format_ip(r->sm->public_of(0)), "198.18.200.7");
    EXPECT_EQ(ctl::format_ip(r->sm->public_of(1)), "2001:2:0:ff::7");
    EXPECT_EQ(ctl::format_ip(r->sm->address_of(1)), "2001:2::1");
    // Without it, the slot's own address.
    r->cfg.interfaces[0].public_addrs.clear();
    EXPECT_EQ(ctl::format_ip(r->sm->public_of(1)), "2001:2::1");
    EXPECT_EQ(get("s")["legs"][1]["local"].get<std::string>().rfind("198.18.0.1:", 0), 0u);
}

TEST_F(CommandsV6, StatsShowNeighbourTables)
{
    start_dual();
    json st = r->call({{"cmd", "stats"}});
    ASSERT_TRUE(st.contains("neighbors")) << st.dump();
    const json& n = st["neighbors"];
    for (const char* k : {"arp_in", "nd_in", "nd_ns_answered", "nd_ns_sent", "icmp6_echo_replies",
                          "probes", "expired", "moved", "full"})
        EXPECT_TRUE(n.contains(k)) << k;
    ASSERT_EQ(n["tables"].size(), 2u); // interface 0: IPv4 and IPv6
    EXPECT_EQ(n["tables"][0]["family"], 4);
    EXPECT_EQ(n["tables"][1]["family"], 6);
    EXPECT_EQ(n["tables"][0]["capacity"], 4096);
    const uint64_t before4 = n["tables"][0]["entries"].get<uint64_t>();
    const uint64_t before6 = n["tables"][1]["entries"].get<uint64_t>();
    r->learn(bob);
    st = r->call({{"cmd", "stats"}});
    EXPECT_EQ(st["neighbors"]["tables"][0]["entries"].get<uint64_t>(), before4 + 1);
    EXPECT_EQ(st["neighbors"]["tables"][1]["entries"].get<uint64_t>(), before6);
}
