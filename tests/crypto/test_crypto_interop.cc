// Cross-check against libsrtp (the reference): for every suite and every
// engine, Isar protects -> libsrtp unprotects and libsrtp protects -> Isar
// unprotects (and verifies), RTP and RTCP, random payloads, sizes and header
// shapes, across a sequence-number wrap (ROC 0 -> 1) with some reordering.
#include <mutex>

#include <gtest/gtest.h>
#include <srtp2/srtp.h>

#include "tests/crypto/crypto_test_util.h"

using namespace isar::crypto;
using namespace isar::crypto::test;

namespace {

// A libsrtp session with one explicit-SSRC stream.
class ref_session {
public:
    ref_session(const key_material& km, uint32_t ssrc)
    {
        std::string err;
        EXPECT_TRUE(isar::crypto::detail::libsrtp_init(err)) << err;
        srtp_policy_t p;
        std::memset(&p, 0, sizeof p);
        switch (km.s) {
        case suite::aes_cm_128_hmac_sha1_80:
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtp);
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);
            break;
        case suite::aes_cm_128_hmac_sha1_32:
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p.rtp);
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);
            break;
        case suite::aead_aes_128_gcm:
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtp);
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtcp);
            break;
        case suite::aead_aes_256_gcm:
            srtp_crypto_policy_set_aes_gcm_256_16_auth(&p.rtp);
            srtp_crypto_policy_set_aes_gcm_256_16_auth(&p.rtcp);
            break;
        case suite::none:
            break;
        }
        uint8_t key[64];
        std::memcpy(key, km.key, km.key_len());
        std::memcpy(key + km.key_len(), km.salt, km.salt_len());
        p.key = key;
        p.ssrc.type = ssrc_specific;
        p.ssrc.value = ssrc;
        p.window_size = 128;
        EXPECT_EQ(srtp_create(&s_, &p), srtp_err_status_ok);
    }
    ~ref_session() { srtp_dealloc(s_); }
    srtp_t get() { return s_; }

private:
    srtp_t s_ = nullptr;
};

struct interop : ::testing::TestWithParam<std::tuple<suite, engine>> {};

// Packets in send order, with pairs swapped around the wrap to exercise the
// ROC estimate on reordered input.
std::vector<size_t> delivery_order(size_t n)
{
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) {
        order[i] = i;
    }
    for (size_t i = 30; i + 1 < 45 && i + 1 < n; i += 3) {
        std::swap(order[i], order[i + 1]);
    }
    return order;
}

packet random_rtp(uint32_t ssrc, uint16_t seq, std::mt19937& rng)
{
    size_t payload = rng() % 4 == 0 ? 1200 + rng() % 200 : rng() % 300;
    unsigned csrcs = rng() % 3 == 0 ? rng() % 4 : 0;
    int ext = rng() % 3 == 0 ? int(rng() % 4) : -1;
    return make_rtp(ssrc, seq, payload, rng, csrcs, ext);
}

TEST_P(interop, isar_protects_libsrtp_unprotects)
{
    auto [s, e] = GetParam();
    std::mt19937 rng(1234 + int(s) * 10 + int(e));
    key_material km = random_key(s, rng);
    const uint32_t ssrc = 0x11223344;
    std::string err;
    auto tx = srtp_context::create(km, e, err);
    ASSERT_TRUE(tx) << err;
    ASSERT_EQ(tx->get_engine(), e);
    ref_session ref(km, ssrc);

    const size_t n = 100;
    std::vector<packet> plain, wire;
    for (size_t i = 0; i < n; ++i) {
        packet p = random_rtp(ssrc, uint16_t(65500 + i), rng); // wraps after 36
        packet w = p;
        ASSERT_EQ(tx->protect_rtp(w.data(), w.len, w.cap(), &w.len), status::ok) << i;
        ASSERT_EQ(w.len, p.len + suite_rtp_tag_len(s));
        plain.push_back(std::move(p));
        wire.push_back(std::move(w));
    }
    for (size_t i : delivery_order(n)) {
        packet w = wire[i];
        int len = int(w.len);
        ASSERT_EQ(srtp_unprotect(ref.get(), w.data(), &len), srtp_err_status_ok) << "packet " << i;
        w.len = size_t(len);
        ASSERT_EQ(w.view(), plain[i].view()) << "packet " << i;
    }

    // SRTCP: Isar sends, libsrtp receives.
    for (size_t i = 0; i < 20; ++i) {
        packet p = make_rtcp(ssrc, 1 + rng() % 60, rng);
        packet w = p;
        ASSERT_EQ(tx->protect_rtcp(w.data(), w.len, w.cap(), &w.len), status::ok);
        ASSERT_EQ(w.len, p.len + 4 + suite_rtcp_tag_len(s));
        int len = int(w.len);
        ASSERT_EQ(srtp_unprotect_rtcp(ref.get(), w.data(), &len), srtp_err_status_ok) << i;
        w.len = size_t(len);
        ASSERT_EQ(w.view(), p.view());
    }
}

