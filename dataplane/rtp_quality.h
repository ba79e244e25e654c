// Per-leg RTP receive quality: RFC 3550 A.1 sequence accounting (extended
// highest sequence number, expected, received, lost) and A.8 interarrival
// jitter. Written by the leg's owning worker for every packet (no division, no
// allocation); control reads the published fields with relaxed loads.
//
// Conventions (as in RFC 3550 A.1):
// - a new source is on probation until rtp_min_sequential packets arrive in
//   sequence; the packets of the probation are not counted (base_seq is the
//   first counted one), so lost = expected - received counts the gaps after it;
// - a jump of rtp_max_dropout or more ahead, or more than rtp_max_misorder
//   behind, is "bad": two in a row (seq, seq + 1) restart the accounting
//   (a restart); single ones are ignored and not counted;
// - duplicates and late (reordered) packets within rtp_max_misorder are
//   counted as received, so lost can go negative (RFC 3550 6.4.1);
// - a new SSRC restarts the accounting too. Whatever was expected and received
//   before a restart is kept in the totals, so the published counters never
//   go backwards.
// The totals are running sums kept in place (a counted packet adds 1 to
// received and how far the highest sequence number moved to expected; a
// packet that (re)starts the count adds 1 to both), which equals A.1's
// from-scratch figures summed over the runs (tests/unit/test_rtp_quality.cc
// checks it against that computation): no per-run base or earlier-run totals
// are kept, so no packet reads anything beyond the hot line.
// Jitter (A.8) needs the arrival time in RTP timestamp units: the caller
// passes arrival = TSC * mult >> 32, mult = clock_rate * 2^32 / tsc_hz
// (precomputed by control; see rtp_mult()). jitter_q4 is J * 16, the RFC's
// integer form; J is in timestamp units.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace isar::dp {

constexpr uint32_t rtp_seq_mod = 1u << 16;
constexpr uint32_t rtp_max_dropout = 3000;
constexpr uint32_t rtp_max_misorder = 100;
constexpr uint32_t rtp_min_sequential = 2;

// mult for rtp_arrival(): clock_rate * 2^32 / tsc_hz (0 = no jitter). Control
// and init path only: this divides.
inline uint64_t rtp_mult(uint32_t clock_rate, uint64_t tsc_hz) noexcept
{
    if (clock_rate == 0 || tsc_hz == 0)
        return 0;
    __extension__ typedef unsigned __int128 u128;
    return static_cast<uint64_t>((static_cast<u128>(clock_rate) << 32) / tsc_hz);
}

// The arrival time in RTP timestamp units (mod 2^32): one multiply, no division.
inline uint32_t rtp_arrival(uint64_t tsc, uint64_t mult) noexcept
{
    __extension__ typedef unsigned __int128 u128;
    return static_cast<uint32_t>((static_cast<u128>(tsc) * mult) >> 32);
}

// Clock rate of a static payload type (RFC 3551 table 4/5), 0 = unassigned or
// dynamic (96-127: the leg's clock_rate applies).
constexpr uint32_t static_pt_clock_rate(uint8_t pt) noexcept
{
    switch (pt) {
    case 0:
    case 3:
    case 4:
    case 5:
    case 7:
    case 8:
    case 9:
    case 12:
    case 13:
    case 15:
    case 18:
        return 8000;
    case 6:
        return 16000;
    case 10:
    case 11:
        return 44100;
    case 16:
        return 11025;
    case 17:
        return 22050;
    case 14:
    case 25:
    case 26:
    case 28:
    case 31:
    case 32:
    case 33:
    case 34:
        return 90000;
    default:
        return 0;
    }
}

// One cache line for what every RTP packet reads and writes (the relay touches
// it for every packet of every leg; with many legs it is a cache miss), then
// 16 bytes for what changes only on a restart or an RTCP packet (the leg puts
// its drop counters right after it: see leg.h). Place it 64-aligned.
struct rtp_quality {
    // ---- line 0: published (single writer, read by control) and hot state
    std::atomic<uint64_t> received{0};    // packets counted by A.1, all restarts
    std::atomic<uint64_t> expected{0};    // all restarts
    std::atomic<uint64_t> ext_max_seq{0}; // current source: cycles + max_seq
    std::atomic<uint32_t> jitter_q4{0};  // J * 16, timestamp units (A.8 state too)
    std::atomic<uint32_t> clock_rate{0}; // of the last jitter sample (0 = none)
    std::atomic<uint32_t> ssrc{0};
    uint32_t cycles = 0;
    int32_t transit = 0;
    uint16_t max_seq = 0;
    uint16_t bad_seq = 0; // valid when have_bad_seq (A.1's RTP_SEQ_MOD + 1 = none)
    uint8_t probation = 0;
    uint8_t last_pt = 0;
    bool have_source : 1 = false;
    bool have_transit : 1 = false;
    bool have_bad_seq : 1 = false;
    uint8_t pad_[13] = {}; // the rest of the hot line

