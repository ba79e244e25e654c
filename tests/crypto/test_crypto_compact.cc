// ipsec_mb keeps only the bytes of intel-ipsec-mb's gcm_key_data that its GCM
// code reads (384 of 1008 for the AVX2 code): proven with an unmapped page
// right after them, and by round trips against BoringSSL with
// set_compact_gcm() on and off.
#include <gtest/gtest.h>

#include "tests/crypto/crypto_test_util.h"

using namespace isar::crypto;
using namespace isar::crypto::test;

namespace {

struct compact_guard {
    explicit compact_guard(bool on) { set_compact_gcm(on); }
    ~compact_guard() { set_compact_gcm(false); }
};

TEST(compact_gcm, NoReadPastTheKeptBytes)
{
    if (!detail::ipsec_mb_available())
        GTEST_SKIP() << "no intel-ipsec-mb here";
    for (bool compact : {false, true}) {
        std::string err;
        EXPECT_TRUE(detail::ipsec_mb_gcm_guard_check(compact, 9000, err))
                << (compact ? "compact: " : "best: ") << err;
    }
    EXPECT_LE(detail::ipsec_mb_gcm_key_bytes(true), detail::ipsec_mb_gcm_key_bytes(false));
}

// One packet each way, RTP and RTCP, between a and b (same key).
void round_trip(srtp_context& tx, srtp_context& rx, uint32_t ssrc, uint16_t seq, size_t payload,
        std::mt19937& rng)
{
    packet p = make_rtp(ssrc, seq, payload, rng);
    const bytes plain = p.view();
    size_t out = 0;
    ASSERT_EQ(tx.protect_rtp(p.data(), p.len, p.cap(), &out), status::ok);
    p.len = out;
    ASSERT_EQ(rx.unprotect_rtp(p.data(), p.len, &out), status::ok) << payload;
    p.len = out;
    EXPECT_EQ(p.view(), plain);
    packet c = make_rtcp(ssrc, 1 + payload / 64, rng);
    const bytes cplain = c.view();
    ASSERT_EQ(tx.protect_rtcp(c.data(), c.len, c.cap(), &out), status::ok);
    c.len = out;
    ASSERT_EQ(rx.unprotect_rtcp(c.data(), c.len, &out), status::ok);
    c.len = out;
    EXPECT_EQ(c.view(), cplain);
}

TEST(compact_gcm, AgreesWithBoringssl)
{
    if (!detail::ipsec_mb_available())
        GTEST_SKIP() << "no intel-ipsec-mb here";
    for (bool compact : {false, true}) {
        compact_guard g(compact);
        std::mt19937 rng(compact ? 2 : 1);
        for (suite s : {suite::aead_aes_128_gcm, suite::aead_aes_256_gcm}) {
            const key_material km = random_key(s, rng);
            std::string err;
            auto imb_tx = srtp_context::create(km, engine::ipsec_mb, err);
            auto imb_rx = srtp_context::create(km, engine::ipsec_mb, err);
            auto bs_tx = srtp_context::create(km, engine::boringssl, err);
            auto bs_rx = srtp_context::create(km, engine::boringssl, err);
            ASSERT_TRUE(imb_tx && imb_rx && bs_tx && bs_rx) << err;
            const size_t keys = dynamic_cast<detail::srtp_context_impl&>(*imb_tx).layout().rtp_keys;
            EXPECT_LE(keys, detail::ipsec_mb_gcm_key_bytes(compact) + 64);
            for (uint16_t seq = 1; seq < 200; seq++) {
                const size_t payload = seq < 190 ? rng() % 1500 : 1500 + rng() % 8000;
                round_trip(*imb_tx, *bs_rx, 0xabc, seq, payload, rng);
                round_trip(*bs_tx, *imb_rx, 0xdef, seq, payload, rng);
            }
        }
    }
}

} // namespace
