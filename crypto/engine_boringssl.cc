// The boringssl engine: AES-CTR (AES_ctr128_encrypt) + HMAC-SHA1 from
// precomputed inner/outer SHA-1 states, and EVP_AEAD AES-GCM.
#include <cstring>

#include <openssl/aead.h>
#include <openssl/aes.h>
#include <openssl/base64.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/sha.h>

#include "crypto/boringssl_probe.h"
#include "crypto/srtp_engine.h"

namespace isar::crypto::detail {
namespace {

class bssl_cm {
public:
    bssl_cm() = default;
    bssl_cm(const bssl_cm&) = delete;
    bssl_cm& operator=(const bssl_cm&) = delete;
    ~bssl_cm()
    {
        OPENSSL_cleanse(&aes_, sizeof aes_);
        OPENSSL_cleanse(inner_, sizeof inner_);
        OPENSSL_cleanse(outer_, sizeof outer_);
    }

    bool init(const uint8_t* key, size_t key_len, const uint8_t auth[20], const char*& err)
    {
        if (AES_set_encrypt_key(key, unsigned(key_len * 8), &aes_) != 0) {
            err = "boringssl: AES key setup failed";
            return false;
        }
        // HMAC (RFC 2104) with the key's ipad/opad blocks hashed once here, so a
        // packet costs only the message and the outer block. Only the 20-byte
        // chaining values are kept (a SHA_CTX is 96 bytes); a packet rebuilds
        // the context after one 64-byte block from them.
        uint8_t pad[SHA_CBLOCK];
        SHA_CTX c;
        std::memset(pad, 0x36, sizeof pad);
        for (size_t i = 0; i < 20; ++i) {
            pad[i] ^= auth[i];
        }
        SHA1_Init(&c);
        SHA1_Update(&c, pad, sizeof pad);
        std::memcpy(inner_, c.h, sizeof inner_);
        std::memset(pad, 0x5c, sizeof pad);
        for (size_t i = 0; i < 20; ++i) {
            pad[i] ^= auth[i];
        }
        SHA1_Init(&c);
        SHA1_Update(&c, pad, sizeof pad);
        std::memcpy(outer_, c.h, sizeof outer_);
        OPENSSL_cleanse(pad, sizeof pad);
        OPENSSL_cleanse(&c, sizeof c);
        return true;
    }

    bool keystream(const uint8_t iv[16], uint8_t* data, size_t len) noexcept
    {
        uint8_t ctr[16];
        uint8_t ecount[16];
        unsigned num = 0;
        std::memcpy(ctr, iv, 16);
        AES_ctr128_encrypt(data, data, len, &aes_, ctr, ecount, &num);
        return true;
    }

    bool mac(const uint8_t* data, size_t len, const uint8_t* tail, size_t tail_len,
            uint8_t digest[20]) noexcept
    {
        SHA_CTX c;
        after_block(c, inner_);
        SHA1_Update(&c, data, len);
        if (tail_len != 0) {
            SHA1_Update(&c, tail, tail_len);
        }
        uint8_t ih[SHA_DIGEST_LENGTH];
        SHA1_Final(ih, &c);
        after_block(c, outer_);
        SHA1_Update(&c, ih, sizeof ih);
        SHA1_Final(digest, &c);
        return true;
    }

    bool encrypt_then_mac(const uint8_t iv[16], uint8_t* buf, size_t off, size_t enc_len,
            size_t auth_len, uint8_t digest[20]) noexcept
    {
        keystream(iv, buf + off, enc_len);
        return mac(buf, auth_len, nullptr, 0, digest);
    }

    bool mac_then_decrypt(const uint8_t iv[16], uint8_t* buf, size_t off, size_t enc_len,
            size_t auth_len, const uint8_t* tag, size_t tag_len) noexcept
    {
        uint8_t d[20];
        mac(buf, auth_len, nullptr, 0, d);
        if (!ct_equal(d, tag, tag_len)) {
            return false; // forged packets are not decrypted
        }
        if (enc_len != 0) {
            keystream(iv, buf + off, enc_len);
        }
        return true;
    }

    template <class F>
    void hot(F&& add) const noexcept
    {
        add(this, sizeof *this); // AES_KEY keeps `rounds` after all 15 round keys
    }

private:
    // The state SHA1_Init + SHA1_Update of one 64-byte block leaves.
    static void after_block(SHA_CTX& c, const uint32_t h[5]) noexcept
    {
        std::memcpy(c.h, h, sizeof c.h);
        c.Nl = SHA_CBLOCK * 8;
        c.Nh = 0;
        c.num = 0;
    }

    AES_KEY aes_;
    uint32_t inner_[5];
    uint32_t outer_[5];
};

class bssl_gcm {
public:
    using full = bssl_gcm; // SRTCP's per-packet form: the same

