// SDES inline key parsing (RFC 4568) and suite names.
#include <gtest/gtest.h>
#include <openssl/base64.h>

#include "tests/crypto/crypto_test_util.h"

using namespace isar::crypto;
using namespace isar::crypto::test;

namespace {

std::string b64(const bytes& b)
{
    size_t n = 0;
    EVP_EncodedLength(&n, b.size());
    std::string s(n, '\0');
    size_t w = EVP_EncodeBlock(reinterpret_cast<uint8_t*>(s.data()), b.data(), b.size());
    s.resize(w);
    return s;
}

bytes seq_bytes(size_t n)
{
    bytes b(n);
    for (size_t i = 0; i < n; ++i) {
        b[i] = uint8_t(0xa0 + i);
    }
    return b;
}

TEST(suite_names, round_trip)
{
    for (suite s : all_suites()) {
        auto p = parse_suite(suite_name(s));
        ASSERT_TRUE(p.has_value());
        EXPECT_EQ(*p, s);
    }
    EXPECT_FALSE(parse_suite("none").has_value());
    EXPECT_FALSE(parse_suite("aes_cm_128_hmac_sha1_80").has_value());
    EXPECT_EQ(suite_name(suite::none), "none");
    EXPECT_EQ(suite_rtp_tag_len(suite::aes_cm_128_hmac_sha1_32), 4u);
    EXPECT_EQ(suite_rtcp_tag_len(suite::aes_cm_128_hmac_sha1_32), 10u);
    EXPECT_EQ(suite_key_len(suite::aead_aes_256_gcm), 32u);
    EXPECT_EQ(suite_salt_len(suite::aead_aes_128_gcm), 12u);
}

TEST(sdes, good_keys_every_suite)
{
    for (suite s : all_suites()) {
        SCOPED_TRACE(suite_name(s));
        size_t kl = suite_key_len(s), sl = suite_salt_len(s);
        bytes raw = seq_bytes(kl + sl);
        key_material km;
        std::string err;
        ASSERT_TRUE(parse_sdes_inline(s, b64(raw), km, err)) << err;
        EXPECT_EQ(km.s, s);
        EXPECT_EQ(bytes(km.key, km.key + kl), bytes(raw.begin(), raw.begin() + long(kl)));
        EXPECT_EQ(bytes(km.salt, km.salt + sl), bytes(raw.begin() + long(kl), raw.end()));
        // "inline:" prefix accepted too.
        key_material km2;
        ASSERT_TRUE(parse_sdes_inline(s, "inline:" + b64(raw), km2, err)) << err;
        EXPECT_EQ(bytes(km2.key, km2.key + kl), bytes(km.key, km.key + kl));
        // SUITE:BASE64
        key_material km3;
        ASSERT_TRUE(parse_suite_key(std::string(suite_name(s)) + ":" + b64(raw), km3, err)) << err;
        EXPECT_EQ(km3.s, s);
        EXPECT_EQ(bytes(km3.salt, km3.salt + sl), bytes(km.salt, km.salt + sl));
    }
}

TEST(sdes, known_key)
{
    // RFC 4568 §9.1 example key.
    key_material km;
    std::string err;
    ASSERT_TRUE(parse_sdes_inline(suite::aes_cm_128_hmac_sha1_80,
            "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz", km, err))
            << err;
    EXPECT_EQ(km.key[0], 'Y');
    EXPECT_EQ(km.salt[13], 's');
}

TEST(sdes, missing_padding_is_tolerated)
{
    bytes raw = seq_bytes(44);
    std::string s = b64(raw);
    ASSERT_EQ(s.back(), '=');
    while (s.back() == '=') {
        s.pop_back();
    }
    key_material km;
    std::string err;
    EXPECT_TRUE(parse_sdes_inline(suite::aead_aes_256_gcm, s, km, err)) << err;
}

void expect_bad(suite s, const std::string& in, const std::string& must_mention)
{
    key_material km;
    km.s = suite::aes_cm_128_hmac_sha1_80;
    km.key[0] = 0x55;
    std::string err;
    EXPECT_FALSE(parse_sdes_inline(s, in, km, err)) << in;
    EXPECT_NE(err.find(must_mention), std::string::npos) << err;
    if (in.size() > 4) {
        EXPECT_EQ(err.find(in), std::string::npos) << "error text contains the key: " << err;
        EXPECT_EQ(err.find(in.substr(0, 8)), std::string::npos) << err;
    }
    EXPECT_EQ(km.key[0], 0x55) << "output touched on failure";
}

TEST(sdes, bad_keys)
{
    // Wrong lengths name the expected length.
    expect_bad(suite::aes_cm_128_hmac_sha1_80, b64(seq_bytes(29)), "30 bytes");
    expect_bad(suite::aes_cm_128_hmac_sha1_80, b64(seq_bytes(31)), "30 bytes");
    expect_bad(suite::aes_cm_128_hmac_sha1_32, b64(seq_bytes(28)), "30 bytes");
    expect_bad(suite::aead_aes_128_gcm, b64(seq_bytes(30)), "28 bytes");
    expect_bad(suite::aead_aes_256_gcm, b64(seq_bytes(28)), "44 bytes");
    expect_bad(suite::aead_aes_256_gcm, b64(seq_bytes(90)), "44 bytes");
    expect_bad(suite::aead_aes_128_gcm, "", "28 bytes");
    // Lifetime / MKI.
    expect_bad(suite::aes_cm_128_hmac_sha1_80, b64(seq_bytes(30)) + "|2^20|1:4", "MKI");
    expect_bad(suite::aes_cm_128_hmac_sha1_80, b64(seq_bytes(30)) + "|2^31", "lifetime");
    // Not base64.
    std::string bad = b64(seq_bytes(30));
    bad[5] = '*';
    expect_bad(suite::aes_cm_128_hmac_sha1_80, bad, "base64");
    expect_bad(suite::aes_cm_128_hmac_sha1_80, "QUJD=EFG" + b64(seq_bytes(24)), "base64");
    expect_bad(suite::none, b64(seq_bytes(30)), "suite");
}

TEST(sdes, suite_key_errors)
{
    key_material km;
    std::string err;
    std::string key = b64(seq_bytes(30));
    EXPECT_FALSE(parse_suite_key(key, km, err));
    EXPECT_EQ(err.find(key.substr(0, 8)), std::string::npos) << err;
    EXPECT_FALSE(parse_suite_key("AES_CM_128_HMAC_SHA1_99:" + key, km, err));
    EXPECT_NE(err.find("AES_CM_128_HMAC_SHA1_99"), std::string::npos) << err;
    EXPECT_EQ(err.find(key.substr(0, 8)), std::string::npos) << err;
    // A key typed where the suite goes is not echoed.
    EXPECT_FALSE(parse_suite_key(key + ":" + key, km, err));
    EXPECT_EQ(err.find(key.substr(0, 8)), std::string::npos) << err;
    EXPECT_FALSE(parse_suite_key("AEAD_AES_128_GCM:" + key, km, err)); // 30 != 28
    EXPECT_NE(err.find("28"), std::string::npos);
}

TEST(key_material, wiped)
{
    key_material a;
    a.s = suite::aead_aes_256_gcm;
    std::memset(a.key, 0x77, sizeof a.key);
    std::memset(a.salt, 0x66, sizeof a.salt);
    key_material b = a;
    EXPECT_EQ(b.key[31], 0x77);
    key_material c = std::move(a);
    EXPECT_EQ(c.key[0], 0x77);
    EXPECT_EQ(a.key[0], 0);
    EXPECT_EQ(a.s, suite::none);
    b = c;
    EXPECT_EQ(b.salt[13], 0x66);
    b.wipe();
    for (uint8_t x : b.key) {
        EXPECT_EQ(x, 0);
    }
    EXPECT_EQ(b.key_len(), 0u);
}

} // namespace
