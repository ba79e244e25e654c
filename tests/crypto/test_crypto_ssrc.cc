// SSRC slots: the inline table, the reserved overflow of a conference
// target's outbound context, idle eviction (LRU) and the per-source quota.
// "Still holds state" is checked through protect: re-protecting a (SSRC, SEQ)
// it already protected is refused (status::replay) only while the SSRC keeps
// its slot; a recycled slot starts afresh.
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "crypto/ssrc_table.h"
#include "tests/crypto/crypto_test_util.h"

using namespace isar::crypto;
using namespace isar::crypto::test;

namespace {

struct clock_guard {
    explicit clock_guard(uint32_t s) { set_clock_seconds(s); }
    ~clock_guard() { set_clock_seconds(0); }
};

std::unique_ptr<srtp_context> make(engine e, suite s = suite::aes_cm_128_hmac_sha1_80)
{
    static std::mt19937 rng(99);
    std::string err;
    auto c = srtp_context::create(random_key(s, rng), e, err);
    EXPECT_TRUE(c) << err;
    return c;
}

status protect_one(srtp_context& c, uint32_t ssrc, uint16_t seq)
{
    uint8_t buf[12 + 20 + max_trailer] = {0x80, 96};
    buf[2] = uint8_t(seq >> 8);
    buf[3] = uint8_t(seq);
    buf[8] = uint8_t(ssrc >> 24);
    buf[9] = uint8_t(ssrc >> 16);
    buf[10] = uint8_t(ssrc >> 8);
    buf[11] = uint8_t(ssrc);
    size_t out = 0;
    return c.protect_rtp(buf, 32, sizeof buf, &out);
}

// Slot kept <=> the same index is refused a second time.
bool holds(srtp_context& c, uint32_t ssrc, uint16_t seq)
{
    return protect_one(c, ssrc, seq) == status::replay;
}

class each_own : public ::testing::TestWithParam<engine> {};

TEST_P(each_own, InlineTableIsEightAndReservedIsWhatWasAsked)
{
    auto c = make(GetParam());
    EXPECT_EQ(c->ssrc_capacity(), max_ssrcs);
    for (uint32_t s = 1; s <= max_ssrcs; s++)
        ASSERT_EQ(protect_one(*c, s, 1), status::ok);
    EXPECT_EQ(protect_one(*c, 100, 1), status::ssrc_limit); // none idle: clock never moved

    auto big = make(GetParam(), suite::aead_aes_128_gcm);
    ASSERT_TRUE(big->reserve_ssrcs(600, 0));
    EXPECT_EQ(big->ssrc_capacity(), 600u);
    for (uint32_t s = 0; s < 600; s++)
        ASSERT_EQ(protect_one(*big, 0x1000 + s * 7919, 1), status::ok) << s;
    EXPECT_EQ(protect_one(*big, 5, 1), status::ssrc_limit);
    for (uint32_t s = 0; s < 600; s++)
        ASSERT_TRUE(holds(*big, 0x1000 + s * 7919, 1)) << s; // every one found again
    EXPECT_FALSE(big->reserve_ssrcs(1000, 0)); // not once in use
    EXPECT_FALSE(make(GetParam())->reserve_ssrcs(max_reserved_ssrcs + 1, 0));
}

TEST_P(each_own, IdleSlotsAreRecycledLeastRecentlyUsedFirst)
{
    clock_guard g(1000);
    auto c = make(GetParam());
    for (uint32_t s = 1; s <= max_ssrcs; s++) {
        set_clock_seconds(1000 + s); // SSRC 1 oldest
        ASSERT_EQ(protect_one(*c, s, 1), status::ok);
    }
    set_clock_seconds(1000 + ssrc_idle_evict_s); // SSRC 1 idle for 9 s: not yet
    EXPECT_EQ(protect_one(*c, 50, 1), status::ssrc_limit);
    EXPECT_TRUE(holds(*c, 1, 1));
    set_clock_seconds(1001 + ssrc_idle_evict_s);
    EXPECT_EQ(protect_one(*c, 50, 1), status::ok); // took SSRC 1's slot
    // SSRC 1 lost its slot (asking for one again finds none idle: ssrc_limit).
    EXPECT_FALSE(holds(*c, 1, 1)) << "SSRC 1 (the oldest) should have lost its slot";
    for (uint32_t s = 2; s <= max_ssrcs; s++)
        EXPECT_TRUE(holds(*c, s, 1)) << s; // younger ones untouched
}

TEST_P(each_own, OneSourceSprayingSsrcsRecyclesOnlyItsOwnSlots)
{
    auto c = make(GetParam());
    ASSERT_TRUE(c->reserve_ssrcs(512, 16));
    relay_begin(1); // a participant with audio, video, RTX
    for (uint32_t s = 1; s <= 3; s++)
        ASSERT_EQ(protect_one(*c, s, 1), status::ok);
    relay_begin(2); // another one sprays 5000 new SSRCs
    for (uint32_t s = 0; s < 5000; s++)
        ASSERT_EQ(protect_one(*c, 0x10000 + s, 1), status::ok) << s;
    relay_begin(3); // ... and 200 participants still get slots
    for (uint32_t s = 0; s < 200; s++) {
        relay_begin(uint8_t(3 + s % 200));
        ASSERT_EQ(protect_one(*c, 0x90000 + s, 1), status::ok) << s;
    }
    relay_begin(1);
    for (uint32_t s = 1; s <= 3; s++)
        EXPECT_TRUE(holds(*c, s, 1)) << "participant 1's SSRC " << s << " was evicted";
    relay_begin(2); // the sprayer keeps its 16 most recent
    EXPECT_TRUE(holds(*c, 0x10000 + 4999, 1));
    EXPECT_FALSE(holds(*c, 0x10000 + 4983, 1));
    relay_end();
}

TEST_P(each_own, InboundReplayIsRefusedWhileTheSsrcHoldsItsSlot)
{
    // The documented limit of eviction: only an SSRC idle for
    // ssrc_idle_evict_s may lose its window; until then a replay is refused,
    // and a full table of active SSRCs refuses new ones rather than evict.
    clock_guard g(500);
    std::mt19937 rng(5);
    const key_material k = random_key(suite::aes_cm_128_hmac_sha1_80, rng);
    std::string err;
    auto tx = srtp_context::create(k, GetParam(), err);
    auto rx = srtp_context::create(k, GetParam(), err);
    ASSERT_TRUE(tx && rx) << err;
    ASSERT_TRUE(tx->reserve_ssrcs(64, 0));
    std::vector<packet> first;
    for (uint32_t s = 1; s <= max_ssrcs + 1; s++) {
        packet p = make_rtp(s, 7, 40, rng);
        size_t out = 0;
        ASSERT_EQ(tx->protect_rtp(p.buf.data(), p.len, p.buf.size(), &out), status::ok);
        p.len = out;
        first.push_back(p);
    }
    for (uint32_t i = 0; i < max_ssrcs; i++) {
        packet p = first[i];
        size_t out = 0;
        ASSERT_EQ(rx->unprotect_rtp(p.buf.data(), p.len, &out), status::ok);
    }
    packet extra = first[max_ssrcs];
    size_t out = 0;
    EXPECT_EQ(rx->unprotect_rtp(extra.buf.data(), extra.len, &out), status::ssrc_limit);
    set_clock_seconds(500 + ssrc_idle_evict_s - 1);
    packet replay = first[0];
    EXPECT_EQ(rx->unprotect_rtp(replay.buf.data(), replay.len, &out), status::replay);
}

INSTANTIATE_TEST_SUITE_P(engines, each_own, ::testing::ValuesIn(own_engines()),
                         [](const auto& p) { return std::string(engine_name(p.param)); });

// The overflow hash (linear probing, backward-shift deletion) against a
// model, through many evictions.
TEST(ssrc_table, FindAgreesWithAModelThroughEvictions)
{
    clock_guard g(1);
    isar::crypto::detail::ssrc_table t;
    ASSERT_TRUE(t.reserve(40, 0));
    std::mt19937 rng(3);
    std::map<uint32_t, uint32_t> present; // ssrc -> clock of last touch
    uint32_t now = 1;
    for (int round = 0; round < 20000; round++) {
        if (rng() % 8 == 0)
            set_clock_seconds(now += 3);
        const uint32_t ssrc = rng() % 200; // small space: many hits and collisions
        auto* s = t.find(ssrc);
        ASSERT_EQ(s != nullptr, present.count(ssrc) == 1) << round;
        if (s == nullptr) {
            s = t.claim(ssrc);
            if (s == nullptr) {
                ASSERT_EQ(present.size(), 40u);
                for (auto& [k, at] : present)
                    ASSERT_LT(now - at, ssrc_idle_evict_s) << "an idle slot was not recycled";
                continue;
            }
            // Exactly one idle SSRC left the table, or none when there was room.
            for (auto it = present.begin(); it != present.end(); ++it)
                if (t.find(it->first) == nullptr) {
                    ASSERT_GE(now - it->second, ssrc_idle_evict_s);
                    present.erase(it);
                    break;
                }
            s = t.find(ssrc);
            ASSERT_NE(s, nullptr);
        }
        ASSERT_EQ(s->ssrc, ssrc);
        t.touch(s);
        present[ssrc] = now;
        ASSERT_LE(present.size(), 40u);
    }
}

} // namespace

