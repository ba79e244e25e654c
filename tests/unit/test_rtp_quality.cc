// RFC 3550 A.1 sequence accounting and A.8 jitter of dp::rtp_quality: wrap,
// reorder, duplicates, loss, restarts (sequence jump, new SSRC), probation.
#include "dataplane/rtp_quality.h"

#include <gtest/gtest.h>

using isar::dp::rtp_quality;

namespace {

// Feeds seq with ts = 160 * (seq - first) and arrival = ts + offset (no jitter).
void feed(rtp_quality& q, uint16_t seq, uint32_t ssrc = 1, uint32_t arrival = 0, uint32_t ts = 0,
          uint32_t rate = 0)
{
    q.on_rtp(seq, ts, ssrc, 0, arrival, rate);
}

uint64_t exp_(const rtp_quality& q)
{
    return q.expected.load();
}
uint64_t rcv(const rtp_quality& q)
{
    return q.received.load();
}

} // namespace

TEST(RtpQuality, InOrderNoLossProbationNotCounted)
{
    rtp_quality q;
    for (uint16_t s = 100; s < 110; s++)
        feed(q, s);
    // The first packet is the probation: counting starts at 101.
    EXPECT_EQ(rcv(q), 9u);
    EXPECT_EQ(exp_(q), 9u);
    EXPECT_EQ(q.lost(), 0);
    EXPECT_EQ(q.ext_max_seq.load(), 109u);
    EXPECT_EQ(q.restarts.load(), 0u);
}

TEST(RtpQuality, GapsAreLost)
{
    rtp_quality q;
    for (uint16_t s = 1; s <= 50; s++)
        if (s != 10 && s != 20 && s != 21)
            feed(q, s);
    EXPECT_EQ(exp_(q), 49u); // 2..50
    EXPECT_EQ(rcv(q), 46u);
    EXPECT_EQ(q.lost(), 3);
}

TEST(RtpQuality, WrapExtendsTheSequence)
{
    rtp_quality q;
    for (uint32_t i = 0; i < 20; i++)
        feed(q, static_cast<uint16_t>(65530 + i));
    EXPECT_EQ(q.ext_max_seq.load(), 65536u + 13u);
    EXPECT_EQ(exp_(q), 19u);
    EXPECT_EQ(rcv(q), 19u);
    EXPECT_EQ(q.lost(), 0);
}

TEST(RtpQuality, ReorderIsNotLoss)
{
    rtp_quality q;
    const uint16_t order[] = {1, 2, 3, 5, 4, 6, 8, 7, 9, 10};
    for (uint16_t s : order)
        feed(q, s);
    EXPECT_EQ(exp_(q), 9u);
    EXPECT_EQ(rcv(q), 9u);
    EXPECT_EQ(q.lost(), 0);
    EXPECT_EQ(q.ext_max_seq.load(), 10u);
}

TEST(RtpQuality, ReorderAcrossTheWrap)
{
    rtp_quality q;
    const uint16_t order[] = {65533, 65534, 0, 65535, 1, 2};
    for (uint16_t s : order)
        feed(q, s);
    EXPECT_EQ(q.ext_max_seq.load(), 65536u + 2u);
    EXPECT_EQ(exp_(q), 5u);
    EXPECT_EQ(rcv(q), 5u);
    EXPECT_EQ(q.lost(), 0);
}

TEST(RtpQuality, DuplicatesMakeLossNegative)
{
    rtp_quality q;
    for (uint16_t s = 1; s <= 10; s++)
        feed(q, s);
    feed(q, 10);
    feed(q, 9);
    EXPECT_EQ(exp_(q), 9u);
    EXPECT_EQ(rcv(q), 11u);
    EXPECT_EQ(q.lost(), -2);
}

TEST(RtpQuality, SingleBigJumpIgnoredTwoRestart)
{
    rtp_quality q;
    for (uint16_t s = 1; s <= 10; s++)
        feed(q, s);
    feed(q, 20000); // one stray packet: not counted
    EXPECT_EQ(rcv(q), 9u);
    EXPECT_EQ(q.restarts.load(), 0u);
    feed(q, 11); // the stream goes on
    EXPECT_EQ(rcv(q), 10u);
    EXPECT_EQ(q.lost(), 0);
    // Two in sequence after a jump: the source restarted.
    feed(q, 30000);
    feed(q, 30001);
    EXPECT_EQ(q.restarts.load(), 1u);
    for (uint16_t s = 30002; s <= 30010; s++)
        feed(q, s);
    // Totals keep the first run (10 expected, 10 received) and add the new one.
    EXPECT_EQ(exp_(q), 10u + 10u);
    EXPECT_EQ(rcv(q), 10u + 10u);
    EXPECT_EQ(q.lost(), 0);
    EXPECT_EQ(q.ext_max_seq.load(), 30010u);
}

