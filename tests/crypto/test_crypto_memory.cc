// Where contexts live (set_context_memory): every engine's context comes
// from the installed allocator, aligned as the object needs, works there and
// goes back to it when freed; when the allocator has no room the C++ heap
// serves, and such a context is freed by the C++ heap (ASan checks the
// pairing). The wipe hook still sees the memory first.
#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

#include "tests/crypto/crypto_test_util.h"

using namespace isar::crypto;
using namespace isar::crypto::test;

namespace {

// A pool the test owns: what it handed out, and what came back.
struct pool {
    bool full = false;
    std::vector<std::pair<void*, size_t>> out; // pointer, alignment asked
    std::vector<void*> back;
    size_t asked = 0; // allocations asked for, served or not
};
pool g_pool;

void* pool_alloc(size_t n, size_t align) noexcept
{
    g_pool.asked++;
    if (g_pool.full)
        return nullptr;
    void* p = ::operator new(n, std::align_val_t{std::max(align, sizeof(void*))}, std::nothrow);
    if (p != nullptr)
        g_pool.out.emplace_back(p, align);
    return p;
}

bool pool_release(void* p) noexcept
{
    auto it = std::find_if(g_pool.out.begin(), g_pool.out.end(),
                           [p](const auto& e) { return e.first == p; });
    if (it == g_pool.out.end())
        return false; // not ours: the C++ heap's
    ::operator delete(p, std::align_val_t{std::max(it->second, sizeof(void*))});
    g_pool.back.push_back(p);
    g_pool.out.erase(it);
    return true;
}

class memory : public ::testing::TestWithParam<std::tuple<engine, suite>> {
protected:
    void SetUp() override
    {
        g_pool = {};
        set_context_memory({pool_alloc, pool_release});
    }
    void TearDown() override { set_context_memory({}); }
};

// A context protects and a second one with the same keys unprotects: both
// live in the pool's memory.
void round_trip(srtp_context& tx, srtp_context& rx, uint32_t ssrc = 0x4242)
{
    std::mt19937 rng(5);
    packet p = make_rtp(ssrc, 9, 160, rng);
    const bytes clear(p.buf.begin(), p.buf.begin() + static_cast<long>(p.len));
    size_t out = 0, back = 0;
    ASSERT_EQ(tx.protect_rtp(p.data(), p.len, p.cap(), &out), status::ok);
    ASSERT_EQ(rx.unprotect_rtp(p.data(), out, &back), status::ok);
    ASSERT_EQ(back, clear.size());
    EXPECT_TRUE(std::equal(clear.begin(), clear.end(), p.buf.begin()));
}

const void* object_of(const srtp_context& c) { return dynamic_cast<const void*>(&c); }

TEST_P(memory, ContextsComeFromAndGoBackToTheAllocator)
{
    const auto [e, s] = GetParam();
    std::mt19937 rng(3);
    const key_material km = random_key(s, rng);
    std::string err;
    auto tx = srtp_context::create(km, e, err);
    ASSERT_TRUE(tx) << err;
    auto rx = srtp_context::create(km, e, err);
    ASSERT_TRUE(rx) << err;
    ASSERT_EQ(g_pool.out.size(), 2u);
    for (const srtp_context* c : {tx.get(), rx.get()}) {
        const void* obj = object_of(*c);
        auto it = std::find_if(g_pool.out.begin(), g_pool.out.end(),
                               [obj](const auto& x) { return x.first == obj; });
        ASSERT_NE(it, g_pool.out.end()) << "a context outside the allocator's memory";
        // Asked for the alignment the object has (the engines' are 64).
        EXPECT_EQ(reinterpret_cast<uintptr_t>(obj) % it->second, 0u);
        if (e != engine::libsrtp)
            EXPECT_GE(it->second, 64u);
    }
    round_trip(*tx, *rx);

    const void* tx_obj = object_of(*tx);
    tx.reset();
    ASSERT_EQ(g_pool.back.size(), 1u);
    EXPECT_EQ(g_pool.back[0], tx_obj);
    rx.reset();
    EXPECT_EQ(g_pool.back.size(), 2u);
    EXPECT_TRUE(g_pool.out.empty());
}

TEST_P(memory, AFullAllocatorLeavesContextsToTheHeap)
{
    const auto [e, s] = GetParam();
    std::mt19937 rng(4);
    const key_material km = random_key(s, rng);
    std::string err;
    g_pool.full = true;
    auto tx = srtp_context::create(km, e, err);
    ASSERT_TRUE(tx) << err;
    g_pool.full = false;
    auto rx = srtp_context::create(km, e, err); // one from each
    ASSERT_TRUE(rx) << err;
    EXPECT_EQ(g_pool.asked, 2u);
    ASSERT_EQ(g_pool.out.size(), 1u);
    EXPECT_EQ(g_pool.out[0].first, object_of(*rx));
    round_trip(*tx, *rx);
    round_trip(*rx, *tx, 0x4343);
    tx.reset(); // the heap's: not handed to the pool
    EXPECT_TRUE(g_pool.back.empty());
    rx.reset();
    EXPECT_EQ(g_pool.back.size(), 1u);
}

// The wipe hook (test_crypto_wipe) still runs before the memory goes back.
TEST_P(memory, TheWipeHookSeesPoolMemory)
{
    const auto [e, s] = GetParam();
    if (e == engine::libsrtp)
        GTEST_SKIP() << "libsrtp keeps its keys in its own allocations";
    std::mt19937 rng(6);
    std::string err;
    auto c = srtp_context::create(random_key(s, rng), e, err);
    ASSERT_TRUE(c) << err;
    static const void* seen = nullptr;
    seen = nullptr;
    detail::srtp_context_impl::set_free_hook([](const void* p, size_t) { seen = p; });
    const void* obj = object_of(*c);
    c.reset();
    detail::srtp_context_impl::set_free_hook(nullptr);
    EXPECT_EQ(seen, obj);
    ASSERT_EQ(g_pool.back.size(), 1u);
    EXPECT_EQ(g_pool.back[0], obj);
}

std::vector<std::tuple<engine, suite>> cases()
{
    std::vector<std::tuple<engine, suite>> v;
    for (engine e : all_engines())
        for (suite s : {suite::aes_cm_128_hmac_sha1_80, suite::aead_aes_128_gcm})
            v.emplace_back(e, s);
    return v;
}

INSTANTIATE_TEST_SUITE_P(engines, memory, ::testing::ValuesIn(cases()),
        [](const auto& i) {
            return std::string(engine_name(std::get<0>(i.param))) + "_" +
                   std::string(suite_name(std::get<1>(i.param)));
        });

} // namespace
