// control/config.cc, dual stack: address and gateway lists of both
// families, public_address, nd_pps and neighbors; old single-string configs
// mean what they meant; every bad input names its key; --print-config
// round-trips the lists.
#include "control/config.h"

#include <gtest/gtest.h>
#include <string>

using namespace isar::ctl;

namespace {

std::optional<config> parse(const std::string& text)
{
    std::string err;
    auto c = parse_config(text, err);
    EXPECT_TRUE(c) << err << "\n" << text;
    return c;
}

ip_addr ip(const char* s)
{
    return *parse_ip(s);
}

const std::string dual = R"(
[[interface]]
port = 0
address = ["198.18.0.1/24", "198.18.0.4/24", "2001:2::1/64"]
gateway = ["198.18.0.254", "2001:2::fe"]
public_address = ["2001:2:0:ff::7"]

[[interface]]
port = 1
address = ["2001:2:0:1::1/64", "198.19.0.1/24"]
gateway = "fe80::1"
public_address = ["198.18.200.7", "2001:2:0:ff::8"]
)";

} // namespace

TEST(ConfigV6, AddressListOfBothFamilies)
{
    auto c = parse(dual);
    ASSERT_TRUE(c);
    const interface_config& a = c->interfaces[0];
    ASSERT_EQ(a.addrs.size(), 3u);
    EXPECT_EQ(a.addrs[0], (ip_prefix{ip("198.18.0.1"), 24}));
    EXPECT_EQ(a.addrs[1], (ip_prefix{ip("198.18.0.4"), 24}));
    EXPECT_EQ(a.addrs[2], (ip_prefix{ip("2001:2::1"), 64}));
    // The old fields: the first IPv4 address and the IPv4 gateway.
    EXPECT_EQ(a.address, 0xc6120001u);
    EXPECT_EQ(a.prefix_len, 24);
    EXPECT_EQ(a.gateway, 0xc61200feu);
    ASSERT_TRUE(a.gateway6);
    EXPECT_EQ(*a.gateway6, ip("2001:2::fe"));
    ASSERT_EQ(a.public_addrs.size(), 1u);
    EXPECT_EQ(a.public_addrs[0], ip("2001:2:0:ff::7"));

    const interface_config& b = c->interfaces[1];
    ASSERT_EQ(b.addrs.size(), 2u);
    EXPECT_EQ(b.address, 0xc6130001u); // first IPv4, though second in the list
    EXPECT_EQ(b.gateway, 0u);
    ASSERT_TRUE(b.gateway6);
    EXPECT_EQ(*b.gateway6, ip("fe80::1")); // link-local router: accepted
}

TEST(ConfigV6, SlotsAreNumberedOverAllInterfaces)
{
    auto c = parse(dual);
    ASSERT_TRUE(c);
    auto s = address_slots(*c);
    ASSERT_EQ(s.size(), 5u);
    EXPECT_EQ(s[0].iface, 0u);
    EXPECT_EQ(s[2].iface, 0u);
    EXPECT_EQ(s[3].iface, 1u);
    EXPECT_EQ(s[3].addr.addr, ip("2001:2:0:1::1"));
    EXPECT_EQ(s[4].addr.addr, ip("198.19.0.1"));
    EXPECT_FALSE(s[0].public_addr); // interface 0 has no public IPv4
    ASSERT_TRUE(s[2].public_addr);
    EXPECT_EQ(*s[2].public_addr, ip("2001:2:0:ff::7"));
    ASSERT_TRUE(s[3].public_addr);
    EXPECT_EQ(*s[3].public_addr, ip("2001:2:0:ff::8"));
    ASSERT_TRUE(s[4].public_addr);
    EXPECT_EQ(*s[4].public_addr, ip("198.18.200.7"));
}

