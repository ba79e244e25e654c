// TURN authentication: long-term keys, TURN REST passwords and expiry (as
// coturn's use-auth-secret reads them), stateless nonces.
#include "turn/auth.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

using namespace isar::turn;

namespace {

const uint8_t nonce_key[nonce_key_len] = {
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
        0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
        0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
};

transport_addr client_v4(const char* ip, uint16_t port)
{
    transport_addr a;
    a.family = 4;
    a.port = port;
    EXPECT_EQ(inet_pton(AF_INET, ip, a.ip), 1);
    return a;
}

} // namespace

TEST(turn_auth, long_term_key)
{
    uint8_t key[long_term_key_len];
    long_term_key("alice", "example.org", "secret", key);
    // python3: hashlib.md5(b"alice:example.org:secret").hexdigest()
    const uint8_t want[] = {0x54, 0x3e, 0x1a, 0xec, 0x5d, 0x36, 0x14, 0xf0,
                            0x31, 0x41, 0x65, 0x2d, 0x6a, 0xda, 0x51, 0xb2};
    EXPECT_EQ(std::memcmp(key, want, sizeof want), 0);
}

TEST(turn_auth, rest_password_known_values)
{
    // python3: base64(hmac.new(secret, username, sha1).digest())
    EXPECT_EQ(rest_password("north-secret", "1700000000:alice"), "g+jb180fcj+xlpA/2mP60OdIgU0=");
    EXPECT_EQ(rest_password("isar", "1700000000"), "lqlBx7dw93OWrxSMNWT8WekY8Xo=");
    EXPECT_EQ(rest_password("", "").size(), 28u);
}

TEST(turn_auth, rest_expiry)
{
    EXPECT_EQ(rest_expiry("1700000000"), 1700000000);
    EXPECT_EQ(rest_expiry("1700000000:alice"), 1700000000);
    EXPECT_EQ(rest_expiry("alice:1700000000"), 1700000000);
    EXPECT_EQ(rest_expiry("alice"), std::nullopt);
    EXPECT_EQ(rest_expiry(""), std::nullopt);
    EXPECT_EQ(rest_expiry("12:34x"), 12);
    // BigBlueButton's milliseconds: returned unchanged (far future).
    EXPECT_EQ(rest_expiry("1700000000000:bbb"), 1700000000000);
    EXPECT_EQ(rest_expiry("alice:34x"), std::nullopt);
    EXPECT_EQ(rest_expiry(":"), std::nullopt);
    EXPECT_EQ(rest_expiry("-5"), std::nullopt);
    EXPECT_EQ(rest_expiry("+5"), std::nullopt);
    EXPECT_EQ(rest_expiry("9223372036854775807"), INT64_MAX);
    EXPECT_EQ(rest_expiry("9223372036854775808"), std::nullopt);
    EXPECT_EQ(rest_expiry("99999999999999999999:alice"), std::nullopt);
}

TEST(turn_auth, rest_user)
{
    EXPECT_EQ(rest_user("1700000000"), "");
    EXPECT_EQ(rest_user("1700000000:alice"), "alice");
    EXPECT_EQ(rest_user("alice:1700000000"), "alice");
    EXPECT_EQ(rest_user("12:34x"), "34x");
    EXPECT_EQ(rest_user("alice"), "alice");
}

TEST(turn_auth, nonce_format)
{
    const transport_addr c = client_v4("198.51.100.7", 50000);
    const std::string n = make_nonce(nonce_key, 0x65a1b2c3, c);
    ASSERT_EQ(n.size(), nonce_len);
    EXPECT_EQ(n.substr(0, 16), "0000000065a1b2c3");
    for (char ch : n) {
        EXPECT_TRUE((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) << n;
    }
    EXPECT_EQ(make_nonce(nonce_key, 0x65a1b2c3, c), n); // deterministic
    EXPECT_NE(make_nonce(nonce_key, 0x65a1b2c4, c), n);
}

TEST(turn_auth, nonce_ok_stale_bad)
{
    const int64_t now = 1700000000;
    const int64_t max_age = 600;
    const transport_addr c = client_v4("198.51.100.7", 50000);
    const std::string n = make_nonce(nonce_key, now, c);
    EXPECT_EQ(check_nonce(nonce_key, n, now, max_age, c), nonce_status::ok);
    EXPECT_EQ(check_nonce(nonce_key, n, now + max_age, max_age, c), nonce_status::ok);
    EXPECT_EQ(check_nonce(nonce_key, n, now + max_age + 1, max_age, c), nonce_status::stale);
    // Issued up to 60 s in the future (clock skew between checks) is fine.
    EXPECT_EQ(check_nonce(nonce_key, n, now - 60, max_age, c), nonce_status::ok);
    EXPECT_EQ(check_nonce(nonce_key, n, now - 61, max_age, c), nonce_status::bad);

    // Another client: other port, other address, other family.
    transport_addr other = c;
    other.port = 50001;
    EXPECT_EQ(check_nonce(nonce_key, n, now, max_age, other), nonce_status::bad);
    EXPECT_EQ(check_nonce(nonce_key, n, now, max_age, client_v4("198.51.100.8", 50000)),
              nonce_status::bad);
    other = c;
    other.family = 6;
    EXPECT_EQ(check_nonce(nonce_key, n, now, max_age, other), nonce_status::bad);

    // Another server key.
    uint8_t key2[nonce_key_len];
    std::memcpy(key2, nonce_key, sizeof key2);
    key2[0] ^= 1;
    EXPECT_EQ(check_nonce(key2, n, now, max_age, c), nonce_status::bad);
}

TEST(turn_auth, nonce_tampered)
{
    const int64_t now = 1700000000;
    const transport_addr c = client_v4("203.0.113.5", 3478);
    const std::string n = make_nonce(nonce_key, now, c);
    for (size_t i = 0; i < n.size(); i++) {
        std::string t = n;
        t[i] = t[i] == '0' ? '1' : '0';
        EXPECT_EQ(check_nonce(nonce_key, t, now, 600, c), nonce_status::bad) << i;
    }
    // An old time with the MAC of the new one is bad, not stale.
    std::string old = n;
    old.replace(0, 16, "0000000000000001");
    EXPECT_EQ(check_nonce(nonce_key, old, now, 600, c), nonce_status::bad);
    std::string upper = n;
    for (char& ch : upper) {
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    if (upper != n) {
        EXPECT_EQ(check_nonce(nonce_key, upper, now, 600, c), nonce_status::bad);
    }
    EXPECT_EQ(check_nonce(nonce_key, n.substr(0, 39), now, 600, c), nonce_status::bad);
    EXPECT_EQ(check_nonce(nonce_key, n + "0", now, 600, c), nonce_status::bad);
    EXPECT_EQ(check_nonce(nonce_key, "", now, 600, c), nonce_status::bad);
    std::string junk = n;
    junk[20] = 'g';
    EXPECT_EQ(check_nonce(nonce_key, junk, now, 600, c), nonce_status::bad);
    // A time beyond int64 (a forged high bit) is bad even with the right MAC.
    const std::string neg = make_nonce(nonce_key, -1, c);
    EXPECT_EQ(check_nonce(nonce_key, neg, now, 600, c), nonce_status::bad);
}
