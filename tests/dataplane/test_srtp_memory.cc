// SRTP contexts on the DPDK heap (dataplane/srtp_memory.h): the slabs'
// strides, and thousands of contexts filling slabs and giving them back.
// (test_srtp_relay checks the contexts of sessions made through control.)
#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <rte_malloc.h>
#include <rte_memory.h>

#include "crypto/srtp_context.h"
#include "crypto/srtp_internal.h"
#include "crypto/suite.h"
#include "dataplane/srtp_memory.h"
#include "tests/support/eal_env.h"

using namespace isar;

ISAR_TEST_EAL_ENV("test_srtp_memory");

namespace {

crypto::key_material make_key(crypto::suite s, uint8_t seed)
{
    crypto::key_material k;
    k.s = s;
    for (size_t i = 0; i < sizeof k.key; i++)
        k.key[i] = static_cast<uint8_t>(seed * 31 + i);
    for (size_t i = 0; i < sizeof k.salt; i++)
        k.salt[i] = static_cast<uint8_t>(seed * 17 + i);
    return k;
}

size_t heap_used()
{
    size_t used = 0;
    for (unsigned k = 0; k < RTE_MAX_NUMA_NODES; k++) {
        rte_malloc_socket_stats st{};
        if (rte_malloc_get_socket_stats(static_cast<int>(k), &st) == 0)
            used += st.heap_allocsz_bytes;
    }
    return used;
}

class Placed : public ::testing::Environment {
    void SetUp() override { ASSERT_TRUE(dp::place_srtp_contexts(true)); }
    void TearDown() override { crypto::set_context_memory({}); }
};
[[maybe_unused]] ::testing::Environment* const placed =
        ::testing::AddGlobalTestEnvironment(new Placed);

TEST(SrtpSlab, StrideIsAnOddNumberOfLines)
{
    EXPECT_EQ(dp::srtp_slab_stride(960, 64), 960u);   // 15 lines
    EXPECT_EQ(dp::srtp_slab_stride(1024, 64), 1088u); // 16 -> 17
    EXPECT_EQ(dp::srtp_slab_stride(1000, 64), 1088u);
    EXPECT_EQ(dp::srtp_slab_stride(1600, 64), 1600u);
    EXPECT_EQ(dp::srtp_slab_stride(40, 16), 48u);     // not whole lines: as it is
    EXPECT_EQ(dp::srtp_slab_stride(200, 128), 256u);  // wider alignment: as it is
    EXPECT_EQ(dp::srtp_slab_stride(3, 1), 8u);
}

// Thousands of contexts (several slabs, two size classes): each its own
// memory, each working; freed in any order, every slab goes back to the
// DPDK heap.
TEST(SrtpSlab, FillAndEmpty)
{
    const size_t used0 = heap_used();
    const uint64_t live0 = dp::srtp_context_counts().dpdk_heap;
    const crypto::key_material kg = make_key(crypto::suite::aead_aes_128_gcm, 1);
    const crypto::key_material kc = make_key(crypto::suite::aes_cm_128_hmac_sha1_80, 2);
    std::vector<std::unique_ptr<crypto::srtp_context>> v;
    std::string err;
    for (unsigned i = 0; i < 3000; i++) {
        v.push_back(crypto::srtp_context::create(i % 3 ? kg : kc,
                                                 crypto::engine::auto_select, err));
        ASSERT_TRUE(v.back()) << err;
    }
    EXPECT_EQ(dp::srtp_context_counts().dpdk_heap, live0 + v.size());
    const size_t peak = heap_used();
    EXPECT_GT(heap_used(), used0 + 3000 * 1024);
    std::vector<std::pair<uintptr_t, size_t>> spans;
    for (auto& c : v) {
        const void* o = dynamic_cast<const void*>(c.get());
        ASSERT_NE(rte_mem_virt2memseg_list(o), nullptr);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(o) % 64, 0u);
        spans.emplace_back(reinterpret_cast<uintptr_t>(o),
                           dynamic_cast<crypto::detail::srtp_context_impl&>(*c).layout().object);
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); i++) {
        ASSERT_LE(spans[i - 1].first + spans[i - 1].second, spans[i].first) << i;
        // Neighbours of one class are an odd number of lines apart (the same
        // field of each context spread over the cache's sets).
        const uintptr_t d = spans[i].first - spans[i - 1].first;
        if (spans[i].second == spans[i - 1].second && d < 4096)
            EXPECT_EQ(d / 64 % 2, 1u) << d;
    }
    // Each protects a packet its twin (same key, the other end) opens.
    for (unsigned i = 0; i < 12; i++) {
        std::string e;
        auto twin = crypto::srtp_context::create(i % 3 ? kg : kc, crypto::engine::auto_select, e);
        ASSERT_TRUE(twin) << e;
        uint8_t p[12 + 160 + crypto::max_trailer] = {0x80, 0, 0, 1, 0, 0, 0, 0};
        p[8] = static_cast<uint8_t>(i);
        uint8_t sent[12 + 160];
        std::memcpy(sent, p, sizeof sent);
        size_t len = 0, back = 0;
        ASSERT_EQ(v[i]->protect_rtp(p, sizeof sent, sizeof p, &len), crypto::status::ok) << i;
        ASSERT_EQ(twin->unprotect_rtp(p, len, &back), crypto::status::ok) << i;
        ASSERT_EQ(back, sizeof sent);
        EXPECT_EQ(std::memcmp(p, sent, sizeof sent), 0) << i;
    }
    std::mt19937 rng(9);
    std::shuffle(v.begin(), v.end(), rng);
    v.resize(1000); // two thirds freed, in no order
    EXPECT_EQ(dp::srtp_context_counts().dpdk_heap, live0 + 1000);
    for (unsigned i = 0; i < 2000; i++) { // reuse of the freed slots
        v.push_back(crypto::srtp_context::create(i % 2 ? kg : kc,
                                                 crypto::engine::auto_select, err));
        ASSERT_TRUE(v.back()) << err;
    }
    // The freed slots were used again: no slab more than at the start.
    EXPECT_LE(heap_used(), peak);
    v.clear();
    EXPECT_EQ(dp::srtp_context_counts().dpdk_heap, live0);
    // Every slab back but at most one empty one per size class (two here).
    EXPECT_LE(heap_used(), used0 + 2 * ((size_t{2} << 20) + 4096));
    EXPECT_LT(heap_used(), peak);
    EXPECT_EQ(dp::srtp_context_counts().cxx_fallbacks, 0u);
}

// A call made and ended at a slab's edge, over and over: the empty slab is
// kept for the next, not unmapped and mapped again each time.
TEST(SrtpSlab, EdgeChurnKeepsTheSlab)
{
    const crypto::key_material k = make_key(crypto::suite::aead_aes_128_gcm, 3);
    std::vector<std::unique_ptr<crypto::srtp_context>> v;
    std::string err;
    size_t before = heap_used();
    for (unsigned i = 0; i < 5000; i++) { // until one opens a slab
        v.push_back(crypto::srtp_context::create(k, crypto::engine::auto_select, err));
        ASSERT_TRUE(v.back()) << err;
        if (heap_used() > before)
            break;
        before = heap_used();
    }
    const size_t edge = heap_used();
    ASSERT_GT(edge, before) << "no slab opened in 5000 contexts";
    for (unsigned round = 0; round < 100; round++) {
        v.pop_back(); // the new slab's only context
        ASSERT_EQ(heap_used(), edge) << round;
        v.push_back(crypto::srtp_context::create(k, crypto::engine::auto_select, err));
        ASSERT_TRUE(v.back()) << err;
        ASSERT_EQ(heap_used(), edge) << round;
    }
    v.clear();
    EXPECT_LT(heap_used(), edge);
}

} // namespace