TEST(ConfigV6, OldSingleStringFormIsOneSlot)
{
    auto c = parse("[[interface]]\nport = 0\naddress = \"198.18.0.1/24\"\ngateway = "
                   "\"198.18.0.254\"\n");
    ASSERT_TRUE(c);
    ASSERT_EQ(c->interfaces[0].addrs.size(), 1u);
    EXPECT_EQ(c->interfaces[0].addrs[0], (ip_prefix{ip("198.18.0.1"), 24}));
    EXPECT_EQ(c->interfaces[0].gateway, 0xc61200feu);
    EXPECT_FALSE(c->interfaces[0].gateway6);
    EXPECT_EQ(address_slots(*c).size(), 1u);
    // A one-element list means the same.
    auto l = parse("[[interface]]\nport = 0\naddress = [\"198.18.0.1/24\"]\n");
    ASSERT_TRUE(l);
    EXPECT_EQ(l->interfaces[0].addrs, c->interfaces[0].addrs);
}

TEST(ConfigV6, Ipv6OnlyInterface)
{
    auto c = parse("[[interface]]\nport = 0\naddress = \"2001:2::1/64\"\ngateway = \"2001:2::fe\"\n");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->interfaces[0].address, 0u);
    EXPECT_EQ(c->interfaces[0].prefix_len, 0);
    EXPECT_EQ(c->interfaces[0].gateway, 0u);
    ASSERT_TRUE(c->interfaces[0].gateway6);
}

TEST(ConfigV6, NdPpsAndNeighbors)
{
    auto d = parse("[[interface]]\nport = 0\naddress = \"198.18.0.1/24\"\n");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->nd_pps, 5000u);
    EXPECT_EQ(d->neighbors, 4096u);
    auto c = parse("[[interface]]\nport = 0\naddress = \"198.18.0.1/24\"\n"
                   "[dataplane]\nneighbors = 100000\n[exception]\nnd_pps = 0\n");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->nd_pps, 0u);
    EXPECT_EQ(c->neighbors, 100000u);
}

TEST(ConfigV6, DumpRoundTripsTheLists)
{
    auto a = parse(dual);
    ASSERT_TRUE(a);
    const std::string d = dump_config(*a);
    EXPECT_NE(d.find("address = [\"198.18.0.1/24\", \"198.18.0.4/24\", \"2001:2::1/64\"]"),
              std::string::npos)
            << d;
    EXPECT_NE(d.find("gateway = [\"198.18.0.254\", \"2001:2::fe\"]"), std::string::npos) << d;
    EXPECT_NE(d.find("gateway = \"fe80::1\""), std::string::npos) << d;
    EXPECT_NE(d.find("public_address = [\"198.18.200.7\", \"2001:2:0:ff::8\"]"),
              std::string::npos)
            << d;
    EXPECT_NE(d.find("nd_pps = 5000"), std::string::npos) << d;
    EXPECT_NE(d.find("neighbors = 4096"), std::string::npos) << d;
    auto b = parse(d);
    ASSERT_TRUE(b);
    ASSERT_EQ(b->interfaces.size(), 2u);
    for (size_t i = 0; i < 2; i++) {
        EXPECT_EQ(b->interfaces[i].addrs, a->interfaces[i].addrs);
        EXPECT_EQ(b->interfaces[i].gateway, a->interfaces[i].gateway);
        EXPECT_EQ(b->interfaces[i].gateway6, a->interfaces[i].gateway6);
        EXPECT_EQ(b->interfaces[i].public_addrs, a->interfaces[i].public_addrs);
    }
    EXPECT_EQ(dump_config(*b), d); // a fixed point
    // The old form dumps as the old form.
    auto o = parse("[[interface]]\nport = 0\naddress = \"198.18.0.1/24\"\n");
    ASSERT_TRUE(o);
    EXPECT_NE(dump_config(*o).find("address = \"198.18.0.1/24\"\n"), std::string::npos);
}

struct v6_bad {
    const char* what;
    std::string toml;
    const char* key;  // the error must name it
    const char* says; // and say this
};

class ConfigV6Bad : public ::testing::TestWithParam<v6_bad> {};

TEST_P(ConfigV6Bad, ErrorNamesTheKey)
{
    const v6_bad& p = GetParam();
    std::string err;
    EXPECT_FALSE(parse_config(p.toml, err)) << p.what;
    EXPECT_NE(err.find(p.key), std::string::npos) << p.what << ": \"" << err << "\"";
    EXPECT_NE(err.find(p.says), std::string::npos) << p.what << ": \"" << err << "\"";
}

