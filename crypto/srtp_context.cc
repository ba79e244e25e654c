// srtp_context::create(), key derivation, engine choice.
#include "crypto/srtp_context.h"

#include <atomic>
#include <cstring>

#include <openssl/aes.h>
#include <openssl/mem.h>

#include "crypto/srtp_internal.h"

namespace isar::crypto {

const char* status_name(status s) noexcept
{
    switch (s) {
    case status::ok:
        return "ok";
    case status::auth_fail:
        return "auth_fail";
    case status::replay:
        return "replay";
    case status::too_short:
        return "too_short";
    case status::ssrc_limit:
        return "ssrc_limit";
    case status::no_room:
        return "no_room";
    case status::bad_packet:
        return "bad_packet";
    }
    return "unknown";
}

const char* engine_name(engine e) noexcept
{
    switch (e) {
    case engine::auto_select:
        return "auto";
    case engine::ipsec_mb:
        return "ipsec_mb";
    case engine::boringssl:
        return "boringssl";
    case engine::libsrtp:
        return "libsrtp";
    }
    return "unknown";
}

namespace {
std::atomic<bool> g_compact_gcm{false};
}

namespace {
std::atomic<void* (*)(size_t, size_t) noexcept> g_ctx_alloc{nullptr};
std::atomic<bool (*)(void*) noexcept> g_ctx_release{nullptr};

void* ctx_alloc(size_t n, size_t align) noexcept
{
    if (auto* f = g_ctx_alloc.load(std::memory_order_acquire))
        if (void* p = f(n, align))
            return p;
    return align > __STDCPP_DEFAULT_NEW_ALIGNMENT__
                   ? ::operator new(n, std::align_val_t{align}, std::nothrow)
                   : ::operator new(n, std::nothrow);
}

// Whether set_context_memory()'s allocator took p back.
bool ctx_released(void* p) noexcept
{
    auto* f = g_ctx_release.load(std::memory_order_acquire);
    return f != nullptr && f(p);
}
} // namespace

void set_context_memory(context_memory m) noexcept
{
    // A context from the allocator being removed must still find its way
    // back, so its release stays unless another replaces it (which control
    // does only while no context exists: see srtp_context.h).
    if (m.release != nullptr)
        g_ctx_release.store(m.release, std::memory_order_release);
    g_ctx_alloc.store(m.alloc, std::memory_order_release);
}

void set_compact_gcm(bool on) noexcept { g_compact_gcm.store(on, std::memory_order_relaxed); }
bool compact_gcm() noexcept { return g_compact_gcm.load(std::memory_order_relaxed); }

engine auto_engine(suite s) noexcept
{
    // Measured with bench/srtp (table in crypto/README.md). GCM: intel-ipsec-mb's
    // VAES/AVX-512 GCM is ~2.3x BoringSSL's. AES-CM + HMAC-SHA1: both end up on
    // AES-NI + SHA-NI and tie at 1200 bytes; BoringSSL is ~5-10% ahead at 160
    // bytes (no job-manager overhead), so it gets these suites. Debian's libsrtp2
    // (NSS) is 3-10x slower and is never picked automatically.
    switch (s) {
    case suite::aead_aes_128_gcm:
    case suite::aead_aes_256_gcm:
        return detail::ipsec_mb_available() ? engine::ipsec_mb : engine::boringssl;
    default:
        return engine::boringssl;
    }
}

std::unique_ptr<srtp_context> srtp_context::create(const key_material& km, engine e, std::string& err)
{
    if (km.s == suite::none || suite_key_len(km.s) == 0) {
        err = "SRTP context: suite 'none' (plain RTP) has no crypto context";
        return nullptr;
    }
    if (e == engine::auto_select) {
        e = auto_engine(km.s);
    }
    if (e == engine::libsrtp) {
        return detail::make_libsrtp_context(km, err);
    }
    detail::session_keys k;
    if (!detail::derive_session_keys(km, k)) {
        err = "SRTP context: key derivation failed";
        return nullptr;
    }
    return detail::create_from_session_keys(k, e, err);
}

namespace detail {

session_keys::~session_keys()
{
    OPENSSL_cleanse(rtp_key, sizeof rtp_key);
    OPENSSL_cleanse(rtcp_key, sizeof rtcp_key);
    OPENSSL_cleanse(rtp_auth, sizeof rtp_auth);
    OPENSSL_cleanse(rtcp_auth, sizeof rtcp_auth);
    OPENSSL_cleanse(rtp_salt, sizeof rtp_salt);
    OPENSSL_cleanse(rtcp_salt, sizeof rtcp_salt);
}

void aes_cm_prf(const uint8_t* master_key, size_t key_len, const uint8_t* master_salt,
        size_t salt_len, uint8_t label, uint8_t* out, size_t out_len)
{
    AES_KEY aes;
    AES_set_encrypt_key(master_key, unsigned(key_len * 8), &aes);
    // x = key_id XOR master_salt, key_id = label || r with r = 0 (KDR 0): the
    // label lands on byte 7 of the 14-byte salt; IV = x * 2^16.
    uint8_t block[16] = {};
    std::memcpy(block, master_salt, salt_len < 14 ? salt_len : 14);
    block[7] ^= label;
    uint8_t ks[16];
    for (size_t off = 0, ctr = 0; off < out_len; off += 16, ++ctr) {
        block[14] = uint8_t(ctr >> 8);
        block[15] = uint8_t(ctr);
        AES_encrypt(block, ks, &aes);
        size_t n = out_len - off < 16 ? out_len - off : 16;
        std::memcpy(out + off, ks, n);
    }
    OPENSSL_cleanse(ks, sizeof ks);
    OPENSSL_cleanse(&aes, sizeof aes);
}

bool derive_session_keys(const key_material& km, session_keys& k)
{
    const size_t kl = suite_key_len(km.s);
    const size_t sl = suite_salt_len(km.s);
    if (kl == 0 || sl == 0) {
        return false;
    }
    k.s = km.s;
    k.key_len = kl;
    k.salt_len = sl;
    aes_cm_prf(km.key, kl, km.salt, sl, 0x00, k.rtp_key, kl);
    aes_cm_prf(km.key, kl, km.salt, sl, 0x01, k.rtp_auth, sizeof k.rtp_auth);
    aes_cm_prf(km.key, kl, km.salt, sl, 0x02, k.rtp_salt, sl);
    aes_cm_prf(km.key, kl, km.salt, sl, 0x03, k.rtcp_key, kl);
    aes_cm_prf(km.key, kl, km.salt, sl, 0x04, k.rtcp_auth, sizeof k.rtcp_auth);
    aes_cm_prf(km.key, kl, km.salt, sl, 0x05, k.rtcp_salt, sl);
    return true;
}

std::unique_ptr<srtp_context_impl> create_from_session_keys(const session_keys& k, engine e,
        std::string& err)
{
    if (e == engine::auto_select) {
        e = auto_engine(k.s);
    }
    switch (e) {
    case engine::ipsec_mb:
        if (!ipsec_mb_available()) {
            err = "SRTP context: engine ipsec_mb is not usable here (intel-ipsec-mb did not "
                  "initialise with AES-NI on this CPU); use boringssl or auto";
            return nullptr;
        }
        return make_ipsec_mb_context(k, err, compact_gcm());
    case engine::boringssl:
        return make_boringssl_context(k, err);
    case engine::libsrtp:
    case engine::auto_select:
        break;
    }
    err = "SRTP context: the libsrtp engine takes master keys, not session keys";
    return nullptr;
}

bool engine_keystream(engine e, const uint8_t* key, size_t key_len, const uint8_t iv[16],
        uint8_t* data, size_t len)
{
    switch (e) {
    case engine::ipsec_mb:
        return engine_keystream_ipsec_mb(key, key_len, iv, data, len);
    case engine::boringssl:
        return engine_keystream_boringssl(key, key_len, iv, data, len);
    default:
        return false;
    }
}

namespace {
std::atomic<srtp_context_impl::free_hook> g_free_hook{nullptr};
}

void srtp_context_impl::set_free_hook(free_hook h) noexcept
{
    g_free_hook.store(h, std::memory_order_relaxed);
}

void* srtp_context_impl::operator new(size_t n)
{
    void* p = ctx_alloc(n, __STDCPP_DEFAULT_NEW_ALIGNMENT__);
    if (p == nullptr)
        throw std::bad_alloc();
    return p;
}

void* srtp_context_impl::operator new(size_t n, std::align_val_t a)
{
    void* p = ctx_alloc(n, static_cast<size_t>(a));
    if (p == nullptr)
        throw std::bad_alloc();
    return p;
}

void* srtp_context_impl::operator new(size_t n, const std::nothrow_t&) noexcept
{
    return ctx_alloc(n, __STDCPP_DEFAULT_NEW_ALIGNMENT__);
}

void* srtp_context_impl::operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept
{
    return ctx_alloc(n, static_cast<size_t>(a));
}

// A constructor that throws from `new (std::nothrow)`: its memory back.
void srtp_context_impl::operator delete(void* p, const std::nothrow_t&) noexcept
{
    if (p != nullptr && !ctx_released(p))
        ::operator delete(p);
}

void srtp_context_impl::operator delete(void* p, std::align_val_t a,
                                        const std::nothrow_t&) noexcept
{
    if (p != nullptr && !ctx_released(p))
        ::operator delete(p, a);
}

void srtp_context_impl::operator delete(void* p, size_t n) noexcept
{
    if (p == nullptr)
        return;
    if (auto h = g_free_hook.load(std::memory_order_relaxed))
        h(p, n);
    if (!ctx_released(p))
        ::operator delete(p); // the unsized form: clang (tools/fuzz.sh) declares the
                              // sized one only with -fsized-deallocation
}

void srtp_context_impl::operator delete(void* p, size_t n, std::align_val_t a) noexcept
{
    if (p == nullptr)
        return;
    if (auto h = g_free_hook.load(std::memory_order_relaxed))
        h(p, n);
    if (!ctx_released(p))
        ::operator delete(p, a);
}

uint8_t* thread_scratch() noexcept
{
    alignas(64) static thread_local uint8_t scratch[scratch_size];
    return scratch;
}

} // namespace detail
} // namespace isar::crypto
