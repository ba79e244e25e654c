// One direction of SRTP/SRTCP protection for one leg: session keys derived from
// a master key, plus per-SSRC state (ROC, replay window, SRTCP index).
//
// Rules (see crypto/README.md):
//  - create() runs on the control thread; it may allocate and derive keys.
//  - protect/unprotect run on the owning worker only, allocate nothing, take no
//    lock, make no system call, never throw, and never log.
//  - SSRC state lives in a fixed inline table of `max_ssrcs` slots, plus, for a
//    conference target, an overflow table that control reserves up front
//    (reserve_ssrcs); no allocation per new SSRC. Slots idle for
//    `ssrc_idle_evict_s` are recycled; a per-source quota keeps one sender of a
//    shared outbound context from taking the others' slots; a table with no
//    free, no evictable slot gives status::ssrc_limit (see crypto/README.md).
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

// GCM key schedules of the ipsec_mb engine. Where intel-ipsec-mb's fastest
// GCM is its AVX-512/VAES code, a schedule holds 48 GHASH powers (1008 bytes
// per key); `true` makes contexts created afterwards use its AVX2 code
// instead (384 bytes: ~600 B less per context, ~1.2 KB per SRTP leg, for
// ~20 % more cycles per packet; crypto/README.md). No effect where AVX2 is the
// best already. Control thread, before the contexts are created.
void set_compact_gcm(bool on) noexcept;
bool compact_gcm() noexcept;

// Where contexts (the objects create() returns, key schedules included)
// are allocated. With many legs a packet reads lines of two contexts that
// are nowhere else in cache; on 4 KiB pages each is also a TLB miss, so a
// relay gives them hugepages (dp::place_srtp_contexts, the DPDK heap).
// `alloc` returns nullptr when it cannot (the C++ heap serves then);
// `release` gets every context's memory, from either, and returns whether it
// was its own (false: the C++ heap frees it). Both run on the control thread
// only. Control thread, before any context exists. A null `release` keeps
// the one installed, so that contexts still alive find their way back:
// {} makes new contexts come from the C++ heap again.
struct context_memory {
    void* (*alloc)(size_t size, size_t align) noexcept = nullptr;
    bool (*release)(void* p) noexcept = nullptr;
};
void set_context_memory(context_memory m) noexcept;

// Sets up per-thread engine state (the intel-ipsec-mb manager) for the calling
// thread. Call once on each worker lcore before its first packet; otherwise it
// happens (one allocation) on that thread's first ipsec_mb packet. Returns false
// if the manager cannot be set up; ipsec_mb contexts then fail every packet
// (protect: no_room, unprotect/verify: auth_fail) on this thread.
bool prepare_thread() noexcept;

// SSRCs per context (per leg and direction) held inline: audio, video, RTX and
// three simulcast layers fit. Every slot costs memory in every context; more
// slots come from reserve_ssrcs().
constexpr size_t max_ssrcs = 8;
// The most a context may reserve (a 256-leg conference target: 255 senders).
constexpr size_t max_reserved_ssrcs = 4096;
// A slot with no accepted packet for this long may be given to a new SSRC.
constexpr uint32_t ssrc_idle_evict_s = 10;

// The coarse clock the SSRC tables stamp slots with (seconds, any origin).
// Control advances it (once a second is plenty); until it does, no slot is
// ever idle. One relaxed atomic, read per packet.
void set_clock_seconds(uint32_t now) noexcept;
uint32_t clock_seconds() noexcept;

// What a relay tells the outbound contexts about the packet it is forwarding,
// per thread. relay_begin(source) before unprotecting a packet that arrived
// on leg `source`; every protect_rtp/rtcp until relay_end() then
//  - counts new SSRCs against `source`'s quota (reserve_ssrcs), and
//  - for RTP of the SSRC just unprotected/verified on this thread, uses that
//    packet's full index (ROC || SEQ) instead of estimating one: the sender's
//    ROC stays right however long the outbound context was unused (for
//    instance while the leg was in authenticated pass-through).
// Without relay_begin (tests, tools) protect behaves as before: source 0,
// index estimated. libsrtp contexts ignore both.
struct relay_hint {
    bool armed = false;
    bool has_index = false;
    uint8_t source = 0;
    uint32_t ssrc = 0;
    uint64_t index = 0;
};
// constinit: statically initialised, so other files reach it without a TLS
// init wrapper (which UBSan sees as a possibly-null pointer).
extern thread_local constinit relay_hint tls_relay_hint;
inline void relay_begin(uint8_t source) noexcept
{
    tls_relay_hint.armed = true;
    tls_relay_hint.has_index = false;
    tls_relay_hint.source = source;
}
inline void relay_end() noexcept { tls_relay_hint.armed = false; }
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

    // Control thread, before the context is in use (or while no worker uses
    // it): grow the SSRC table to `slots` (>= max_ssrcs, <= max_reserved_ssrcs)
    // with at most `per_source` slots per relay_begin() source (0 = no quota).
    // Allocates once; false if it cannot (the context keeps its inline table).
    virtual bool reserve_ssrcs(uint32_t slots, uint32_t per_source) = 0;
    // SSRC slots the context has (inline + reserved).
    virtual uint32_t ssrc_capacity() const noexcept = 0;

    virtual suite get_suite() const noexcept = 0;
    virtual engine get_engine() const noexcept = 0;

    // Starts loading what an RTP packet will read - the context's first
    // lines (SSRC slot, salt) and the parts of the RTP key schedule a packet
    // of a few hundred bytes uses - without waiting for it. A relay with many
    // legs calls it for a whole burst before it processes the first packet,
    // so that the cache misses of different contexts overlap. The regions
    // are read from this object's first cache line (see prefetch_line0()).
    // Optional: a context works the same without it.
    void prefetch() const noexcept
    {
        const auto base = reinterpret_cast<uintptr_t>(this);
        for (const auto& r : hot_) {
            // Every line the region touches, also when it starts mid-line.
            const uintptr_t begin = (base + r.off) & ~uintptr_t{63};
            const uintptr_t end = base + r.off + r.len;
            for (uintptr_t a = begin; a < end; a += 64)
                __builtin_prefetch(reinterpret_cast<const void*>(a), 0, 3);
        }
    }
    // The first step: the line that holds the region list, and the next one
    // (Isar's engines keep the first SSRC slot there), which need no list.
    void prefetch_line0() const noexcept
    {
        __builtin_prefetch(this, 0, 3);
        __builtin_prefetch(reinterpret_cast<const char*>(this) + 64, 0, 3);
    }

protected:
    // Region i: [p, p + len), within this object.
    void set_hot(unsigned i, const void* p, uint32_t len) noexcept
    {
        const auto off = static_cast<uintptr_t>(static_cast<const char*>(p) -
                                                reinterpret_cast<const char*>(this));
        if (i < n_hot && off + len <= 0xffff)
            hot_[i] = {static_cast<uint16_t>(off), static_cast<uint16_t>(len)};
    }

private:
    static constexpr unsigned n_hot = 4;
    struct region { // from `this`: 4 bytes, so the list stays in line 0
        uint16_t off = 0;
        uint16_t len = 0;
    };
    region hot_[n_hot];
};

} // namespace isar::crypto
