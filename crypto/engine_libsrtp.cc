// The libsrtp engine: Debian's libsrtp2 (2.5, built on NSS), the reference
// implementation and a fallback. Two sessions per context, one with an
// ssrc_any_outbound template (protect) and one with ssrc_any_inbound
// (unprotect/verify).
//
// Known cost, accepted for this engine only: libsrtp clones its template stream
// with malloc on the first packet of each new SSRC (srtp_stream_clone). Isar
// bounds that to max_ssrcs streams per session by tracking SSRCs itself and
// answering ssrc_limit beyond that, and Isar's own engines never allocate.
#include <cstring>
#include <mutex>

#include <openssl/mem.h>
#include <srtp2/srtp.h>

#include "crypto/srtp_engine.h"

namespace isar::crypto::detail {

bool libsrtp_init(std::string& err)
{
    static std::once_flag once;
    static srtp_err_status_t st = srtp_err_status_fail;
    std::call_once(once, [] { st = srtp_init(); });
    if (st != srtp_err_status_ok) {
        err = "libsrtp: srtp_init() failed with status " + std::to_string(int(st));
        return false;
    }
    return true;
}

namespace {

status map_status(srtp_err_status_t st) noexcept
{
    switch (st) {
    case srtp_err_status_ok:
        return status::ok;
    case srtp_err_status_auth_fail:
        return status::auth_fail;
    case srtp_err_status_replay_fail:
    case srtp_err_status_replay_old:
    case srtp_err_status_key_expired:
        return status::replay;
    default:
        return status::bad_packet;
    }
}

// SSRCs a session has streams for; a fixed array, as in Isar's engines.
struct ssrc_set {
    uint32_t v[max_ssrcs] = {};
    size_t n = 0;
    bool has(uint32_t s) const noexcept
    {
        for (size_t i = 0; i < n; ++i) {
            if (v[i] == s) {
                return true;
            }
        }
        return false;
    }
    bool admits(uint32_t s) const noexcept { return n < max_ssrcs || has(s); }
    void add(uint32_t s) noexcept
    {
        if (!has(s) && n < max_ssrcs) {
            v[n++] = s;
        }
    }
};

class libsrtp_engine final : public srtp_context_impl {
public:
    explicit libsrtp_engine(suite s) noexcept
        : suite_(s), rtp_tag_(suite_rtp_tag_len(s)),
          rtcp_trailer_(suite_rtcp_tag_len(s) + 4)
    {
    }
    ~libsrtp_engine() override
    {
        if (tx_ != nullptr) {
            srtp_dealloc(tx_);
        }
        if (rx_ != nullptr) {
            srtp_dealloc(rx_);
        }
    }

