// One direction of SRTP/SRTCP protection for one leg: session keys derived from
// a master key, plus per-SSRC state (ROC, replay window, SRTCP index).
//
// Rules (see crypto/README.md):
//  - create() runs on the control thread; it may allocate and derive keys.
//  - protect/unprotect run on the owning worker only, allocate nothing, take no
//    lock, make no system call, never throw, and never log.
//  - SSRC state lives in a fixed table of `max_ssrcs` slots filled on first use
//    (no allocation per new SSRC); a full table gives status::ssrc_limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "crypto/suite.h"

namespace isar::crypto {

enum class status : uint8_t {
    ok = 0,
    auth_fail,   // tag did not verify
    replay,      // index already seen or older than the replay window
    too_short,   // shorter than header + tag (or malformed header/extension)
    ssrc_limit,  // more SSRCs than the context has slots for
    no_room,     // output buffer has no room for the tag / index
    bad_packet,  // not an RTP/RTCP packet (version != 2, bad CSRC/extension length)
};
const char* status_name(status s) noexcept;

// Which implementation does the transforms.
enum class engine : uint8_t {
    auto_select = 0, // fastest measured per suite on this CPU: see auto_engine()
    ipsec_mb,        // intel-ipsec-mb (AES-NI/VAES, SHA-NI)
    boringssl,       // BoringSSL EVP_AEAD / AES-CTR + HMAC-SHA1
    libsrtp,         // Debian's libsrtp2 (reference; on NSS)
};
const char* engine_name(engine e) noexcept;

// The engine auto_select resolves to for `s` on this CPU (see crypto/README.md).
engine auto_engine(suite s) noexcept;

// Sets up per-thread engine state (the intel-ipsec-mb manager) for the calling
// thread. Call once on each worker lcore before its first packet; otherwise it
// happens (one allocation) on that thread's first ipsec_mb packet. Returns false
// if the manager cannot be set up; ipsec_mb contexts then fail every packet
// (protect: no_room, unprotect/verify: auth_fail) on this thread.
bool prepare_thread() noexcept;

// SSRCs per context (per leg and direction): audio, video, RTX and three
// simulcast layers fit. Every slot costs memory in every context.
constexpr size_t max_ssrcs = 8;
constexpr size_t replay_window = 128;   // packets (libsrtp uses 128 as well)
constexpr size_t max_trailer = 16 + 4;  // tag + SRTCP index: room protect may add

class srtp_context {
public:
    virtual ~srtp_context() = default;

    // Returns nullptr and sets err for an unusable key or engine.
    static std::unique_ptr<srtp_context> create(const key_material& km, engine e, std::string& err);

    // All work in place on buf[0..len); `cap` is the room available from buf.
    // On ok, *out_len is the new length.
    virtual status protect_rtp(uint8_t* buf, size_t len, size_t cap, size_t* out_len) noexcept = 0;
    virtual status unprotect_rtp(uint8_t* buf, size_t len, size_t* out_len) noexcept = 0;
    virtual status protect_rtcp(uint8_t* buf, size_t len, size_t cap, size_t* out_len) noexcept = 0;
    virtual status unprotect_rtcp(uint8_t* buf, size_t len, size_t* out_len) noexcept = 0;

    // Authenticated pass-through (same keys on both legs): check the tag and the
    // replay window, change nothing.
    virtual status verify_rtp(const uint8_t* buf, size_t len) noexcept = 0;
    virtual status verify_rtcp(const uint8_t* buf, size_t len) noexcept = 0;

    virtual suite get_suite() const noexcept = 0;
    virtual engine get_engine() const noexcept = 0;

    // Starts loading what an RTP packet will read - the SSRC slot and the
    // RTP key schedule - without waiting for it. A relay with many legs calls
    // it for a whole burst before it processes the first packet, so that the
    // cache misses of different contexts overlap. The regions are read from
    // this object's first cache line (see prefetch_line0()). Optional: a
    // context works the same without it.
    void prefetch() const noexcept
    {
        for (const auto& r : hot_) {
            // Every line the region touches, also when it starts mid-line.
            const auto begin = reinterpret_cast<uintptr_t>(r.p) & ~uintptr_t{63};
            const auto end = reinterpret_cast<uintptr_t>(r.p) + r.len;
            for (uintptr_t a = begin; a < end; a += 64)
                __builtin_prefetch(reinterpret_cast<const void*>(a), 0, 3);
        }
    }
    // The first step: the line that holds the region list.
    void prefetch_line0() const noexcept { __builtin_prefetch(this, 0, 3); }

protected:
    void set_hot(unsigned i, const void* p, uint32_t len) noexcept
    {
        if (i < n_hot)
            hot_[i] = {p, len};
    }

private:
    static constexpr unsigned n_hot = 2;
    struct region {
        const void* p = nullptr;
        uint32_t len = 0;
    };
    region hot_[n_hot];
};

} // namespace isar::crypto
