// Internal to crypto/ and its tests: session keys, the RFC 3711 packet logic
// shared by Isar's own engines, and test hooks. Not for dataplane/ or control/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "crypto/srtp_context.h"
#include "crypto/suite.h"

namespace isar::crypto::detail {

// Session keys of one direction (RFC 3711 §4.3, KDR 0). Wiped on destruction.
struct session_keys {
    suite s = suite::none;
    size_t key_len = 0;  // 16 or 32
    size_t salt_len = 0; // 14 (AES-CM) or 12 (GCM)
    uint8_t rtp_key[32] = {};
    uint8_t rtcp_key[32] = {};
    uint8_t rtp_auth[20] = {}; // HMAC-SHA1 keys; unused for GCM
    uint8_t rtcp_auth[20] = {};
    uint8_t rtp_salt[14] = {};
    uint8_t rtcp_salt[14] = {};

    session_keys() = default;
    session_keys(const session_keys&) = delete;
    session_keys& operator=(const session_keys&) = delete;
    ~session_keys();
};

// AES-CM PRF (RFC 3711 §4.3.3): `out_len` bytes of keystream for `label`.
// A 12-byte (GCM) master salt is padded with two zero bytes on the right, as
// libsrtp does.
void aes_cm_prf(const uint8_t* master_key, size_t key_len, const uint8_t* master_salt,
        size_t salt_len, uint8_t label, uint8_t* out, size_t out_len);
bool derive_session_keys(const key_material& km, session_keys& out);

// Where a context's bytes go (test_crypto_footprint and bench_srtp print it).
struct context_layout {
    size_t object = 0;     // sizeof the context object: one allocation
    size_t ssrc_table = 0; // the inline SSRC slots (part of object)
    size_t rtp_keys = 0;   // RTP key schedule, HMAC states (part of object)
    size_t rtcp_keys = 0;  // SRTCP keys (part of object)
    size_t heap = 0;       // further allocations: reserved SSRC overflow
};

// Extra hooks every engine implements; tests reach them with dynamic_cast.
class srtp_context_impl : public srtp_context {
public:
    // Sets the next SRTCP index this (sending) context uses for `ssrc`.
    virtual bool set_rtcp_tx_index(uint32_t ssrc, uint32_t index) noexcept = 0;
    // Sizes of the parts (libsrtp: its own allocations are not counted).
    virtual context_layout layout() const noexcept = 0;

    // Test hook: sees a context's memory after its destructors ran, just
    // before it is freed (test_crypto_wipe: no key byte may be left).
    using free_hook = void (*)(const void* p, size_t n);
    static void set_free_hook(free_hook h) noexcept;
    // Every engine's object comes from set_context_memory()'s allocator
    // and goes back to it (after the free hook).
    static void* operator new(size_t n);
    static void* operator new(size_t n, std::align_val_t a);
    static void* operator new(size_t n, const std::nothrow_t&) noexcept;
    static void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept;
    static void operator delete(void* p, size_t n) noexcept;
    static void operator delete(void* p, size_t n, std::align_val_t a) noexcept;
    static void operator delete(void* p, const std::nothrow_t&) noexcept;
    static void operator delete(void* p, std::align_val_t a, const std::nothrow_t&) noexcept;
};

// Engine factories. Isar's own engines take session keys (so RFC 7714 vectors,
// which are given as session keys, can be checked); libsrtp takes master keys.
std::unique_ptr<srtp_context_impl> make_boringssl_context(const session_keys& k, std::string& err);
// compact_gcm: GCM on intel-ipsec-mb's AVX2 code where AVX-512 is the best
// (384-byte instead of 1 KB key schedule; see crypto/README.md).
std::unique_ptr<srtp_context_impl> make_ipsec_mb_context(const session_keys& k, std::string& err,
        bool compact_gcm = false);
// Bytes of a GCM key schedule as the ipsec_mb engine keeps it (0: unusable).
size_t ipsec_mb_gcm_key_bytes(bool compact_gcm) noexcept;
// Test: with the schedule's kept bytes just before an unmapped page, GCM of
// every length up to max_len gives what the whole gcm_key_data gives (a read
// past the kept bytes would fault).
bool ipsec_mb_gcm_guard_check(bool compact_gcm, size_t max_len, std::string& err);
std::unique_ptr<srtp_context_impl> make_libsrtp_context(const key_material& km, std::string& err);
std::unique_ptr<srtp_context_impl> create_from_session_keys(const session_keys& k, engine e,
        std::string& err);

// srtp_init() exactly once per process (libsrtp 2.5 fails a second call).
// Anything else in the process that uses libsrtp must go through this.
bool libsrtp_init(std::string& err);

// True when intel-ipsec-mb initialises with AES-NI on this CPU.
bool ipsec_mb_available() noexcept;

// AES-CM keystream XORed into data (RFC 3711 B.2 check), by engine.
bool engine_keystream(engine e, const uint8_t* key, size_t key_len, const uint8_t iv[16],
        uint8_t* data, size_t len);
bool engine_keystream_boringssl(const uint8_t* key, size_t key_len, const uint8_t iv[16],
        uint8_t* data, size_t len);
bool engine_keystream_ipsec_mb(const uint8_t* key, size_t key_len, const uint8_t iv[16],
        uint8_t* data, size_t len);

// Per-thread scratch for verify_*() (which must not touch the caller's buffer).
constexpr size_t scratch_size = 65536 + 64;
uint8_t* thread_scratch() noexcept;

// ---- small helpers ---------------------------------------------------------------

inline uint16_t load_be16(const uint8_t* p) noexcept
{
    return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline uint32_t load_be32(const uint8_t* p) noexcept
{
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}
inline void store_be32(uint8_t* p, uint32_t v) noexcept
{
    p[0] = uint8_t(v >> 24);
    p[1] = uint8_t(v >> 16);
    p[2] = uint8_t(v >> 8);
    p[3] = uint8_t(v);
}
inline bool ct_equal(const uint8_t* a, const uint8_t* b, size_t n) noexcept
{
    uint8_t d = 0;
    for (size_t i = 0; i < n; ++i) {
        d |= uint8_t(a[i] ^ b[i]);
    }
    return d == 0;
}

} // namespace isar::crypto::detail
