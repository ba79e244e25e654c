// The ipsec_mb engine: intel-ipsec-mb 1.x. AES-GCM through the direct API
// (IMB_AES{128,256}_GCM_{ENC,DEC} on keys expanded once with IMB_AES*_GCM_PRE);
// AES-CTR + HMAC-SHA1 as one chained job (cipher then hash to protect, hash
// then cipher to unprotect) with precomputed ipad/opad digests.
//
// An IMB_MGR holds per-thread state (job queues, multi-buffer lanes) and is
// ~200 KB, so managers are per thread, not per context: prepare_thread()
// makes them, else the thread's first ipsec_mb packet does.
#include <algorithm>
#include <cstring>

#include <sys/mman.h>
#include <unistd.h>

#include <intel-ipsec-mb.h>
#include <openssl/mem.h>

#include "crypto/srtp_engine.h"

namespace isar::crypto {
namespace detail {
namespace {

struct mgr_holder {
    IMB_MGR* m = nullptr;
    bool tried = false;
    ~mgr_holder()
    {
        if (m != nullptr) {
            free_mb_mgr(m);
        }
    }
};

// Two managers per thread. GCM uses the best architecture init_mb_mgr_auto
// finds (AVX-512/VAES where present). AES-CTR + HMAC-SHA1 jobs use the SSE
// manager when the CPU has SHA-NI: its HMAC-SHA1 runs on SHA-NI one buffer at a
// time, while the AVX2/AVX-512 managers hash in multi-buffer lanes that a
// single submit+flush leaves mostly empty (measured 3.4x slower, README).
// gcm_compact: the AVX2 ("gen4") GCM code where the best is AVX-512; its key
// schedule is 384 bytes instead of 1 KB (8 GHASH powers instead of 48).
enum class mgr_kind { gcm = 0, cm = 1, gcm_compact = 2 };
constexpr int n_kinds = 3;

IMB_MGR* new_mgr(mgr_kind kind) noexcept
{
    IMB_MGR* m = alloc_mb_mgr(0);
    if (m == nullptr) {
        return nullptr;
    }
    IMB_ARCH arch = IMB_ARCH_NONE;
    init_mb_mgr_auto(m, &arch);
    if (imb_get_errno(m) != 0 || arch < IMB_ARCH_SSE || (m->features & IMB_FEATURE_AESNI) == 0) {
        free_mb_mgr(m);
        return nullptr;
    }
    if (kind == mgr_kind::cm && arch > IMB_ARCH_SSE && (m->features & IMB_FEATURE_SHANI) != 0) {
        init_mb_mgr_sse(m);
    } else if (kind == mgr_kind::gcm_compact && arch > IMB_ARCH_AVX2 &&
               (m->features & IMB_FEATURE_AVX2) != 0) {
        init_mb_mgr_avx2(m);
    }
    if (imb_get_errno(m) != 0) {
        free_mb_mgr(m);
        return nullptr;
    }
    return m;
}

IMB_MGR* thread_mgr(mgr_kind kind) noexcept
{
    static thread_local mgr_holder h[n_kinds];
    mgr_holder& x = h[int(kind)];
    if (x.m == nullptr && !x.tried) {
        x.tried = true;
        x.m = new_mgr(kind);
    }
    return x.m;
}

// Runs the one job we just filled in to completion.
bool run_job(IMB_MGR* m) noexcept
{
    IMB_JOB* job = IMB_SUBMIT_JOB(m);
    while (job == nullptr) {
        job = IMB_FLUSH_JOB(m);
        if (job == nullptr) {
            return false;
        }
    }
    // Only one job is ever outstanding, so this is ours.
    return job->status == IMB_STATUS_COMPLETED;
}

// The bytes of gcm_key_data that IMB_AES*_GCM_PRE of a `kind` manager
// writes (the rest of the 1 KB type is for other architectures' GHASH
// powers; the GCM code reads only what PRE wrote). Measured once per kind:
// PRE over two fillings, the last byte that changed. 0: no manager.
size_t gcm_key_bytes(mgr_kind kind) noexcept
{
    static const auto measure = [](mgr_kind k) -> size_t {
        IMB_MGR* m = new_mgr(k);
        if (m == nullptr) {
            return 0;
        }
        const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17};
        alignas(64) struct gcm_key_data kd;
        size_t last = 0;
        for (int fill : {0xa5, 0x5a}) {
            std::memset(&kd, fill, sizeof kd);
            IMB_AES256_GCM_PRE(m, key, &kd);
            const auto* p = reinterpret_cast<const uint8_t*>(&kd);
            for (size_t i = 0; i < sizeof kd; ++i) {
                if (p[i] != fill) {
                    last = std::max(last, i + 1);
                }
            }
        }
        free_mb_mgr(m);
        return (last + 63) & ~size_t{63};
    };
    static const size_t bytes[n_kinds] = {measure(mgr_kind::gcm), 0,
            measure(mgr_kind::gcm_compact)};
    return bytes[int(kind)];
}

class imb_cm {
public:
    imb_cm() = default;
    imb_cm(const imb_cm&) = delete;
    imb_cm& operator=(const imb_cm&) = delete;
    ~imb_cm()
    {
        OPENSSL_cleanse(enc_keys_, sizeof enc_keys_);
        OPENSSL_cleanse(ipad_, sizeof ipad_);
        OPENSSL_cleanse(opad_, sizeof opad_);
    }