    bssl_gcm() = default;
    bssl_gcm(const bssl_gcm&) = delete;
    bssl_gcm& operator=(const bssl_gcm&) = delete;
    ~bssl_gcm()
    {
        if (live_) {
            EVP_AEAD_CTX_cleanup(&ctx_);
            // BoringSSL's AES-GCM cleanup frees nothing and wipes nothing:
            // the key schedule and GHASH table live in ctx_ itself.
            OPENSSL_cleanse(&ctx_, sizeof(ctx_));
        }
    }

    // EVP_AEAD_CTX_init keeps AES-GCM's state inline (no allocation), so this
    // may run per SRTCP packet.
    bool init(const uint8_t* key, size_t key_len, const char*& err)
    {
        const EVP_AEAD* aead = key_len == 32 ? EVP_aead_aes_256_gcm() : EVP_aead_aes_128_gcm();
        if (!EVP_AEAD_CTX_init(&ctx_, aead, key, key_len, 16, nullptr)) {
            ERR_clear_error();
            err = "boringssl: EVP_AEAD_CTX_init failed";
            return false;
        }
        live_ = true;
        return true;
    }

    bool seal(bool, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, uint8_t* data,
            size_t len, uint8_t tag[16]) noexcept
    {
        size_t tag_len = 0;
        if (!EVP_AEAD_CTX_seal_scatter(&ctx_, data, tag, &tag_len, 16, iv, 12, data, len, nullptr,
                    0, aad, aad_len)) {
            ERR_clear_error();
            return false;
        }
        return true;
    }

    bool open(bool, const uint8_t iv[12], const uint8_t* aad, size_t aad_len, const uint8_t* in,
            size_t len, uint8_t* out, const uint8_t tag[16]) noexcept
    {
        if (!EVP_AEAD_CTX_open_gather(&ctx_, out, iv, 12, in, len, tag, 16, aad, aad_len)) {
            ERR_clear_error(); // keep the thread's error queue empty for forged packets
            return false;
        }
        return true;
    }

    template <class F>
    void hot(bool, F&& add) const noexcept
    {
        add(this, sizeof *this);
    }

private:
    EVP_AEAD_CTX ctx_;
    bool live_ = false;
};

} // namespace

std::unique_ptr<srtp_context_impl> make_boringssl_context(const session_keys& k, std::string& err)
{
    return make_engine<bssl_cm, bssl_gcm>(k, engine::boringssl, err);
}

bool engine_keystream_boringssl(const uint8_t* key, size_t key_len, const uint8_t iv[16],
        uint8_t* data, size_t len)
{
    const char* err = nullptr;
    const uint8_t no_auth[20] = {};
    bssl_cm c;
    return c.init(key, key_len, no_auth, err) && c.keystream(iv, data, len);
}

// Test hook used by test_boringssl_binding: function addresses as this
// translation unit (i.e. Isar's boringssl engine) sees them.
const void* boringssl_symbol_probe(int i) noexcept
{
    switch (i) {
    case 0:
        return reinterpret_cast<const void*>(&EVP_aead_aes_128_gcm);
    case 1:
        return reinterpret_cast<const void*>(&EVP_aead_aes_256_gcm);
    case 2:
        return reinterpret_cast<const void*>(&EVP_AEAD_CTX_init);
    case 3:
        return reinterpret_cast<const void*>(&EVP_AEAD_CTX_seal_scatter);
    case 4:
        return reinterpret_cast<const void*>(&EVP_AEAD_CTX_open_gather);
    case 5:
        return reinterpret_cast<const void*>(&AES_set_encrypt_key);
    case 6:
        return reinterpret_cast<const void*>(&AES_ctr128_encrypt);
    case 7:
        return reinterpret_cast<const void*>(&AES_encrypt);
    case 8:
        return reinterpret_cast<const void*>(&SHA1_Init);
    case 9:
        return reinterpret_cast<const void*>(&SHA1_Update);
    case 10:
        return reinterpret_cast<const void*>(&SHA1_Final);
    case 11:
        return reinterpret_cast<const void*>(&OPENSSL_cleanse);
    case 12:
        return reinterpret_cast<const void*>(&ERR_clear_error);
    case 13:
        return reinterpret_cast<const void*>(&EVP_DecodeBase64);
    default:
        return nullptr;
    }
}

const char* boringssl_symbol_probe_name(int i) noexcept
{
    static const char* const names[] = {"EVP_aead_aes_128_gcm", "EVP_aead_aes_256_gcm",
            "EVP_AEAD_CTX_init", "EVP_AEAD_CTX_seal_scatter", "EVP_AEAD_CTX_open_gather",
            "AES_set_encrypt_key", "AES_ctr128_encrypt", "AES_encrypt", "SHA1_Init", "SHA1_Update",
            "SHA1_Final", "OPENSSL_cleanse", "ERR_clear_error", "EVP_DecodeBase64"};
    return i >= 0 && i < int(sizeof names / sizeof names[0]) ? names[i] : nullptr;
}

} // namespace isar::crypto::detail
