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