    bool init(const uint8_t* key, size_t key_len, const uint8_t auth[20], const char*& err)
    {
        IMB_MGR* m = thread_mgr(mgr_kind::cm);
        if (m == nullptr) {
            err = "ipsec_mb: cannot set up an intel-ipsec-mb manager";
            return false;
        }
        key_len_ = static_cast<uint8_t>(key_len);
        // CTR only ever encrypts the counter: the decryption schedule is not kept.
        alignas(16) uint32_t dec[4 * 15];
        if (key_len == 16) {
            IMB_AES_KEYEXP_128(m, key, enc_keys_, dec);
        } else {
            IMB_AES_KEYEXP_256(m, key, enc_keys_, dec);
        }
        OPENSSL_cleanse(dec, sizeof dec);
        alignas(16) uint8_t pad[64];
        std::memset(pad, 0x36, sizeof pad);
        for (size_t i = 0; i < 20; ++i) {
            pad[i] ^= auth[i];
        }
        IMB_SHA1_ONE_BLOCK(m, pad, ipad_);
        std::memset(pad, 0x5c, sizeof pad);
        for (size_t i = 0; i < 20; ++i) {
            pad[i] ^= auth[i];
        }
        IMB_SHA1_ONE_BLOCK(m, pad, opad_);
        OPENSSL_cleanse(pad, sizeof pad);
        return true;
    }

    bool keystream(const uint8_t iv[16], uint8_t* data, size_t len) noexcept
    {
        if (len == 0) {
            return true;
        }
        IMB_MGR* m = thread_mgr(mgr_kind::cm);
        if (m == nullptr) {
            return false;
        }
        IMB_JOB* job = IMB_GET_NEXT_JOB(m);
        fill_cipher(job, iv, data, 0, len, IMB_DIR_ENCRYPT);
        job->hash_alg = IMB_AUTH_NULL;
        job->chain_order = IMB_ORDER_CIPHER_HASH;
        return run_job(m);
    }

    bool mac(const uint8_t* data, size_t len, const uint8_t* tail, size_t tail_len,
            uint8_t digest[20]) noexcept
    {
        if (tail_len != 0 && tail != data + len) {
            // The job API hashes one contiguous span.
            if (len + tail_len > scratch_size) {
                return false;
            }
            uint8_t* s = thread_scratch();
            std::memcpy(s, data, len);
            std::memcpy(s + len, tail, tail_len);
            data = s;
        }
        IMB_MGR* m = thread_mgr(mgr_kind::cm);
        if (m == nullptr) {
            return false;
        }
        IMB_JOB* job = IMB_GET_NEXT_JOB(m);
        job->cipher_mode = IMB_CIPHER_NULL;
        job->cipher_direction = IMB_DIR_ENCRYPT;
        job->src = data;
        job->dst = const_cast<uint8_t*>(data);
        job->cipher_start_src_offset_in_bytes = 0;
        job->msg_len_to_cipher_in_bytes = 0;
        job->iv = nullptr;
        job->iv_len_in_bytes = 0;
        fill_hash(job, 0, len + tail_len, digest);
        job->chain_order = IMB_ORDER_HASH_CIPHER;
        return run_job(m);
    }