TEST(RtpQuality, OldPacketBeyondMisorderIsBad)
{
    rtp_quality q;
    for (uint16_t s = 1000; s <= 1300; s++)
        feed(q, s);
    const uint64_t r = rcv(q);
    feed(q, 1000); // 300 behind > max_misorder: treated as a (single) bad jump
    EXPECT_EQ(rcv(q), r);
    feed(q, 1250); // 50 behind: a late duplicate, counted
    EXPECT_EQ(rcv(q), r + 1);
}

TEST(RtpQuality, NewSsrcRestartsAndKeepsTotals)
{
    rtp_quality q;
    for (uint16_t s = 1; s <= 10; s++)
        if (s != 5)
            feed(q, s, 0xaaaa);
    EXPECT_EQ(q.lost(), 1);
    for (uint16_t s = 500; s <= 510; s++)
        feed(q, s, 0xbbbb);
    EXPECT_EQ(q.ssrc.load(), 0xbbbbu);
    EXPECT_EQ(q.restarts.load(), 1u);
    EXPECT_EQ(exp_(q), 9u + 10u);
    EXPECT_EQ(rcv(q), 8u + 10u);
    EXPECT_EQ(q.lost(), 1);
}

TEST(RtpQuality, ProbationResetsOnNonSequential)
{
    rtp_quality q;
    feed(q, 10);
    feed(q, 50); // not 11: probation again
    EXPECT_EQ(rcv(q), 0u);
    feed(q, 51);
    EXPECT_EQ(rcv(q), 1u);
    EXPECT_EQ(exp_(q), 1u);
}

TEST(RtpQuality, JitterZeroWhenEvenAndGrowsWhenUneven)
{
    rtp_quality q;
    // Arrival exactly tracks the timestamp: D = 0 every time.
    for (uint32_t i = 0; i < 50; i++)
        q.on_rtp(static_cast<uint16_t>(i), 160 * i, 1, 0, 5000 + 160 * i, 8000);
    EXPECT_EQ(q.jitter_q4.load(), 0u);
    EXPECT_EQ(q.clock_rate.load(), 8000u);
    // Alternating 80/240 units apart for 160 of timestamp: |D| = 80 -> J -> 80.
    rtp_quality u;
    uint32_t arrival = 0;
    for (uint32_t i = 0; i < 400; i++) {
        u.on_rtp(static_cast<uint16_t>(i), 160 * i, 1, 0, arrival, 8000);
        arrival += (i % 2 == 0) ? 80 : 240;
    }
    const uint32_t j = u.jitter_q4.load() >> 4;
    EXPECT_GE(j, 75u);
    EXPECT_LE(j, 80u);
}

TEST(RtpQuality, JitterHandlesTimestampAndArrivalWrap)
{
    rtp_quality q;
    uint32_t ts = 0xffffff00u, arrival = 0xfffffff0u;
    for (uint32_t i = 0; i < 100; i++) {
        q.on_rtp(static_cast<uint16_t>(i), ts, 1, 0, arrival, 8000);
        ts += 160;
        arrival += 160;
    }
    EXPECT_EQ(q.jitter_q4.load(), 0u);
}

TEST(RtpQuality, NoJitterWithoutAClock)
{
    rtp_quality q;
    for (uint32_t i = 0; i < 10; i++)
        q.on_rtp(static_cast<uint16_t>(i), 0, 1, 0, 1000 * i, 0);
    EXPECT_EQ(q.jitter_q4.load(), 0u);
    EXPECT_EQ(q.clock_rate.load(), 0u);
}

TEST(RtpQuality, MultAndArrival)
{
    const uint64_t hz = 2'000'000'000;
    const uint64_t m = isar::dp::rtp_mult(8000, hz);
    // One second of TSC is 8000 timestamp units (within rounding).
    const uint32_t a0 = isar::dp::rtp_arrival(10 * hz, m);
    const uint32_t a1 = isar::dp::rtp_arrival(11 * hz, m);
    EXPECT_NEAR(static_cast<double>(a1 - a0), 8000.0, 1.0);
    EXPECT_EQ(isar::dp::rtp_mult(0, hz), 0u);
    EXPECT_EQ(isar::dp::static_pt_clock_rate(0), 8000u);
    EXPECT_EQ(isar::dp::static_pt_clock_rate(8), 8000u);
    EXPECT_EQ(isar::dp::static_pt_clock_rate(9), 8000u); // G.722's RTP clock (RFC 3551)
    EXPECT_EQ(isar::dp::static_pt_clock_rate(26), 90000u);
    EXPECT_EQ(isar::dp::static_pt_clock_rate(111), 0u);
}

