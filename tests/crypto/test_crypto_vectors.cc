// Known-answer tests: RFC 3711 Appendix B (AES-CM keystream, key derivation)
// and RFC 7714 §16/§17 (AEAD_AES_128_GCM / AEAD_AES_256_GCM, SRTP and SRTCP).
// The vectors are written out here as data; every Isar engine must match them.
#include <gtest/gtest.h>

#include "crypto/srtp_engine.h"
#include "tests/crypto/crypto_test_util.h"

using namespace isar::crypto;
using namespace isar::crypto::test;

namespace {

// ---- RFC 3711 B.2: AES-CM keystream -------------------------------------------

const char* const b2_key = "2B7E151628AED2A6ABF7158809CF4F3C";
const char* const b2_iv = "F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000";
const char* const b2_first = "E03EAD0935C95E80E166B16DD92B4EB4"
                             "D23513162B02D0F72A43A2FE4A5F97AB"
                             "41E95B3BB0A2E8DD477901E4FCA894C0";
const char* const b2_feff = "EC8CDF7398607CB0F2D21675EA9EA1E4";
const char* const b2_ff00 = "362B7C3C6773516318A077D7FC5073AE";
const char* const b2_ff01 = "6A2CC3787889374FBEB4C81B17BA6C44";

TEST(rfc3711_b2, keystream_every_engine)
{
    bytes key = hex(b2_key);
    bytes iv = hex(b2_iv);
    for (engine e : own_engines()) {
        SCOPED_TRACE(engine_name(e));
        bytes ks(0xff02 * 16, 0);
        ASSERT_TRUE(detail::engine_keystream(e, key.data(), key.size(), iv.data(), ks.data(), ks.size()));
        EXPECT_EQ(bytes(ks.begin(), ks.begin() + 48), hex(b2_first));
        EXPECT_EQ(bytes(ks.begin() + 0xfeff * 16, ks.begin() + 0xff00 * 16), hex(b2_feff));
        EXPECT_EQ(bytes(ks.begin() + 0xff00 * 16, ks.begin() + 0xff01 * 16), hex(b2_ff00));
        EXPECT_EQ(bytes(ks.begin() + 0xff01 * 16, ks.begin() + 0xff02 * 16), hex(b2_ff01));
    }
}

// The same keystream through the packet path: SSRC 0, ROC 0, SEQ 0 make the IV
// the shifted session salt, so an all-zero payload encrypts to the keystream.
TEST(rfc3711_b2, keystream_through_protect_rtp)
{
    for (engine e : own_engines()) {
        SCOPED_TRACE(engine_name(e));
        detail::session_keys k;
        k.s = suite::aes_cm_128_hmac_sha1_80;
        k.key_len = 16;
        k.salt_len = 14;
        bytes key = hex(b2_key);
        bytes salt = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD");
        std::memcpy(k.rtp_key, key.data(), 16);
        std::memcpy(k.rtp_salt, salt.data(), 14);
        std::string err;
        auto ctx = detail::create_from_session_keys(k, e, err);
        ASSERT_TRUE(ctx) << err;
        bytes pkt(12 + 48 + max_trailer, 0);
        pkt[0] = 0x80;
        size_t out = 0;
        ASSERT_EQ(ctx->protect_rtp(pkt.data(), 60, pkt.size(), &out), status::ok);
        EXPECT_EQ(out, 70u);
        EXPECT_EQ(bytes(pkt.begin() + 12, pkt.begin() + 60), hex(b2_first));
    }
}

// ---- RFC 3711 B.3: key derivation ---------------------------------------------

TEST(rfc3711_b3, key_derivation)
{
    bytes mk = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
    bytes ms = hex("0EC675AD498AFEEBB6960B3AABE6");
    uint8_t out[94];
    detail::aes_cm_prf(mk.data(), 16, ms.data(), 14, 0x00, out, 16);
    EXPECT_EQ(bytes(out, out + 16), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    detail::aes_cm_prf(mk.data(), 16, ms.data(), 14, 0x02, out, 14);
    EXPECT_EQ(bytes(out, out + 14), hex("30CBBC08863D8C85D49DB34A9AE1"));
    detail::aes_cm_prf(mk.data(), 16, ms.data(), 14, 0x01, out, 94);
    EXPECT_EQ(bytes(out, out + 94),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE"
                "E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25"
                "6D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2"));

    // derive_session_keys() takes the same path for the RTP labels.
    key_material km;
    km.s = suite::aes_cm_128_hmac_sha1_80;
    std::memcpy(km.key, mk.data(), 16);
    std::memcpy(km.salt, ms.data(), 14);
    detail::session_keys k;
    ASSERT_TRUE(detail::derive_session_keys(km, k));
    EXPECT_EQ(bytes(k.rtp_key, k.rtp_key + 16), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    EXPECT_EQ(bytes(k.rtp_salt, k.rtp_salt + 14), hex("30CBBC08863D8C85D49DB34A9AE1"));
    EXPECT_EQ(bytes(k.rtp_auth, k.rtp_auth + 20), hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"));
}

// ---- RFC 7714 §16 / §17 ------------------------------------------------------

const char* const gcm_key_128 = "000102030405060708090a0b0c0d0e0f";
const char* const gcm_key_256 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const char* const gcm_salt = "517569642070726f2071756f";

const char* const rtp_plain = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973"
                              "20646976 69736120 696e2070 61727465 73207472 6573";
// §16.1.1 (AEAD_AES_128_GCM) and §16.2.1 (AEAD_AES_256_GCM).
const char* const rtp_128 = "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca"
                            "be633bd5 0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1"
                            "6a9152cf 765ee439 0cce";
const char* const rtp_256 = "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa"
                            "b1801238 9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff"
                            "d6b0f9bb 7878d7a7 6c13";

const char* const rtcp_plain = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930"
                               "4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef";
// §17.1 / §17.2: encrypted (E=1), SRTCP index 0x5d4.
const char* const rtcp_128 = "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7"
                             "6c06f32d c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458"
                             "96cf4d2f c5abf872 45d9eade 800005d4";
const char* const rtcp_256 = "81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d"
                             "bffe0a50 a2eaa5c1 110555be 8415f658 c61de047 6f1b6fad 1d1eb30c"
                             "4446839f 57ff6f6c b26ac3be 800005d4";
// §17.3 / §17.4: authenticated only (E=0).
const char* const rtcp_128_auth_only = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a"
                                       "0000e930 4c756e61 deadbeef deadbeef deadbeef deadbeef"
                                       "deadbeef 841dd968 3dd78ec9 2ae58790 125f62b3 000005d4";
const char* const rtcp_256_auth_only = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a"
                                       "0000e930 4c756e61 deadbeef deadbeef deadbeef deadbeef"
                                       "deadbeef 91db4afb feee5a97 8fab4393 ed2615fe 000005d4";

struct gcm_case {
    suite s;
    const char* key;
    const char* rtp;
    const char* rtcp;
    const char* rtcp_auth_only;
};

const gcm_case gcm_cases[] = {
        {suite::aead_aes_128_gcm, gcm_key_128, rtp_128, rtcp_128, rtcp_128_auth_only},
        {suite::aead_aes_256_gcm, gcm_key_256, rtp_256, rtcp_256, rtcp_256_auth_only},
};

// RFC 7714's vectors are given as session key and salt (no KDF).
std::unique_ptr<detail::srtp_context_impl> gcm_context(const gcm_case& c, engine e)
{
    detail::session_keys k;
    k.s = c.s;
    bytes key = hex(c.key);
    bytes salt = hex(gcm_salt);
    k.key_len = key.size();
    k.salt_len = 12;
    std::memcpy(k.rtp_key, key.data(), key.size());
    std::memcpy(k.rtcp_key, key.data(), key.size());
    std::memcpy(k.rtp_salt, salt.data(), 12);
    std::memcpy(k.rtcp_salt, salt.data(), 12);
    std::string err;
    auto ctx = detail::create_from_session_keys(k, e, err);
    EXPECT_TRUE(ctx) << err;
    return ctx;
}

TEST(rfc7714, srtp_protect_and_unprotect)
{
    for (engine e : own_engines()) {
        for (const auto& c : gcm_cases) {
            SCOPED_TRACE(label(c.s, e));
            auto tx = gcm_context(c, e);
            auto rx = gcm_context(c, e);
            ASSERT_TRUE(tx && rx);
            bytes plain = hex(rtp_plain);
            bytes buf = plain;
            buf.resize(plain.size() + max_trailer);
            size_t out = 0;
            ASSERT_EQ(tx->protect_rtp(buf.data(), plain.size(), buf.size(), &out), status::ok);
            buf.resize(out);
            EXPECT_EQ(buf, hex(c.rtp));

            bytes wire = hex(c.rtp);
            ASSERT_EQ(rx->unprotect_rtp(wire.data(), wire.size(), &out), status::ok);
            wire.resize(out);
            EXPECT_EQ(wire, plain);

            wire = hex(c.rtp);
            EXPECT_EQ(rx->unprotect_rtp(wire.data(), wire.size(), &out), status::replay);
        }
    }
}

TEST(rfc7714, srtcp_protect_and_unprotect)
{
    for (engine e : own_engines()) {
        for (const auto& c : gcm_cases) {
            SCOPED_TRACE(label(c.s, e));
            auto tx = gcm_context(c, e);
            auto rx = gcm_context(c, e);
            ASSERT_TRUE(tx && rx);
            ASSERT_TRUE(tx->set_rtcp_tx_index(0x4d617273, 0x5d4));
            bytes plain = hex(rtcp_plain);
            bytes buf = plain;
            buf.resize(plain.size() + max_trailer);
            size_t out = 0;
            ASSERT_EQ(tx->protect_rtcp(buf.data(), plain.size(), buf.size(), &out), status::ok);
            buf.resize(out);
            EXPECT_EQ(buf, hex(c.rtcp));

            bytes wire = hex(c.rtcp);
            EXPECT_EQ(rx->verify_rtcp(wire.data(), wire.size()), status::ok);
            EXPECT_EQ(wire, hex(c.rtcp)) << "verify must not touch the buffer";
            EXPECT_EQ(rx->unprotect_rtcp(wire.data(), wire.size(), &out), status::replay);

            auto rx2 = gcm_context(c, e);
            ASSERT_EQ(rx2->unprotect_rtcp(wire.data(), wire.size(), &out), status::ok);
            wire.resize(out);
            EXPECT_EQ(wire, plain);
        }
    }
}

TEST(rfc7714, srtcp_unencrypted_is_accepted)
{
    for (engine e : own_engines()) {
        for (const auto& c : gcm_cases) {
            SCOPED_TRACE(label(c.s, e));
            auto rx = gcm_context(c, e);
            ASSERT_TRUE(rx);
            bytes wire = hex(c.rtcp_auth_only);
            size_t out = 0;
            ASSERT_EQ(rx->unprotect_rtcp(wire.data(), wire.size(), &out), status::ok);
            wire.resize(out);
            EXPECT_EQ(wire, hex(rtcp_plain));

            // One bit of the (unencrypted) body changed: rejected.
            auto rx2 = gcm_context(c, e);
            wire = hex(c.rtcp_auth_only);
            wire[20] ^= 1;
            EXPECT_EQ(rx2->unprotect_rtcp(wire.data(), wire.size(), &out), status::auth_fail);
        }
    }
}

// ---- ROC estimation (RFC 3711 §3.3.1) ------------------------------------------

TEST(roc, estimate_index)
{
    detail::replay_window_state w;
    EXPECT_EQ(detail::estimate_index(w, 65500), 65500u); // first packet: ROC 0
    w.accept(65500);
    EXPECT_EQ(detail::estimate_index(w, 3), 65536u + 3);   // wrapped: ROC 1
    EXPECT_EQ(detail::estimate_index(w, 65400), 65400u);   // late packet: ROC 0
    w.accept(65536 + 3);
    EXPECT_EQ(detail::estimate_index(w, 65530), 65530u);   // from before the wrap: ROC 0
    EXPECT_EQ(detail::estimate_index(w, 10), 65536u + 10); // after: ROC 1
    detail::replay_window_state w2;
    w2.accept(5);
    EXPECT_EQ(detail::estimate_index(w2, 65535), 65535u); // never ROC -1 early on
}

} // namespace