    bool encrypt_then_mac(const uint8_t iv[16], uint8_t* buf, size_t off, size_t enc_len,
            size_t auth_len, uint8_t digest[20]) noexcept
    {
        if (enc_len == 0) { // the library rejects zero-length CTR jobs
            return mac(buf, auth_len, nullptr, 0, digest);
        }
        IMB_MGR* m = thread_mgr(mgr_kind::cm);
        if (m == nullptr) {
            return false;
        }
        IMB_JOB* job = IMB_GET_NEXT_JOB(m);
        fill_cipher(job, iv, buf, off, enc_len, IMB_DIR_ENCRYPT);
        fill_hash(job, 0, auth_len, digest);
        job->chain_order = IMB_ORDER_CIPHER_HASH;
        return run_job(m);
    }

    bool mac_then_decrypt(const uint8_t iv[16], uint8_t* buf, size_t off, size_t enc_len,
            size_t auth_len, const uint8_t* tag, size_t tag_len) noexcept
    {
        if (enc_len == 0) {
            uint8_t d[20];
            return mac(buf, auth_len, nullptr, 0, d) && ct_equal(d, tag, tag_len);
        }
        IMB_MGR* m = thread_mgr(mgr_kind::cm);
        if (m == nullptr) {
            return false;
        }
        // One chained job (hash, then decrypt): a forged packet is decrypted
        // before it is rejected, which costs the same as rejecting it first.
        uint8_t d[20];
        IMB_JOB* job = IMB_GET_NEXT_JOB(m);
        fill_cipher(job, iv, buf, off, enc_len, IMB_DIR_DECRYPT);
        fill_hash(job, 0, auth_len, d);
        job->chain_order = IMB_ORDER_HASH_CIPHER;
        return run_job(m) && ct_equal(d, tag, tag_len);
    }

private:
    void fill_cipher(IMB_JOB* job, const uint8_t* iv, uint8_t* buf, size_t off, size_t len,
            IMB_CIPHER_DIRECTION dir) noexcept
    {
        job->cipher_mode = IMB_CIPHER_CNTR;
        job->cipher_direction = dir;
        job->enc_keys = enc_keys_;
        job->dec_keys = enc_keys_; // CTR only ever encrypts the counter
        job->key_len_in_bytes = key_len_;
        job->src = buf;
        job->dst = buf + off;
        job->cipher_start_src_offset_in_bytes = off;
        job->msg_len_to_cipher_in_bytes = len;
        job->iv = iv;
        job->iv_len_in_bytes = 16;
    }

    void fill_hash(IMB_JOB* job, size_t off, size_t len, uint8_t* digest) noexcept
    {
        job->hash_alg = IMB_AUTH_HMAC_SHA_1;
        job->hash_start_src_offset_in_bytes = off;
        job->msg_len_to_hash_in_bytes = len;
        job->u.HMAC._hashed_auth_key_xor_ipad = ipad_;
        job->u.HMAC._hashed_auth_key_xor_opad = opad_;
        job->auth_tag_output = digest;
        job->auth_tag_output_len_in_bytes = 20;
    }

public:
    template <class F>
    void hot(F&& add) const noexcept
    {
        add(enc_keys_, key_len_ == 16 ? 16 * 11 : sizeof enc_keys_);
        add(ipad_, sizeof ipad_ + sizeof opad_);
    }

private:
    alignas(16) uint32_t enc_keys_[4 * 15] = {};
    alignas(16) uint8_t ipad_[32] = {};
    alignas(16) uint8_t opad_[32] = {};
    uint8_t key_len_ = 16;
};

// The GCM key schedule of one key: the first N bytes of gcm_key_data, N
// what PRE of a `Kind` manager writes (gcm_key_bytes), 64-byte aligned as the
// assembly wants. `full` (the whole type) is what SRTCP expands per packet.
template <size_t N, mgr_kind Kind>
class imb_gcm {
public:
    using full = imb_gcm<sizeof(gcm_key_data), Kind>;

    imb_gcm() = default;
    imb_gcm(const imb_gcm&) = delete;
    imb_gcm& operator=(const imb_gcm&) = delete;
    ~imb_gcm() { OPENSSL_cleanse(key_, sizeof key_); }