// The 20-byte SRTCP window answers exactly as the 24-byte RTP window for
// 31-bit indices: random walks with jumps, reordering and replays.
TEST(replay_windows, RtcpWindowAgreesWithTheRtpWindow)
{
    std::mt19937 rng(31);
    for (int walk = 0; walk < 200; walk++) {
        isar::crypto::detail::replay_window_state a;
        isar::crypto::detail::rtcp_window_state b;
        uint32_t top = rng() % 1000;
        for (int i = 0; i < 2000; i++) {
            uint32_t idx;
            switch (rng() % 6) {
            case 0: // far ahead
                idx = std::min<uint32_t>(top + 64 + rng() % 200, 0x7fffffff);
                break;
            case 1: // a little ahead
                idx = std::min<uint32_t>(top + 1 + rng() % 3, 0x7fffffff);
                break;
            default: // around the window's edge, replays included
                idx = top >= 140 ? top - rng() % 140 : rng() % (top + 1);
                break;
            }
            if (walk == 0 && i == 0)
                idx = 0x7fffffff; // the largest index
            ASSERT_EQ(a.may_accept(idx), b.may_accept(idx)) << walk << " " << i << " " << idx;
            if (a.may_accept(idx)) {
                a.accept(idx);
                b.accept(idx);
                top = std::max(top, idx);
            }
        }
    }
}