// RFC 3550 A.1 as the RFC writes it - a base sequence number per run, the
// received count of the run, the totals of the earlier runs folded in at a
// restart - to check the running sums of rtp_quality against.
struct a1_reference {
    uint16_t max_seq = 0, bad_seq = 0;
    bool have_bad = false, have_source = false;
    uint32_t cycles = 0, base_seq = 0, ssrc = 0;
    uint8_t probation = 0;
    uint64_t cur_received = 0, prior_expected = 0, prior_received = 0;

    uint64_t ext() const { return static_cast<uint64_t>(cycles) + max_seq; }
    uint64_t cur_expected() const
    {
        return cur_received == 0 && ext() + 1 < base_seq ? 0 : ext() - base_seq + 1;
    }
    uint64_t received() const { return prior_received + cur_received; }
    uint64_t expected() const { return prior_expected + cur_expected(); }
    void init_seq(uint16_t s)
    {
        base_seq = s;
        max_seq = s;
        have_bad = false;
        cycles = 0;
        cur_received = 0;
    }
    void restart()
    {
        if (probation == 0) {
            prior_expected += cur_expected();
            prior_received += cur_received;
        }
    }
    void on_rtp(uint16_t s, uint32_t pkt_ssrc)
    {
        if (!have_source || pkt_ssrc != ssrc) {
            if (have_source)
                restart();
            have_source = true;
            ssrc = pkt_ssrc;
            init_seq(s);
            max_seq = static_cast<uint16_t>(s - 1);
            probation = isar::dp::rtp_min_sequential;
        }
        const uint16_t udelta = static_cast<uint16_t>(s - max_seq);
        if (probation) {
            if (s == static_cast<uint16_t>(max_seq + 1)) {
                probation--;
                max_seq = s;
                if (probation == 0) {
                    init_seq(s);
                    cur_received++;
                }
            } else {
                probation = isar::dp::rtp_min_sequential - 1;
                max_seq = s;
            }
            return;
        }
        if (udelta < isar::dp::rtp_max_dropout) {
            if (s < max_seq)
                cycles += isar::dp::rtp_seq_mod;
            max_seq = s;
        } else if (udelta <= isar::dp::rtp_seq_mod - isar::dp::rtp_max_misorder) {
            if (have_bad && s == bad_seq) {
                restart();
                init_seq(s);
                cur_received++;
                return;
            }
            bad_seq = static_cast<uint16_t>(s + 1u);
            have_bad = true;
            return;
        }
        cur_received++;
    }
};

// The published totals are running sums kept in place; after every packet
// they must equal what A.1 computes from scratch (a1_reference), whatever
// the sequence does: advance, wrap, lose, duplicate, reorder, jump and
// restart, change SSRC.
TEST(RtpQuality, PublishedTotalsMatchTheStateUnderRandomTraffic)
{
    rtp_quality q;
    a1_reference ref;
    uint32_t state = 12345;
    auto rnd = [&state] {
        state = state * 1664525u + 1013904223u;
        return state >> 8;
    };
    uint16_t seq = 65000;
    uint32_t ssrc = 7;
    unsigned checked = 0, restarts_seen = 0;
    for (int i = 0; i < 200000; i++) {
        const unsigned r = rnd() % 1000;
        uint16_t s;
        if (r < 900) {
            s = ++seq; // in order (and across the wrap)
        } else if (r < 940) {
            seq = static_cast<uint16_t>(seq + 1 + rnd() % 50); // loss
            s = seq;
        } else if (r < 970) {
            s = static_cast<uint16_t>(seq - rnd() % 60); // duplicate or late
        } else if (r < 995) {
            seq = static_cast<uint16_t>(seq + 4000 + rnd() % 30000); // jump
            s = seq;
        } else {
            ssrc = rnd(); // new source
            s = ++seq;
        }
        q.on_rtp(s, 0, ssrc, 0, 0, 0);
        ref.on_rtp(s, ssrc);
        ASSERT_EQ(q.probation, ref.probation) << i;
        if (q.probation == 0) {
            const uint64_t ext = static_cast<uint64_t>(q.cycles) + q.max_seq;
            ASSERT_EQ(ext, ref.ext()) << i;
            ASSERT_EQ(q.received.load(), ref.received()) << i;
            ASSERT_EQ(q.expected.load(), ref.expected()) << i;
            ASSERT_EQ(q.ext_max_seq.load(), ext) << i;
            checked++;
        }
    }
    restarts_seen = q.restarts.load();
    EXPECT_GT(checked, 150000u);
    EXPECT_GT(restarts_seen, 100u) << "the walk should restart the accounting often";
}
