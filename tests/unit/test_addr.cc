// control/addr.cc: IPv4, IP:PORT and IP/PREFIX parsing edge cases.
#include "control/addr.h"

#include <gtest/gtest.h>
#include <string>

using namespace isar::ctl;

TEST(Addr, ParseIpv4)
{
    EXPECT_EQ(parse_ipv4("198.18.0.1"), 0xc6120001u);
    EXPECT_EQ(parse_ipv4("0.0.0.0"), 0u);
    EXPECT_EQ(parse_ipv4("255.255.255.255"), 0xffffffffu);
    for (const char* bad :
         {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4 ", " 1.2.3.4", "a.b.c.d", "1.2.3.4/24",
          "1..2.3", "123456789012345678", "::1", "1.2.3.-4"})
        EXPECT_FALSE(parse_ipv4(bad)) << bad;
}

TEST(Addr, FormatIpv4)
{
    EXPECT_EQ(format_ipv4(0xc6120001u), "198.18.0.1");
    EXPECT_EQ(format_ipv4(0), "0.0.0.0");
    EXPECT_EQ(format_ipv4(*parse_ipv4("10.200.3.44")), "10.200.3.44");
}

TEST(Addr, ParseEndpointGood)
{
    std::string err;
    auto e = parse_endpoint("198.18.0.2:4000", err);
    ASSERT_TRUE(e) << err;
    EXPECT_EQ(e->ip, 0xc6120002u);
    EXPECT_EQ(e->port, 4000);
    e = parse_endpoint("10.0.0.1:1", err);
    ASSERT_TRUE(e) << err;
    EXPECT_EQ(e->port, 1);
    e = parse_endpoint("10.0.0.1:65535", err);
    ASSERT_TRUE(e) << err;
    EXPECT_EQ(e->port, 65535);
    EXPECT_EQ(format_endpoint(*e), "10.0.0.1:65535");
    EXPECT_EQ(parse_endpoint(format_endpoint({0x0a000001, 7}), err), (endpoint{0x0a000001, 7}));
}

TEST(Addr, ParseEndpointBad)
{
    struct c {
        const char* in;
        const char* says; // a fragment of the error
    };
    for (const c& t : std::initializer_list<c>{
                 {"", "expected IP:PORT"},
                 {"198.18.0.2", "expected IP:PORT"},
                 {"198.18.0.2:", "bad port"},
                 {":4000", "bad IPv4"},
                 {"198.18.0.2:0", "bad port"},
                 {"198.18.0.2:65536", "bad port"},
                 {"198.18.0.2:99999999999", "bad port"},
                 {"198.18.0.2:-1", "bad port"},
                 {"198.18.0.2:+80", "bad port"},
                 {"198.18.0.2:80x", "bad port"},
                 {"198.18.0.2: 80", "bad port"},
                 {"198.18.0.2:80:90", "bad IPv4"},
                 {"host:80", "bad IPv4"},
                 {"0.0.0.0:80", "not a unicast"},
                 {"255.255.255.255:80", "not a unicast"},
                 {"224.0.0.1:80", "not a unicast"},
                 {"239.255.255.255:80", "not a unicast"},
                 {"[::1]:80", "bad IPv4"},
         }) {
        std::string err;
        EXPECT_FALSE(parse_endpoint(t.in, err)) << t.in;
        EXPECT_NE(err.find(t.says), std::string::npos) << t.in << " -> " << err;
        if (*t.in) {
            EXPECT_NE(err.find(t.in), std::string::npos) << "error should quote the input: " << err;
        }
    }
}

TEST(Addr, ParsePrefix)
{
    std::string err;
    auto p = parse_prefix("198.18.0.1/24", err);
    ASSERT_TRUE(p) << err;
    EXPECT_EQ(p->ip, 0xc6120001u);
    EXPECT_EQ(p->len, 24);
    p = parse_prefix("10.0.0.1/32", err);
    ASSERT_TRUE(p) << err;
    EXPECT_EQ(p->len, 32);
    p = parse_prefix("10.0.0.1/1", err);
    ASSERT_TRUE(p) << err;
    EXPECT_EQ(p->len, 1);
    for (const char* bad : {"", "10.0.0.1", "10.0.0.1/", "10.0.0.1/0", "10.0.0.1/33", "10.0.0.1/-1",
                            "10.0.0.1/24/8", "10.0.0.1/ 24", "/24", "0.0.0.0/8", "224.1.1.1/24",
                            "255.255.255.255/32", "10.0.0/24", "x/24"}) {
        std::string e;
        EXPECT_FALSE(parse_prefix(bad, e)) << bad;
        EXPECT_FALSE(e.empty()) << bad;
    }
}

