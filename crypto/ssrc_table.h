// Internal to crypto/: per-SSRC state of one context (replay window, ROC,
// SRTCP index) and the table that holds it. A small inline table serves the
// common call; a conference target's outbound context gets an overflow table
// reserved by control (one allocation, never per packet). See crypto/README.md
// "SSRC slots" for eviction and what the per-source quota protects against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "crypto/srtp_context.h"

namespace isar::crypto::detail {

// ---- replay window and ROC ----------------------------------------------------------

// The highest index seen plus a 128-bit map of the indices below it; 24
// bytes (indices are at most 48 bits, so "nothing seen yet" is top == ~0).
struct replay_window_state {
    static constexpr uint64_t none = ~uint64_t{0};
    uint64_t top = none;
    uint64_t bits[2] = {0, 0}; // bit d set: index top - d seen

    bool seen() const noexcept { return top != none; }

    bool may_accept(uint64_t idx) const noexcept
    {
        if (!seen() || idx > top) {
            return true;
        }
        uint64_t d = top - idx;
        if (d >= replay_window) {
            return false;
        }
        return ((bits[d >> 6] >> (d & 63)) & 1) == 0;
    }

    void accept(uint64_t idx) noexcept
    {
        if (!seen()) {
            top = idx;
            bits[0] = 1;
            bits[1] = 0;
            return;
        }
        if (idx > top) {
            uint64_t s = idx - top;
            if (s >= 128) {
                bits[0] = bits[1] = 0;
            } else if (s >= 64) {
                bits[1] = bits[0] << (s - 64);
                bits[0] = 0;
            } else {
                bits[1] = (bits[1] << s) | (bits[0] >> (64 - s));
                bits[0] <<= s;
            }
            bits[0] |= 1;
            top = idx;
            return;
        }
        uint64_t d = top - idx;
        bits[d >> 6] |= uint64_t(1) << (d & 63);
    }
};
static_assert(sizeof(replay_window_state) == 24);

// The SRTCP replay window: the same 128 indices, but SRTCP indices are 31
// bits, so the top fits 32 bits ("nothing seen yet" is ~0) and the map is
// kept in 32-bit words: 20 bytes, which keeps a slot at 56.
struct rtcp_window_state {
    static constexpr uint32_t none = ~uint32_t{0};
    uint32_t top = none;
    uint32_t bits[4] = {0, 0, 0, 0}; // bit d of the 128-bit map: index top - d seen

    bool may_accept(uint32_t idx) const noexcept
    {
        if (top == none || idx > top) {
            return true;
        }
        const uint32_t d = top - idx;
        return d < replay_window && ((map() >> d) & 1) == 0;
    }
    void accept(uint32_t idx) noexcept
    {
        using u128 = unsigned __int128;
        if (top == none) {
            top = idx;
            set_map(1);
        } else if (idx > top) {
            const uint32_t s = idx - top;
            set_map((s >= 128 ? u128{0} : map() << s) | 1);
            top = idx;
        } else {
            set_map(map() | (u128{1} << (top - idx)));
        }
    }

private:
    unsigned __int128 map() const noexcept
    {
        unsigned __int128 m;
        std::memcpy(&m, bits, sizeof m);
        return m;
    }
    void set_map(unsigned __int128 m) noexcept { std::memcpy(bits, &m, sizeof m); }
};
static_assert(sizeof(rtcp_window_state) == 20);

// One SSRC's state: 56 bytes, the idle stamp and owner included (so a packet
// writes only its own slot).
struct ssrc_state {
    replay_window_state rtp;    // receive: replay window; send: indices used
    uint32_t ssrc = 0;
    uint32_t rtcp_tx_index = 0; // next SRTCP index to send
    rtcp_window_state rtcp;     // receive only
    uint16_t stamp = 0;         // clock_seconds() of the last use, mod 2^16
    uint8_t src = 0;            // relay_begin() source that took the slot
};
static_assert(sizeof(ssrc_state) == 56);

// Slots beyond the inline ones, with a linear-probing hash (slot + 1, 0 =
// empty) over their SSRCs.
struct ssrc_overflow {
    uint32_t cap = 0;        // slots
    uint32_t used = 0;       // slots ever taken (filled in order, then recycled)
    uint32_t per_source = 0; // 0 = no quota
    uint32_t hmask = 0;      // hash size - 1
    std::unique_ptr<ssrc_state[]> slots;
    std::unique_ptr<uint16_t[]> hash;
    uint16_t count[256] = {}; // slots held per source, inline ones included
};

// Slot numbers: [0, max_ssrcs) inline, then the overflow's. A slot is taken
// (claim) only by a packet that authenticated, or by protect. When none is
// free, claim recycles: a source at its quota loses its own least recently
// used slot; otherwise the least recently used slot idle for at least
// ssrc_idle_evict_s goes; otherwise there is no slot (status::ssrc_limit).
class ssrc_table {
public:
    ssrc_table() = default;
    ssrc_table(const ssrc_table&) = delete;
    ssrc_table& operator=(const ssrc_table&) = delete;

    ssrc_state* find(uint32_t ssrc) noexcept
    {
        if (last_ < n_ && slots_[last_].ssrc == ssrc) {
            return &slots_[last_];
        }
        for (uint32_t i = 0; i < n_; ++i) {
            if (slots_[i].ssrc == ssrc) {
                last_ = i;
                return &slots_[i];
            }
        }
        return ovf_ != nullptr ? find_overflow(ssrc) : nullptr;
    }
    // After a packet of `s` was accepted (or protected): it is not idle.
    void touch(ssrc_state* s) noexcept { s->stamp = static_cast<uint16_t>(clock_seconds()); }
    ssrc_state* claim(uint32_t ssrc) noexcept; // nullptr: no slot
    // Whether claim() could find a slot for a new SSRC (a
    // packet of a new SSRC is refused before any crypto work if not).
    bool may_claim() const noexcept;
    ssrc_state* find_or_claim(uint32_t ssrc) noexcept
    {
        ssrc_state* s = find(ssrc);
        return s != nullptr ? s : claim(ssrc);
    }
    bool reserve(uint32_t slots, uint32_t per_source);
    // Bytes of the reserved overflow (0 without one).
    size_t heap_bytes() const noexcept;
    uint32_t capacity() const noexcept
    {
        return static_cast<uint32_t>(max_ssrcs) + (ovf_ != nullptr ? ovf_->cap : 0);
    }

    // What find() reads first for the common one-SSRC leg: the count, the
    // last hit, and the first slot.
    const void* hot_end() const noexcept { return &slots_[1]; }

private:
    ssrc_state* find_overflow(uint32_t ssrc) noexcept;
    ssrc_state& at(uint32_t id) noexcept
    {
        return id < max_ssrcs ? slots_[id] : ovf_->slots[id - max_ssrcs];
    }
    uint32_t used() const noexcept { return n_ + (ovf_ != nullptr ? ovf_->used : 0); }
    uint32_t home(uint32_t ssrc) const noexcept
    {
        uint32_t h = ssrc * 0x9e3779b1u;
        return (h ^ (h >> 15)) & ovf_->hmask;
    }
    int64_t pick_victim(uint8_t src, bool own_only, uint16_t now) noexcept;
    void hash_insert(uint32_t id) noexcept;
    void hash_erase(uint32_t id) noexcept;

    uint32_t n_ = 0;    // inline slots taken
    uint32_t last_ = 0; // last inline hit
    std::unique_ptr<ssrc_overflow> ovf_;
    ssrc_state slots_[max_ssrcs];
};

} // namespace isar::crypto::detail