    // ---- line 1: restarts and RTCP -------------------------------------------
    std::atomic<uint32_t> restarts{0}; // new SSRC or sequence restart
    std::atomic<uint64_t> rtcp{0};                 // RTCP packets seen on the leg

    int64_t lost() const noexcept
    {
        return static_cast<int64_t>(expected.load(std::memory_order_relaxed)) -
               static_cast<int64_t>(received.load(std::memory_order_relaxed));
    }

    // One RTP packet (header fields in host order). `arrival` is
    // rtp_arrival(now, mult) for the packet's clock rate `rate` (0: no jitter).
    [[gnu::always_inline]] void on_rtp(uint16_t seq, uint32_t ts, uint32_t pkt_ssrc, uint8_t pt, uint32_t arrival,
                uint32_t rate) noexcept
    {
        if (!have_source || pkt_ssrc != ssrc.load(std::memory_order_relaxed)) {
            if (have_source)
                restart();
            have_source = true;
            ssrc.store(pkt_ssrc, std::memory_order_relaxed);
            init_seq(seq);
            max_seq = static_cast<uint16_t>(seq - 1);
            probation = rtp_min_sequential;
            have_transit = false;
        }
        const uint64_t old_ext = static_cast<uint64_t>(cycles) + max_seq;
        switch (update_seq(seq)) {
        case counted::fast:
            publish_step(old_ext);
            break;
        case counted::full:
            publish();
            break;
        case counted::no:
            break;
        }
        if (rate == 0)
            return;
        // A.8. A payload type (clock) change starts the transit anew.
        const int32_t tr = static_cast<int32_t>(arrival - ts);
        if (have_transit && pt == last_pt) {
            int32_t d = tr - transit;
            if (d < 0)
                d = -d;
            uint32_t j = jitter_q4.load(std::memory_order_relaxed);
            j += static_cast<uint32_t>(d) - ((j + 8) >> 4);
            jitter_q4.store(j, std::memory_order_relaxed);
            if (clock_rate.load(std::memory_order_relaxed) != rate)
                clock_rate.store(rate, std::memory_order_relaxed);
        }
        transit = tr;
        last_pt = pt;
        have_transit = true;
    }

private:
    // A.1's init_seq; base_seq is implicit: the totals are running sums.
    void init_seq(uint16_t seq) noexcept
    {
        max_seq = seq;
        have_bad_seq = false; // RTP_SEQ_MOD + 1: matches no sequence number
        cycles = 0;
    }

    // The accounting restarts: the totals already hold the run that ends.
    void restart() noexcept
    {
        restarts.store(restarts.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }

    // The common case - a counted packet of the same run - in place, from
    // line 0 only: received + 1, expected + how far the highest sequence
    // number moved.
    void publish_step(uint64_t old_ext) noexcept
    {
        const uint64_t ext = static_cast<uint64_t>(cycles) + max_seq;
        received.store(received.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        if (ext != old_ext) {
            expected.store(expected.load(std::memory_order_relaxed) + (ext - old_ext),
                           std::memory_order_relaxed);
            ext_max_seq.store(ext, std::memory_order_relaxed);
        }
    }

    // The first counted packet of a run (after init_seq): A.1's run so far
    // has expected = received = 1.
    void publish() noexcept
    {
        received.store(received.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        expected.store(expected.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        ext_max_seq.store(static_cast<uint64_t>(cycles) + max_seq, std::memory_order_relaxed);
    }

    enum class counted : uint8_t {
        no,   // probation, or a single jump
        fast, // same run: publish_step()
        full, // a run (re)started: publish()
    };

    // RFC 3550 A.1 update_seq().
    counted update_seq(uint16_t seq) noexcept
    {
        const uint16_t udelta = static_cast<uint16_t>(seq - max_seq);
        if (probation) {
            if (seq == static_cast<uint16_t>(max_seq + 1)) {
                probation--;
                max_seq = seq;
                if (probation == 0) {
                    init_seq(seq);
                    return counted::full;
                }
            } else {
                probation = rtp_min_sequential - 1;
                max_seq = seq;
            }
            return counted::no;
        }
        if (udelta < rtp_max_dropout) {
            if (seq < max_seq)
                cycles += rtp_seq_mod; // wrapped
            max_seq = seq;
        } else if (udelta <= rtp_seq_mod - rtp_max_misorder) {
            if (have_bad_seq && seq == bad_seq) {
                // Two sequential packets after a big jump: the source restarted.
                restart();
                init_seq(seq);
                return counted::full;
            }
            bad_seq = static_cast<uint16_t>(seq + 1u); // (seq + 1) & (RTP_SEQ_MOD - 1)
            have_bad_seq = true;
            return counted::no;
        }
        // else: duplicate or reordered within rtp_max_misorder
        return counted::fast;
    }
};
static_assert(sizeof(rtp_quality) == 80 && offsetof(rtp_quality, restarts) == 64,
              "rtp_quality: one hot line and 16 bytes of a cold one");

} // namespace isar::dp
