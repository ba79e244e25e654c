// RFC 8656 §7.2: REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY.
#include <gtest/gtest.h>

#include <vector>

#include "turn/families.h"

using namespace isar::turn;

namespace {

const uint8_t txid[txid_len] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

struct req {
    std::vector<uint8_t> buf = std::vector<uint8_t>(256);
    message m;
};

// An Allocate with the given family attributes (0 = absent); `raw_*` puts a
// raw family byte instead (for unknown values).
void build(req& r, uint8_t raf, uint8_t aaf, int raw_raf = -1, uint16_t raf_len = 4)
{
    builder b(r.buf.data(), r.buf.size(), make_type(method::allocate, msg_class::request), txid);
    const uint8_t udp[4] = {17, 0, 0, 0};
    b.add(attr::requested_transport, udp, 4);
    if (raw_raf >= 0) {
        const uint8_t v[4] = {static_cast<uint8_t>(raw_raf), 0, 0, 0};
        b.add(attr::requested_address_family, v, raf_len);
    } else if (raf != 0) {
        b.add_address_family(attr::requested_address_family, raf);
    }
    if (aaf != 0)
        b.add_address_family(attr::additional_address_family, aaf);
    ASSERT_TRUE(b.ok());
    ASSERT_EQ(parse(r.buf.data(), b.size(), r.m), parse_status::ok);
}

family_choice choose(uint8_t raf, uint8_t aaf, bool have4, bool have6)
{
    req r;
    build(r, raf, aaf);
    return choose_families(r.m, have4, have6);
}

} // namespace

TEST(turn_families, default_is_ipv4)
{
    family_choice c = choose(0, 0, true, true);
    EXPECT_EQ(c.error, 0);
    EXPECT_EQ(c.first, 4);
    EXPECT_EQ(c.second, 0);
    EXPECT_EQ(c.second_error, 0);
    // No REQUESTED-ADDRESS-FAMILY and no IPv4 to relay from: 440.
    EXPECT_EQ(choose(0, 0, false, true).error, 440);
}

TEST(turn_families, requested_family)
{
    family_choice c = choose(6, 0, true, true);
    EXPECT_EQ(c.error, 0);
    EXPECT_EQ(c.first, 6);
    EXPECT_EQ(c.second, 0);
    EXPECT_EQ(choose(6, 0, false, true).first, 6);
    EXPECT_EQ(choose(6, 0, true, false).error, 440);
    EXPECT_EQ(choose(4, 0, true, false).first, 4);
    EXPECT_EQ(choose(4, 0, false, true).error, 440);
}

TEST(turn_families, requested_family_malformed_or_unknown)
{
    req r;
    build(r, 0, 0, 0x03);
    EXPECT_EQ(choose_families(r.m, true, true).error, 440); // unknown family
    req s;
    build(s, 0, 0, 0x02, 2);
    EXPECT_EQ(choose_families(s.m, true, true).error, 400); // 2-byte value
}

TEST(turn_families, both_attributes_is_400)
{
    EXPECT_EQ(choose(6, 6, true, true).error, 400);
    EXPECT_EQ(choose(4, 6, true, true).error, 400);
}

TEST(turn_families, dual_allocation)
{
    family_choice c = choose(0, 6, true, true);
    EXPECT_EQ(c.error, 0);
    EXPECT_EQ(c.first, 4);
    EXPECT_EQ(c.second, 6);
    EXPECT_EQ(c.second_error, 0);
    // No IPv6 here: the IPv4 address alone, ADDRESS-ERROR-CODE 440 for IPv6.
    c = choose(0, 6, true, false);
    EXPECT_EQ(c.error, 0);
    EXPECT_EQ(c.first, 4);
    EXPECT_EQ(c.second, 0);
    EXPECT_EQ(c.second_error, 440);
    // No IPv4: the allocation as a whole fails.
    EXPECT_EQ(choose(0, 6, false, true).error, 440);
    // ADDITIONAL-ADDRESS-FAMILY IPv4 is a bad request (§7.2).
    EXPECT_EQ(choose(0, 4, true, true).error, 400);
}