TEST_P(interop, libsrtp_protects_isar_unprotects)
{
    auto [s, e] = GetParam();
    std::mt19937 rng(4321 + int(s) * 10 + int(e));
    key_material km = random_key(s, rng);
    const uint32_t ssrc = 0xcafe0001;
    std::string err;
    auto rx = srtp_context::create(km, e, err);
    auto rx_verify = srtp_context::create(km, e, err);
    ASSERT_TRUE(rx && rx_verify) << err;
    ref_session ref(km, ssrc);

    const size_t n = 100;
    std::vector<packet> plain, wire;
    for (size_t i = 0; i < n; ++i) {
        packet p = random_rtp(ssrc, uint16_t(65500 + i), rng);
        packet w = p;
        int len = int(w.len);
        ASSERT_EQ(srtp_protect(ref.get(), w.data(), &len), srtp_err_status_ok);
        w.len = size_t(len);
        plain.push_back(std::move(p));
        wire.push_back(std::move(w));
    }
    for (size_t i : delivery_order(n)) {
        packet w = wire[i];
        ASSERT_EQ(rx_verify->verify_rtp(w.data(), w.len), status::ok) << "packet " << i;
        ASSERT_EQ(w.view(), wire[i].view()) << "verify changed the buffer";
        ASSERT_EQ(rx->unprotect_rtp(w.data(), w.len, &w.len), status::ok) << "packet " << i;
        ASSERT_EQ(w.view(), plain[i].view()) << "packet " << i;
    }
    // Every one of them is now a replay.
    for (size_t i = 0; i < n; i += 7) {
        packet w = wire[i];
        EXPECT_EQ(rx->unprotect_rtp(w.data(), w.len, &w.len), status::replay) << i;
        EXPECT_EQ(rx_verify->verify_rtp(wire[i].data(), wire[i].len), status::replay) << i;
    }

    for (size_t i = 0; i < 20; ++i) {
        packet p = make_rtcp(ssrc, 1 + rng() % 60, rng);
        packet w = p;
        int len = int(w.len);
        ASSERT_EQ(srtp_protect_rtcp(ref.get(), w.data(), &len), srtp_err_status_ok);
        w.len = size_t(len);
        packet v = w;
        ASSERT_EQ(rx_verify->verify_rtcp(v.data(), v.len), status::ok) << i;
        ASSERT_EQ(v.view(), w.view());
        ASSERT_EQ(rx->unprotect_rtcp(w.data(), w.len, &w.len), status::ok) << i;
        ASSERT_EQ(w.view(), p.view());
    }
}

// Isar to Isar across engines: every engine reads what every other one wrote.
TEST(interop_engines, every_pair)
{
    std::mt19937 rng(99);
    for (suite s : all_suites()) {
        key_material km = random_key(s, rng);
        for (engine a : all_engines()) {
            for (engine b : all_engines()) {
                SCOPED_TRACE(label(s, a) + " -> " + engine_name(b));
                std::string err;
                auto tx = srtp_context::create(km, a, err);
                auto rx = srtp_context::create(km, b, err);
                ASSERT_TRUE(tx && rx) << err;
                for (int i = 0; i < 20; ++i) {
                    packet p = random_rtp(7, uint16_t(i * 3000), rng);
                    packet w = p;
                    ASSERT_EQ(tx->protect_rtp(w.data(), w.len, w.cap(), &w.len), status::ok);
                    ASSERT_EQ(rx->unprotect_rtp(w.data(), w.len, &w.len), status::ok) << i;
                    ASSERT_EQ(w.view(), p.view());
                    packet r = make_rtcp(7, rng() % 30, rng);
                    packet rw = r;
                    ASSERT_EQ(tx->protect_rtcp(rw.data(), rw.len, rw.cap(), &rw.len), status::ok);
                    ASSERT_EQ(rx->unprotect_rtcp(rw.data(), rw.len, &rw.len), status::ok) << i;
                    ASSERT_EQ(rw.view(), r.view());
                }
            }
        }
    }
}

std::vector<std::tuple<suite, engine>> params()
{
    std::vector<std::tuple<suite, engine>> v;
    for (suite s : all_suites()) {
        for (engine e : all_engines()) {
            v.emplace_back(s, e);
        }
    }
    return v;
}

INSTANTIATE_TEST_SUITE_P(all, interop, ::testing::ValuesIn(params()),
        [](const auto& tp) {
            return std::string(suite_name(std::get<0>(tp.param))) + "_" +
                   engine_name(std::get<1>(tp.param));
        });

} // namespace