    bool init(const uint8_t* key, size_t key_len, const char*& err)
    {
        IMB_MGR* m = thread_mgr(Kind);
        if (m == nullptr) {
            err = "ipsec_mb: cannot set up an intel-ipsec-mb manager";
            return false;
        }
        const bool aes256 = key_len == 32;
        if constexpr (N >= sizeof(gcm_key_data)) {
            pre(m, aes256, key, reinterpret_cast<gcm_key_data*>(key_));
        } else {
            if (gcm_key_bytes(Kind) > N) {
                err = "ipsec_mb: GCM key schedule larger than its room";
                return false;
            }
            alignas(64) struct gcm_key_data kd;
            pre(m, aes256, key, &kd);
            std::memcpy(key_, &kd, N);
            OPENSSL_cleanse(&kd, sizeof kd);
        }
        return true;
    }

    bool seal(bool aes256, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, uint8_t* data,
            size_t len, uint8_t tag[16]) noexcept
    {
        IMB_MGR* m = thread_mgr(Kind);
        if (m == nullptr) {
            return false;
        }
        struct gcm_context_data ctx;
        if (aes256) {
            IMB_AES256_GCM_ENC(m, kd(), &ctx, data, data, len, iv, aad, aad_len, tag, 16);
        } else {
            IMB_AES128_GCM_ENC(m, kd(), &ctx, data, data, len, iv, aad, aad_len, tag, 16);
        }
        return true;
    }

    bool open(bool aes256, const uint8_t iv[12], const uint8_t* aad, size_t aad_len,
            const uint8_t* in, size_t len, uint8_t* out, const uint8_t tag[16]) noexcept
    {
        IMB_MGR* m = thread_mgr(Kind);
        if (m == nullptr) {
            return false;
        }
        struct gcm_context_data ctx;
        uint8_t t[16];
        if (aes256) {
            IMB_AES256_GCM_DEC(m, kd(), &ctx, out, in, len, iv, aad, aad_len, t, 16);
        } else {
            IMB_AES128_GCM_DEC(m, kd(), &ctx, out, in, len, iv, aad, aad_len, t, 16);
        }
        return ct_equal(t, tag, 16);
    }

    // The round keys, and the GHASH powers a packet of up to 256 bytes uses:
    // the 48-power (VAES) layout keeps H^1 last, so the last 16; the smaller
    // layouts are read whole.
    template <class F>
    void hot(bool aes256, F&& add) const noexcept
    {
        if constexpr (N >= 1008) {
            add(key_, aes256 ? 16 * 15 : 16 * 11);
            add(key_ + 1008 - 16 * 16, 16 * 16);
        } else {
            add(key_, N);
        }
    }

private:
    static void pre(IMB_MGR* m, bool aes256, const uint8_t* key, gcm_key_data* out) noexcept
    {
        if (aes256) {
            IMB_AES256_GCM_PRE(m, key, out);
        } else {
            IMB_AES128_GCM_PRE(m, key, out);
        }
    }
    // The assembly passes it on as a gcm_key_data and reads only the first N bytes.
    const gcm_key_data* kd() const noexcept { return reinterpret_cast<const gcm_key_data*>(key_); }

