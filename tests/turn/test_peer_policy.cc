// TURN peer allow/deny lists and CIDR parsing.
#include "turn/peer_policy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

using namespace isar::turn;

namespace {

transport_addr addr(const char* ip)
{
    transport_addr a;
    a.port = 9;
    if (inet_pton(AF_INET, ip, a.ip) == 1) {
        a.family = 4;
    } else {
        EXPECT_EQ(inet_pton(AF_INET6, ip, a.ip), 1) << ip;
        a.family = 6;
    }
    return a;
}

peer_policy with_defaults()
{
    peer_policy p;
    for (const std::string& s : peer_policy::default_denied()) {
        const auto c = parse_cidr(s);
        EXPECT_TRUE(c.has_value()) << s;
        if (c) {
            p.deny(*c);
        }
    }
    return p;
}

} // namespace

TEST(peer_policy, parse_cidr)
{
    auto c = parse_cidr("10.1.2.3/8");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->family, 4);
    EXPECT_EQ(c->prefix, 8);
    EXPECT_EQ(c->ip[0], 10);
    EXPECT_EQ(c->ip[1], 0); // host bits masked
    EXPECT_EQ(c->ip[3], 0);
    c = parse_cidr("100.127.255.255/10");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->ip[1], 64);
    c = parse_cidr("192.0.2.7");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->prefix, 32);
    EXPECT_EQ(c->ip[3], 7);
    c = parse_cidr("0.0.0.0/0");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->prefix, 0);
    c = parse_cidr("fe80::1/10");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->family, 6);
    EXPECT_EQ(c->prefix, 10);
    EXPECT_EQ(c->ip[0], 0xfe);
    EXPECT_EQ(c->ip[1], 0x80);
    EXPECT_EQ(c->ip[15], 0);
    c = parse_cidr("::1");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->prefix, 128);
    EXPECT_EQ(c->ip[15], 1);
}

TEST(peer_policy, parse_cidr_rejects)
{
    for (const char* bad :
         {"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/8x", "10.0.0.0/0008",
          "10.0.0/8", "10.0.0.256", "10.0.0.0 /8", " 10.0.0.0/8", "10.0.0.0/8/8", "::/129",
          "fe80::1::2", "abc", "10.0.0.0/ 8", "1.2.3.4.5", "::ffff:1.2.3.4:5/96",
          "0000:0000:0000:0000:0000:ffff:255.255.255.255:1/128"}) {
        EXPECT_FALSE(parse_cidr(bad).has_value()) << '"' << bad << '"';
    }
}

TEST(peer_policy, defaults)
{
    const peer_policy p = with_defaults();
    EXPECT_FALSE(p.permitted(addr("10.1.2.3")));
    EXPECT_TRUE(p.permitted(addr("8.8.8.8")));
    EXPECT_FALSE(p.permitted(addr("198.18.0.5")));
    EXPECT_FALSE(p.permitted(addr("198.19.255.255")));
    EXPECT_TRUE(p.permitted(addr("198.20.0.1")));
    EXPECT_FALSE(p.permitted(addr("127.0.0.1")));
    EXPECT_FALSE(p.permitted(addr("0.0.0.0")));
    EXPECT_FALSE(p.permitted(addr("100.64.0.1")));
    EXPECT_TRUE(p.permitted(addr("100.128.0.1")));
    EXPECT_FALSE(p.permitted(addr("172.31.255.255")));
    EXPECT_TRUE(p.permitted(addr("172.32.0.1")));
    EXPECT_FALSE(p.permitted(addr("169.254.169.254"))); // cloud metadata
    EXPECT_FALSE(p.permitted(addr("224.0.0.1")));
    EXPECT_FALSE(p.permitted(addr("255.255.255.255")));
    EXPECT_FALSE(p.permitted(addr("fe80::1")));
    EXPECT_TRUE(p.permitted(addr("2a00::1")));
    EXPECT_TRUE(p.permitted(addr("2001:4860:4860::8888")));
    EXPECT_FALSE(p.permitted(addr("2001:db8::1")));
    EXPECT_FALSE(p.permitted(addr("::1")));
    EXPECT_FALSE(p.permitted(addr("::")));
    EXPECT_FALSE(p.permitted(addr("::ffff:10.0.0.1"))); // IPv4-mapped
    EXPECT_FALSE(p.permitted(addr("::ffff:8.8.8.8")));
    EXPECT_FALSE(p.permitted(addr("64:ff9b::808:808")));
    EXPECT_FALSE(p.permitted(addr("fd00::1")));
    EXPECT_FALSE(p.permitted(addr("ff02::1")));
    EXPECT_FALSE(p.permitted(transport_addr{})); // no family
    EXPECT_FALSE(p.permitted(addr("::10.0.0.1")));  // IPv4-compatible
    EXPECT_FALSE(p.permitted(addr("64:ff9b:1::a00:1")));
    EXPECT_FALSE(p.permitted(addr("2002:a00:1::1"))); // 6to4 of 10.0.0.1
    EXPECT_FALSE(p.permitted(addr("2001::1")));       // Teredo
    EXPECT_FALSE(p.permitted(addr("2001:2::5")));     // benchmarking
    EXPECT_FALSE(p.permitted(addr("3fff::1")));
    EXPECT_FALSE(p.permitted(addr("fec0::1")));
    EXPECT_FALSE(p.permitted(addr("100::1")));
    EXPECT_TRUE(p.permitted(addr("2001:200::1"))); // just past 2001::/23
    EXPECT_TRUE(p.permitted(addr("2003::1")));
}

// The tests' IPv6 peers (2001:2::/48, benchmarking) are reached through
// allowed_peer, as the IPv4 ones (198.18.0.0/15) are.
TEST(peer_policy, benchmarking_range_allowable)
{
    peer_policy p = with_defaults();
    p.allow(*parse_cidr("2001:2::/48"));
    EXPECT_TRUE(p.permitted(addr("2001:2::5")));
    EXPECT_TRUE(p.permitted(addr("2001:2:0:ffff::1")));
    EXPECT_FALSE(p.permitted(addr("2001:2:1::1")));
    EXPECT_FALSE(p.permitted(addr("198.18.0.5"))); // the IPv4 list is untouched
    p.deny(*parse_cidr("2001:2::/48"));            // allow still wins
    EXPECT_TRUE(p.permitted(addr("2001:2::5")));
}

TEST(peer_policy, allow_overrides_deny)
{
    peer_policy p = with_defaults();
    p.allow(*parse_cidr("198.18.0.0/24"));
    EXPECT_TRUE(p.permitted(addr("198.18.0.5")));
    EXPECT_FALSE(p.permitted(addr("198.18.1.5")));
    p.allow(*parse_cidr("fe80::/64"));
    EXPECT_TRUE(p.permitted(addr("fe80::1")));
    EXPECT_FALSE(p.permitted(addr("fe80:0:0:1::1")));
}

TEST(peer_policy, empty_policy_permits_everything)
{
    peer_policy p;
    EXPECT_TRUE(p.permitted(addr("10.0.0.1")));
    EXPECT_TRUE(p.permitted(addr("::1")));
    p.deny(*parse_cidr("0.0.0.0/0"));
    EXPECT_FALSE(p.permitted(addr("8.8.8.8")));
    EXPECT_TRUE(p.permitted(addr("::1"))); // another family
}