namespace {
const std::string if0 = "[[interface]]\nport = 0\n";
const std::string v4 = if0 + "address = \"198.18.0.1/24\"\n";
const std::string ds = if0 + "address = [\"198.18.0.1/24\", \"2001:2::1/64\"]\n";
} // namespace

INSTANTIATE_TEST_SUITE_P(
        Cases, ConfigV6Bad,
        ::testing::Values(
                v6_bad{"empty list", if0 + "address = []\n", "interface[0].address", "missing"},
                v6_bad{"list of ints", if0 + "address = [1]\n", "interface[0].address[0]",
                       "expected a string"},
                v6_bad{"bad v6 in list", if0 + "address = [\"198.18.0.1/24\", \"2001:2::zz/64\"]\n",
                       "interface[0].address[1]", "bad IPv6"},
                v6_bad{"v6 prefix 129", if0 + "address = \"2001:2::1/129\"\n",
                       "interface[0].address", "1..128"},
                v6_bad{"v6 without prefix", if0 + "address = [\"2001:2::1\"]\n",
                       "interface[0].address[0]", "expected IP/PREFIX"},
                v6_bad{"twice", if0 + "address = [\"2001:2::1/64\", \"2001:2::1/64\"]\n",
                       "interface[0].address[1]", "listed twice"},
                v6_bad{"nine", if0 + "address = [\"198.18.0.1/24\", \"198.18.0.2/24\", "
                                     "\"198.18.0.3/24\", \"198.18.0.4/24\", \"198.18.0.5/24\", "
                                     "\"198.18.0.6/24\", \"198.18.0.7/24\", \"198.18.0.8/24\", "
                                     "\"198.18.0.9/24\"]\n",
                       "interface[0].address", "at most 8"},
                v6_bad{"same address on two interfaces",
                       ds + "[[interface]]\nport = 1\naddress = \"2001:2::1/64\"\n",
                       "interface[1].address", "also an address of interface[0]"},
                v6_bad{"two v4 gateways", v4 + "gateway = [\"198.18.0.254\", \"198.18.0.253\"]\n",
                       "interface[0].gateway[1]", "at most one per family"},
                v6_bad{"v6 gateway without v6 address", v4 + "gateway = \"2001:2::fe\"\n",
                       "interface[0].gateway", "no IPv6 address"},
                v6_bad{"v6 gateway off-link", ds + "gateway = [\"2001:3::fe\"]\n",
                       "interface[0].gateway[0]", "not another host"},
                v6_bad{"v6 gateway is own", ds + "gateway = \"2001:2::1\"\n",
                       "interface[0].gateway", "own address"},
                v6_bad{"v6 gateway multicast", ds + "gateway = \"ff02::2\"\n",
                       "interface[0].gateway", "bad IP address"},
                v6_bad{"gateway int", ds + "gateway = 7\n", "interface[0].gateway",
                       "expected a string or an array"},
                v6_bad{"public bad", ds + "public_address = [\"nope\"]\n",
                       "interface[0].public_address[0]", "bad IP address"},
                v6_bad{"public family missing", v4 + "public_address = [\"2001:2::7\"]\n",
                       "interface[0].public_address[0]", "it has 0"},
                v6_bad{"public with two v4",
                       if0 + "address = [\"198.18.0.1/24\", \"198.18.0.2/24\"]\n"
                             "public_address = [\"198.18.100.1\"]\n",
                       "interface[0].public_address[0]", "exactly one IPv4"},
                v6_bad{"two public v6", ds + "public_address = [\"2001:2::7\", \"2001:2::8\"]\n",
                       "interface[0].public_address[1]", "at most one per family"},
                v6_bad{"nd_pps negative", v4 + "[exception]\nnd_pps = -1\n", "exception.nd_pps",
                       "must be from"},
                v6_bad{"neighbors 0", v4 + "[dataplane]\nneighbors = 0\n", "dataplane.neighbors",
                       "must be from 16"},
                v6_bad{"neighbors string", v4 + "[dataplane]\nneighbors = \"4096\"\n",
                       "dataplane.neighbors", "expected an integer"}));