    // Nothing after it: a flag here would cost a whole 64-byte line (the
    // engine passes the key size, from its suite, instead).
    alignas(64) uint8_t key_[N];
};

template <mgr_kind K>
std::unique_ptr<srtp_context_impl> make_for(const session_keys& k, std::string& err)
{
    const size_t b = gcm_key_bytes(K);
    if (b != 0 && b <= 384) {
        return make_engine<imb_cm, imb_gcm<384, K>>(k, engine::ipsec_mb, err);
    }
    if (b != 0 && b <= 512) {
        return make_engine<imb_cm, imb_gcm<512, K>>(k, engine::ipsec_mb, err);
    }
    return make_engine<imb_cm, imb_gcm<sizeof(gcm_key_data), K>>(k, engine::ipsec_mb, err);
}

} // namespace

bool ipsec_mb_available() noexcept
{
    static const bool ok = [] {
        IMB_MGR* m = new_mgr(mgr_kind::gcm);
        if (m == nullptr) {
            return false;
        }
        free_mb_mgr(m);
        return true;
    }();
    return ok;
}

std::unique_ptr<srtp_context_impl> make_ipsec_mb_context(const session_keys& k, std::string& err,
        bool compact_gcm)
{
    if (compact_gcm && gcm_key_bytes(mgr_kind::gcm_compact) != 0) {
        return make_for<mgr_kind::gcm_compact>(k, err);
    }
    return make_for<mgr_kind::gcm>(k, err);
}

bool ipsec_mb_gcm_guard_check(bool compact_gcm, size_t max_len, std::string& err)
{
    const mgr_kind kind = compact_gcm ? mgr_kind::gcm_compact : mgr_kind::gcm;
    const size_t n = gcm_key_bytes(kind);
    IMB_MGR* m = thread_mgr(kind);
    if (n == 0 || m == nullptr) {
        err = "no manager";
        return false;
    }
    const long page = sysconf(_SC_PAGESIZE);
    auto* map = static_cast<uint8_t*>(mmap(nullptr, size_t(page) * 2, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (map == MAP_FAILED || mprotect(map + page, size_t(page), PROT_NONE) != 0) {
        err = "mmap";
        return false;
    }
    auto* edge = reinterpret_cast<gcm_key_data*>(map + page - n); // n bytes, then a hole
    alignas(64) static uint8_t a[16384], b[16384], aad[64];
    const uint8_t iv[12] = {9, 8, 7};
    bool ok = true;
    for (size_t key_len : {size_t{16}, size_t{32}}) {
        const uint8_t key[32] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6};
        alignas(64) struct gcm_key_data full;
        if (key_len == 16) {
            IMB_AES128_GCM_PRE(m, key, &full);
        } else {
            IMB_AES256_GCM_PRE(m, key, &full);
        }
        // n is rounded up to a line and may pass the type's end (1008 bytes
        // for VAES/AVX-512): the rest of the window stays zero.
        std::memcpy(edge, &full, std::min(n, sizeof full));
        for (size_t len = 0; len <= max_len && ok; len += len < 300 ? 1 : 61) {
            for (size_t al : {size_t{8}, size_t{12}, size_t{44}}) {
                std::memset(a, 0x3c, len);
                std::memset(b, 0x3c, len);
                uint8_t t1[16], t2[16];
                struct gcm_context_data c;
                if (key_len == 16) {
                    IMB_AES128_GCM_ENC(m, &full, &c, a, a, len, iv, aad, al, t1, 16);
                    IMB_AES128_GCM_ENC(m, edge, &c, b, b, len, iv, aad, al, t2, 16);
                } else {
                    IMB_AES256_GCM_ENC(m, &full, &c, a, a, len, iv, aad, al, t1, 16);
                    IMB_AES256_GCM_ENC(m, edge, &c, b, b, len, iv, aad, al, t2, 16);
                }
                ok = ok && std::memcmp(a, b, len) == 0 && std::memcmp(t1, t2, 16) == 0;
                if (key_len == 16) {
                    IMB_AES128_GCM_DEC(m, edge, &c, b, b, len, iv, aad, al, t2, 16);
                } else {
                    IMB_AES256_GCM_DEC(m, edge, &c, b, b, len, iv, aad, al, t2, 16);
                }
                ok = ok && std::memcmp(t1, t2, 16) == 0;
            }
        }
        OPENSSL_cleanse(&full, sizeof full);
    }
    munmap(map, size_t(page) * 2);
    if (!ok) {
        err = "the schedule's first " + std::to_string(n) + " bytes give other results";
    }
    return ok;
}

size_t ipsec_mb_gcm_key_bytes(bool compact_gcm) noexcept
{
    return gcm_key_bytes(compact_gcm ? mgr_kind::gcm_compact : mgr_kind::gcm);
}

bool engine_keystream_ipsec_mb(const uint8_t* key, size_t key_len, const uint8_t iv[16],
        uint8_t* data, size_t len)
{
    if (!ipsec_mb_available()) {
        return false;
    }
    const char* err = nullptr;
    const uint8_t no_auth[20] = {};
    imb_cm c;
    return c.init(key, key_len, no_auth, err) && c.keystream(iv, data, len);
}

} // namespace detail

bool prepare_thread() noexcept
{
    using detail::mgr_kind;
    return !detail::ipsec_mb_available() ||
           (detail::thread_mgr(mgr_kind::gcm) != nullptr &&
                   detail::thread_mgr(mgr_kind::cm) != nullptr &&
                   (!compact_gcm() || detail::gcm_key_bytes(mgr_kind::gcm_compact) == 0 ||
                           detail::thread_mgr(mgr_kind::gcm_compact) != nullptr));
}

} // namespace isar::crypto
