// Memory of a context: where its bytes go (printed per suite x engine) and
// what the heap really grows by per context (malloc overhead and alignment
// included). A 1M-leg relay holds two contexts per leg, so these bytes are
// most of an SRTP leg's memory (README "Memory").
#include <malloc.h>

#include <cstdio>
#include <vector>

#include <gtest/gtest.h>

#include "tests/crypto/crypto_test_util.h"

using namespace isar::crypto;
using namespace isar::crypto::test;

namespace {

size_t heap_in_use()
{
    return mallinfo2().uordblks;
}

struct measured {
    detail::context_layout lay;
    size_t heap_per_ctx = 0;
};

measured measure(suite s, engine e)
{
    constexpr size_t n = 500;
    std::mt19937 rng(5);
    measured m;
    std::vector<std::unique_ptr<srtp_context>> v;
    v.reserve(n);
    std::string err;
    auto probe = srtp_context::create(random_key(s, rng), e, err);
    EXPECT_TRUE(probe) << err;
    if (!probe)
        return m;
    m.lay = dynamic_cast<detail::srtp_context_impl&>(*probe).layout();
    const size_t before = heap_in_use();
    for (size_t i = 0; i < n; i++)
        v.push_back(srtp_context::create(random_key(s, rng), e, err));
    m.heap_per_ctx = (heap_in_use() - before) / n;
    return m;
}

TEST(footprint, PrintsWhereTheBytesGo)
{
    std::printf("%-24s %-9s %7s %7s %7s %7s %7s\n", "suite", "engine", "object", "ssrc",
            "rtp_key", "rtcp_key", "heap/ctx");
    for (suite s : all_suites()) {
        for (engine e : all_engines()) {
            measured m = measure(s, e);
            std::printf("%-24s %-9s %7zu %7zu %7zu %7zu %7zu\n",
                    std::string(suite_name(s)).c_str(), engine_name(e), m.lay.object,
                    m.lay.ssrc_table, m.lay.rtp_keys, m.lay.rtcp_keys, m.heap_per_ctx);
            if (e == engine::libsrtp)
                continue; // libsrtp allocates streams itself
            // Isar's engines: the context is one block, nothing else on the heap.
            EXPECT_EQ(m.lay.heap, 0u);
            EXPECT_LE(m.heap_per_ctx, m.lay.object + 64) << suite_name(s) << engine_name(e);
        }
    }
}

TEST(footprint, CompactGcmKeepsLessWhereAvx512IsTheBest)
{
    if (!detail::ipsec_mb_available())
        GTEST_SKIP() << "no intel-ipsec-mb here";
    const measured best = measure(suite::aead_aes_128_gcm, engine::ipsec_mb);
    set_compact_gcm(true);
    const measured compact = measure(suite::aead_aes_128_gcm, engine::ipsec_mb);
    set_compact_gcm(false);
    std::printf("AEAD_AES_128_GCM ipsec_mb: %zu B per context, %zu B compact (schedules %zu, %zu)\n",
            best.heap_per_ctx, compact.heap_per_ctx, best.lay.rtp_keys, compact.lay.rtp_keys);
    EXPECT_LE(compact.lay.object, best.lay.object);
    if (detail::ipsec_mb_gcm_key_bytes(true) < detail::ipsec_mb_gcm_key_bytes(false))
        EXPECT_LT(compact.lay.object + 512, best.lay.object);
}

TEST(footprint, ReservedSlotsAreCountedAsHeap)
{
    std::mt19937 rng(6);
    std::string err;
    auto c = srtp_context::create(random_key(suite::aead_aes_128_gcm, rng), engine::boringssl,
            err);
    ASSERT_TRUE(c) << err;
    ASSERT_TRUE(c->reserve_ssrcs(512, 16));
    EXPECT_GT(dynamic_cast<detail::srtp_context_impl&>(*c).layout().heap, 504u * 56u);
}

} // namespace