// ---- IPv6 and either family -------------------------------------------

TEST(Addr, ParseFormatIpv6Rfc5952)
{
    // RFC 5952: lower case, longest zero run compressed (first on a tie),
    // no single 16-bit zero field compressed, no leading zeros.
    struct c {
        const char* in;
        const char* out;
    };
    for (const c& t : std::initializer_list<c>{
                 {"2001:2::1", "2001:2::1"},
                 {"2001:0002:0000:0000:0000:0000:0000:0001", "2001:2::1"},
                 {"2001:DB8::A", "2001:db8::a"},
                 {"2001:2:0:1:0:0:0:1", "2001:2:0:1::1"},
                 {"2001:2:0:0:1:0:0:1", "2001:2::1:0:0:1"},
                 {"2001:2:0:1:1:1:1:1", "2001:2:0:1:1:1:1:1"},
                 {"fe80::1", "fe80::1"},
                 {"::1", "::1"},
                 {"::", "::"},
         }) {
        auto a = parse_ip(t.in);
        ASSERT_TRUE(a) << t.in;
        EXPECT_EQ(a->family, 6) << t.in;
        EXPECT_EQ(format_ip(*a), t.out) << t.in;
    }
    auto a = parse_ip("2001:2::1");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->v6[0], 0x20);
    EXPECT_EQ(a->v6[1], 0x01);
    EXPECT_EQ(a->v6[3], 0x02);
    EXPECT_EQ(a->v6[15], 0x01);
    for (const char* bad : {"", "2001:2::1::2", "2001:2:::1", "[2001:2::1]", "2001:2::1%eth0",
                            "2001:2::g", "1:2:3:4:5:6:7:8:9", "12345::1", "2001:2::1/64", " ::1"})
        EXPECT_FALSE(parse_ip(bad)) << bad;
    auto v4 = parse_ip("198.18.0.1");
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->family, 4);
    EXPECT_EQ(v4->v4, 0xc6120001u);
    EXPECT_EQ(format_ip(*v4), "198.18.0.1");
}

TEST(Addr, UsableUnicast)
{
    for (const char* good : {"198.18.0.1", "2001:2::1", "fe80::1", "::1"})
        EXPECT_TRUE(usable_unicast(*parse_ip(good))) << good;
    for (const char* bad : {"0.0.0.0", "255.255.255.255", "224.0.0.1", "::", "ff02::1",
                            "ff02::1:ff00:1", "::ffff:198.18.0.1"})
        EXPECT_FALSE(usable_unicast(*parse_ip(bad))) << bad;
}

TEST(Addr, EndpointAnyFamily)
{
    std::string err;
    auto e = parse_endpoint_any("[2001:2::2]:4000", err);
    ASSERT_TRUE(e) << err;
    EXPECT_EQ(e->family, 6);
    EXPECT_EQ(e->port, 4000);
    EXPECT_EQ(e->addr(), *parse_ip("2001:2::2"));
    EXPECT_EQ(format_endpoint(*e), "[2001:2::2]:4000");
    // Long forms come back in the canonical one.
    e = parse_endpoint_any("[2001:0002:0:0:0:0:0:0002]:65535", err);
    ASSERT_TRUE(e) << err;
    EXPECT_EQ(format_endpoint(*e), "[2001:2::2]:65535");
    e = parse_endpoint_any("198.18.0.2:4000", err);
    ASSERT_TRUE(e) << err;
    EXPECT_EQ(e->family, 4);
    EXPECT_EQ(*e, (endpoint{0xc6120002u, 4000}));
    EXPECT_EQ(endpoint::of(*parse_ip("2001:2::9"), 7), *parse_endpoint_any("[2001:2::9]:7", err));
    // The old parser stays IPv4 only.
    EXPECT_FALSE(parse_endpoint("[2001:2::2]:4000", err));

    struct c {
        const char* in;
        const char* says;
    };
    for (const c& t : std::initializer_list<c>{
                 {"[2001:2::2]", "expected [IPv6]:PORT"},
                 {"[2001:2::2]:", "bad port"},
                 {"[2001:2::2]:0", "bad port"},
                 {"[2001:2::2]:65536", "bad port"},
                 {"[2001:2::2]4000", "expected [IPv6]:PORT"},
                 {"[2001:2::2:4000", "expected [IPv6]:PORT"},
                 {"[2001:2::zz]:4000", "bad IPv6"},
                 {"[198.18.0.2]:4000", "bad IPv6"},
                 {"[]:4000", "bad IPv6"},
                 {"[::]:4000", "not a unicast"},
                 {"[ff02::1]:4000", "not a unicast"},
                 {"[::ffff:198.18.0.2]:4000", "not a unicast"},
                 {"2001:2::2:4000", "bad IPv4"}, // unbracketed: ambiguous, refused
                 {"198.18.0.2:0", "bad port"},
                 {"", "expected IP:PORT"},
         }) {
        std::string err2;
        EXPECT_FALSE(parse_endpoint_any(t.in, err2)) << t.in;
        EXPECT_NE(err2.find(t.says), std::string::npos) << t.in << " -> " << err2;
    }
}