    bool init(const key_material& km, std::string& err)
    {
        if (!libsrtp_init(err)) {
            return false;
        }
        srtp_policy_t p;
        std::memset(&p, 0, sizeof p);
        switch (km.s) {
        case suite::aes_cm_128_hmac_sha1_80:
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtp);
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);
            break;
        case suite::aes_cm_128_hmac_sha1_32:
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p.rtp);
            srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp); // RFC 4568 §6.2.2
            break;
        case suite::aead_aes_128_gcm:
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtp);
            srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtcp);
            break;
        case suite::aead_aes_256_gcm:
            srtp_crypto_policy_set_aes_gcm_256_16_auth(&p.rtp);
            srtp_crypto_policy_set_aes_gcm_256_16_auth(&p.rtcp);
            break;
        case suite::none:
            err = "libsrtp: suite 'none' has no keys";
            return false;
        }
        uint8_t key[max_master_key_len + max_master_salt_len];
        std::memcpy(key, km.key, km.key_len());
        std::memcpy(key + km.key_len(), km.salt, km.salt_len());
        p.key = key;
        p.window_size = replay_window;
        p.allow_repeat_tx = 0;
        p.ssrc.type = ssrc_any_outbound;
        srtp_err_status_t st = srtp_create(&tx_, &p);
        if (st == srtp_err_status_ok) {
            p.ssrc.type = ssrc_any_inbound;
            st = srtp_create(&rx_, &p);
        }
        OPENSSL_cleanse(key, sizeof key);
        if (st != srtp_err_status_ok) {
            err = "libsrtp: srtp_create failed with status " + std::to_string(int(st));
            return false;
        }
        return true;
    }

    status protect_rtp(uint8_t* buf, size_t len, size_t cap, size_t* out_len) noexcept override
    {
        rtp_view v;
        if (status st = parse_rtp(buf, len, v); st != status::ok) {
            return st;
        }
        if (cap < len || cap - len < rtp_tag_ || len > 65536) {
            return status::no_room;
        }
        if (!tx_ssrcs_.admits(v.ssrc)) {
            return status::ssrc_limit;
        }
        int l = int(len);
        status st = map_status(srtp_protect(tx_, buf, &l));
        if (st == status::ok) {
            tx_ssrcs_.add(v.ssrc);
            *out_len = size_t(l);
        }
        return st;
    }

    status unprotect_rtp(uint8_t* buf, size_t len, size_t* out_len) noexcept override
    {
        rtp_view v;
        if (status st = check_rx_rtp(buf, len, v); st != status::ok) {
            return st;
        }
        int l = int(len);
        status st = map_status(srtp_unprotect(rx_, buf, &l));
        if (st == status::ok) {
            rx_ssrcs_.add(v.ssrc);
            *out_len = size_t(l);
        }
        return st;
    }

    status verify_rtp(const uint8_t* buf, size_t len) noexcept override
    {
        rtp_view v;
        if (status st = check_rx_rtp(buf, len, v); st != status::ok) {
            return st;
        }
        uint8_t* s = thread_scratch();
        std::memcpy(s, buf, len);
        int l = int(len);
        status st = map_status(srtp_unprotect(rx_, s, &l));
        if (st == status::ok) {
            rx_ssrcs_.add(v.ssrc);
        }
        return st;
    }

    status protect_rtcp(uint8_t* buf, size_t len, size_t cap, size_t* out_len) noexcept override
    {
        if (status st = check_rtcp_header(buf, len, 0); st != status::ok) {
            return st;
        }
        if (cap < len || cap - len < rtcp_trailer_ || len > 65536) {
            return status::no_room;
        }
        uint32_t ssrc = load_be32(buf + 4);
        if (!tx_ssrcs_.admits(ssrc)) {
            return status::ssrc_limit;
        }
        int l = int(len);
        status st = map_status(srtp_protect_rtcp(tx_, buf, &l));
        if (st == status::ok) {
            tx_ssrcs_.add(ssrc);
            *out_len = size_t(l);
        }
        return st;
    }

    status unprotect_rtcp(uint8_t* buf, size_t len, size_t* out_len) noexcept override
    {
        if (status st = check_rx_rtcp(buf, len); st != status::ok) {
            return st;
        }
        int l = int(len);
        status st = map_status(srtp_unprotect_rtcp(rx_, buf, &l));
        if (st == status::ok) {
            rx_ssrcs_.add(load_be32(buf + 4));
            *out_len = size_t(l);
        }
        return st;
    }

    status verify_rtcp(const uint8_t* buf, size_t len) noexcept override
    {
        if (status st = check_rx_rtcp(buf, len); st != status::ok) {
            return st;
        }
        uint8_t* s = thread_scratch();
        std::memcpy(s, buf, len);
        int l = int(len);
        status st = map_status(srtp_unprotect_rtcp(rx_, s, &l));
        if (st == status::ok) {
            rx_ssrcs_.add(load_be32(buf + 4));
        }
        return st;
    }

    suite get_suite() const noexcept override { return suite_; }
    engine get_engine() const noexcept override { return engine::libsrtp; }
    bool set_rtcp_tx_index(uint32_t, uint32_t) noexcept override { return false; }
    context_layout layout() const noexcept override { return {sizeof *this, 0, 0, 0, 0}; }
    // libsrtp allocates a stream per SSRC itself; Isar does not grow it.
    bool reserve_ssrcs(uint32_t slots, uint32_t) override { return slots <= max_ssrcs; }
    uint32_t ssrc_capacity() const noexcept override { return max_ssrcs; }

private:
    // Isar's own bounds checks first, so every engine answers malformed input
    // the same way and libsrtp never sees it.
    status check_rx_rtp(const uint8_t* buf, size_t len, rtp_view& v) const noexcept
    {
        if (len < 12 + rtp_tag_) {
            return status::too_short;
        }
        if (status st = parse_rtp(buf, len - rtp_tag_, v); st != status::ok) {
            return st;
        }
        if (len > scratch_size - 64) {
            return status::bad_packet;
        }
        return rx_ssrcs_.admits(v.ssrc) ? status::ok : status::ssrc_limit;
    }

    status check_rx_rtcp(const uint8_t* buf, size_t len) const noexcept
    {
        if (status st = check_rtcp_header(buf, len, rtcp_trailer_); st != status::ok) {
            return st;
        }
        if (len > scratch_size - 64) {
            return status::bad_packet;
        }
        return rx_ssrcs_.admits(load_be32(buf + 4)) ? status::ok : status::ssrc_limit;
    }

    suite suite_;
    size_t rtp_tag_;
    size_t rtcp_trailer_;
    srtp_t tx_ = nullptr;
    srtp_t rx_ = nullptr;
    ssrc_set tx_ssrcs_;
    ssrc_set rx_ssrcs_;
};

} // namespace

std::unique_ptr<srtp_context_impl> make_libsrtp_context(const key_material& km, std::string& err)
{
    auto c = std::make_unique<libsrtp_engine>(km.s);
    if (!c->init(km, err)) {
        return nullptr;
    }
    return c;
}

} // namespace isar::crypto::detail
