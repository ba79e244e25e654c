// Keys are wiped when a context is freed: after the destructors ran, the
// context's memory holds none of its session keys, salts or key schedules.
// The memory is seen through a hook in srtp_context_impl's operator delete.
#include <algorithm>

#include <gtest/gtest.h>

#include "tests/crypto/crypto_test_util.h"

using namespace isar::crypto;
using namespace isar::crypto::test;

namespace {

bytes g_freed; // the last freed context's memory, as the hook saw it

void grab(const void* p, size_t n)
{
    const auto* b = static_cast<const uint8_t*>(p);
    g_freed.assign(b, b + n);
}

// Whether `hay` holds the first 8 bytes of `needle`, in order or as
// byte-swapped 32-bit words (a software AES key schedule stores words).
bool holds(const bytes& hay, const uint8_t* needle)
{
    uint8_t sw[8];
    for (int i = 0; i < 8; i++)
        sw[i] = needle[(i & ~3) + 3 - (i & 3)];
    for (const uint8_t* n : {needle, static_cast<const uint8_t*>(sw)})
        if (std::search(hay.begin(), hay.end(), n, n + 8) != hay.end())
            return true;
    return false;
}

size_t nonzero(const bytes& b)
{
    return size_t(std::count_if(b.begin(), b.end(), [](uint8_t x) { return x != 0; }));
}

class wipe : public ::testing::TestWithParam<std::tuple<engine, suite>> {};

TEST_P(wipe, NoKeyByteOutlivesTheContext)
{
    const auto [e, s] = GetParam();
    std::mt19937 rng(21);
    const key_material km = random_key(s, rng);
    detail::session_keys k;
    ASSERT_TRUE(detail::derive_session_keys(km, k));
    std::string err;
    auto c = srtp_context::create(km, e, err);
    ASSERT_TRUE(c) << err;
    // Use it, SRTCP included (its schedule is expanded per packet).
    packet p = make_rtp(0x1234, 7, 100, rng);
    size_t out = 0;
    ASSERT_EQ(c->protect_rtp(p.data(), p.len, p.cap(), &out), status::ok);
    uint8_t rtcp[8 + 20 + max_trailer] = {0x80, 200, 0, 6, 0, 0, 0x12, 0x34};
    ASSERT_EQ(c->protect_rtcp(rtcp, 28, sizeof rtcp, &out), status::ok);

    // The test means something: the live object holds the RTP salt and the
    // RTP key (round key 0 of its schedule).
    const auto* obj = reinterpret_cast<const uint8_t*>(dynamic_cast<const void*>(c.get()));
    const size_t size = dynamic_cast<detail::srtp_context_impl&>(*c).layout().object;
    const bytes live(obj, obj + size);
    EXPECT_TRUE(holds(live, k.rtp_salt));
    EXPECT_TRUE(holds(live, k.rtp_key));
    EXPECT_TRUE(holds(live, k.rtcp_key)); // kept raw

    g_freed.clear();
    detail::srtp_context_impl::set_free_hook(grab);
    c.reset();
    detail::srtp_context_impl::set_free_hook(nullptr);
    ASSERT_EQ(g_freed.size(), size);
    for (const uint8_t* secret : {k.rtp_key, k.rtcp_key, k.rtp_salt, k.rtcp_salt, k.rtp_auth,
                 k.rtcp_auth}) {
        if (s >= suite::aead_aes_128_gcm && (secret == k.rtp_auth || secret == k.rtcp_auth))
            continue; // GCM has no auth keys
        EXPECT_FALSE(holds(g_freed, secret));
    }
    // Schedules are hundreds of bytes: what is left is the vtable pointer,
    // the prefetch list and the SSRC slots' (not secret) replay state.
    EXPECT_LT(nonzero(g_freed), 320u) << nonzero(live) << " nonzero bytes while alive";
    EXPECT_GT(nonzero(live), nonzero(g_freed) + 150);
}

std::vector<std::tuple<engine, suite>> cases()
{
    std::vector<std::tuple<engine, suite>> v;
    for (engine e : own_engines())
        for (suite s : all_suites())
            v.emplace_back(e, s);
    return v;
}

INSTANTIATE_TEST_SUITE_P(engines, wipe, ::testing::ValuesIn(cases()),
        [](const auto& i) {
            return std::string(engine_name(std::get<0>(i.param))) + "_" +
                   std::string(suite_name(std::get<1>(i.param)));
        });

} // namespace