TEST(Addr, IpPrefixBothFamilies)
{
    std::string err;
    auto p = parse_ip_prefix("2001:2::1/64", err);
    ASSERT_TRUE(p) << err;
    EXPECT_EQ(p->addr, *parse_ip("2001:2::1"));
    EXPECT_EQ(p->len, 64);
    EXPECT_EQ(format_prefix(*p), "2001:2::1/64");
    p = parse_ip_prefix("2001:2::1/128", err);
    ASSERT_TRUE(p) << err;
    EXPECT_EQ(p->len, 128);
    p = parse_ip_prefix("198.18.0.1/24", err);
    ASSERT_TRUE(p) << err;
    EXPECT_EQ(p->addr, ip_addr::from_v4(0xc6120001u));
    EXPECT_EQ(p->len, 24);
    struct c {
        const char* in;
        const char* says;
    };
    for (const c& t : std::initializer_list<c>{
                 {"2001:2::1", "expected IP/PREFIX"},
                 {"2001:2::1/0", "bad prefix length"},
                 {"2001:2::1/129", "(1..128)"},
                 {"2001:2::1/6x", "bad prefix length"},
                 {"::/64", "bad IPv6"},
                 {"ff02::1/64", "bad IPv6"},
                 {"2001:2::zz/64", "bad IPv6"},
                 {"198.18.0.1/33", "(1..32)"},
                 {"198.18.0.1", "expected IP/PREFIX"},
         }) {
        std::string e;
        EXPECT_FALSE(parse_ip_prefix(t.in, e)) << t.in;
        EXPECT_NE(e.find(t.says), std::string::npos) << t.in << " -> " << e;
    }
}

TEST(Addr, CidrAndSamePrefix)
{
    std::string err;
    auto n = parse_cidr_any("2001:2::ff/48", err);
    ASSERT_TRUE(n) << err;
    EXPECT_EQ(format_prefix(*n), "2001:2::/48"); // host bits cleared
    n = parse_cidr_any("2001:2:0:1::/63", err);
    ASSERT_TRUE(n) << err;
    EXPECT_EQ(format_prefix(*n), "2001:2::/63"); // bit 64 is a host bit
    n = parse_cidr_any("2001:2::5", err);
    ASSERT_TRUE(n) << err;
    EXPECT_EQ(n->len, 128);
    n = parse_cidr_any("198.18.7.9/15", err);
    ASSERT_TRUE(n) << err;
    EXPECT_EQ(format_prefix(*n), "198.18.0.0/15");
    n = parse_cidr_any("198.18.7.9", err);
    ASSERT_TRUE(n) << err;
    EXPECT_EQ(n->len, 32);
    n = parse_cidr_any("::/0", err);
    ASSERT_TRUE(n) << err;
    EXPECT_EQ(n->len, 0);
    for (const char* bad : {"", "2001:2::/129", "198.18.0.0/33", "x/8", "2001:2::/", "/8"}) {
        std::string e;
        EXPECT_FALSE(parse_cidr_any(bad, e)) << bad;
        EXPECT_FALSE(e.empty()) << bad;
    }

    const ip_addr a = *parse_ip("2001:2::1"), b = *parse_ip("2001:2:0:0:8000::1"),
                  c = *parse_ip("2001:3::1");
    EXPECT_TRUE(same_prefix(a, b, 64));
    EXPECT_TRUE(same_prefix(a, b, 64));
    EXPECT_FALSE(same_prefix(a, b, 65)); // differ in bit 64
    EXPECT_TRUE(same_prefix(a, c, 15));
    EXPECT_FALSE(same_prefix(a, c, 48));
    EXPECT_TRUE(same_prefix(a, c, 0));
    EXPECT_TRUE(same_prefix(a, a, 128));
    EXPECT_FALSE(same_prefix(a, ip_addr::from_v4(0xc6120001u), 0)); // other family
    EXPECT_TRUE(same_prefix(ip_addr::from_v4(0xc6120001u), ip_addr::from_v4(0xc61200feu), 24));
    EXPECT_FALSE(same_prefix(ip_addr::from_v4(0xc6120001u), ip_addr::from_v4(0xc61201feu), 24));
}
