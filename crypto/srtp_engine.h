// Internal: RFC 3711 / RFC 7714 packet logic over a pluggable cipher backend.
// One instantiation per (engine, suite family); see engine_boringssl.cc and
// engine_ipsec_mb.cc for the backends. Everything here runs per packet: no
// allocation, no lock, no system call, no exception, no logging.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include <openssl/mem.h>

#include "crypto/srtp_internal.h"
#include "crypto/ssrc_table.h"

namespace isar::crypto::detail {

// ---- RTP header ---------------------------------------------------------------------

struct rtp_view {
    size_t hdr_len; // fixed header + CSRCs + header extension
    uint32_t ssrc;
    uint16_t seq;
};

// Parses the RTP header within buf[0, body_len) (body_len excludes any SRTP
// trailer). Every length read from the packet is bounds-checked.
inline status parse_rtp(const uint8_t* p, size_t body_len, rtp_view& v) noexcept
{
    if (body_len < 12) {
        return status::too_short;
    }
    if ((p[0] & 0xc0) != 0x80) {
        return status::bad_packet;
    }
    size_t h = 12 + 4 * size_t(p[0] & 0x0f);
    if (h > body_len) {
        return status::bad_packet;
    }
    if ((p[0] & 0x10) != 0) {
        if (h + 4 > body_len) {
            return status::bad_packet;
        }
        h += 4 + 4 * size_t(load_be16(p + h + 2));
        if (h > body_len) {
            return status::bad_packet;
        }
    }
    v.hdr_len = h;
    v.ssrc = load_be32(p + 8);
    v.seq = load_be16(p + 2);
    return status::ok;
}

inline status check_rtcp_header(const uint8_t* p, size_t len, size_t trailer) noexcept
{
    if (len < 8 + trailer) {
        return status::too_short;
    }
    if ((p[0] & 0xc0) != 0x80) {
        return status::bad_packet;
    }
    return status::ok;
}

constexpr uint64_t index_mask = (uint64_t(1) << 48) - 1;

// RFC 3711 §3.3.1 / Appendix A, with libsrtp's rule that the ROC is taken as 0
// until the highest index passes 2^15 (so a first packet never guesses ROC -1).
inline uint64_t estimate_index(const replay_window_state& w, uint16_t seq) noexcept
{
    if (!w.seen() || w.top <= 32768) {
        return seq;
    }
    uint64_t roc = w.top >> 16;
    uint32_t s_l = uint32_t(w.top & 0xffff);
    uint64_t v = roc;
    if (s_l < 32768) {
        if (uint32_t(seq) > s_l + 32768) {
            v = roc - 1;
        }
    } else if (s_l - 32768 > uint32_t(seq)) {
        v = roc + 1;
    }
    return ((v << 16) | seq) & index_mask;
}

// ---- IVs ------------------------------------------------------------------------

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the IVs below combine native-order salt loads with byte-swapped values");

// The IVs are built in registers and stored once: byte-wise stores followed by
// wider loads of the same bytes would stall on store forwarding, per packet.

// RFC 3711 §4.1.1: IV = (k_s * 2^16) ^ (SSRC * 2^64) ^ (i * 2^16).
inline void aes_cm_iv(const uint8_t salt[14], uint32_t ssrc, uint64_t index, uint8_t iv[16]) noexcept
{
    uint64_t s0 = 0, s1 = 0;
    std::memcpy(&s0, salt, 8);
    std::memcpy(&s1, salt + 8, 6); // bytes 14-15 of the IV are zero
    const uint64_t w0 = s0 ^ __builtin_bswap64(uint64_t{ssrc});
    const uint64_t w1 = s1 ^ __builtin_bswap64((index & 0xffffffffffffull) << 16);
    std::memcpy(iv, &w0, 8);
    std::memcpy(iv + 8, &w1, 8);
}

// RFC 7714 §8.1 (RTP: 00 00 | SSRC | ROC | SEQ) and §9.1 (RTCP: 00 00 | SSRC |
// 00 00 | 0 + 31-bit index), each XOR the 12-byte session salt. `hi` gives
// bytes 6-7, `lo` bytes 8-11.
inline void gcm_iv(const uint8_t salt[12], uint32_t ssrc, uint32_t hi, uint32_t lo, uint8_t iv[12]) noexcept
{
    uint64_t s0;
    uint32_t s1;
    std::memcpy(&s0, salt, 8);
    std::memcpy(&s1, salt + 8, 4);
    const uint64_t w0 = s0 ^ __builtin_bswap64((uint64_t{ssrc} << 16) | (hi & 0xffff));
    const uint32_t w1 = s1 ^ __builtin_bswap32(lo);
    std::memcpy(iv, &w0, 8);
    std::memcpy(iv + 8, &w1, 4);
}

// ---- keys ---------------------------------------------------------------------------

// SRTCP's session keys, kept raw: SRTCP is a few packets a second per SSRC,
// so its key schedule is expanded per packet into per-thread storage
// (scratch_backend) instead of living in every context (an intel-ipsec-mb
// GCM schedule is 1 KB). Wiped on destruction.
struct rtcp_keys {
    uint8_t key[32] = {};
    uint8_t auth[20] = {}; // HMAC-SHA1 key; unused for GCM
    uint8_t salt[14] = {};
    uint8_t key_len = 0;
    rtcp_keys() = default;
    rtcp_keys(const rtcp_keys&) = delete;
    rtcp_keys& operator=(const rtcp_keys&) = delete;
    ~rtcp_keys()
    {
        OPENSSL_cleanse(key, sizeof key);
        OPENSSL_cleanse(auth, sizeof auth);
        OPENSSL_cleanse(salt, sizeof salt);
    }
};

// A backend expanded for one packet in per-thread storage: no allocation; its
// destructor wipes it when the packet is done. One at a time per thread.
template <class B>
class scratch_backend {
public:
    scratch_backend() noexcept : b_(new (slot()) B) {}
    ~scratch_backend() { b_->~B(); }
    scratch_backend(const scratch_backend&) = delete;
    scratch_backend& operator=(const scratch_backend&) = delete;
    B* operator->() noexcept { return b_; }

private:
    static void* slot() noexcept
    {
        alignas(64) static thread_local unsigned char s[sizeof(B)];
        return s;
    }
    B* b_;
};

// ---- AES-CM + HMAC-SHA1 ------------------------------------------------------------
//
// Backend contract (one instance per key: RTP, and SRTCP per packet):
//   bool init(const uint8_t* key, size_t key_len, const uint8_t auth[20], const char*& err);
//   // encrypt buf[off, off+enc_len) in place, then HMAC buf[0, auth_len)
//   bool encrypt_then_mac(const uint8_t iv[16], uint8_t* buf, size_t off, size_t enc_len,
//                         size_t auth_len, uint8_t digest[20]) noexcept;
//   // HMAC buf[0, auth_len), compare with tag; decrypt buf[off, off+enc_len).
//   // False on mismatch (the payload is then unspecified).
//   bool mac_then_decrypt(const uint8_t iv[16], uint8_t* buf, size_t off, size_t enc_len,
//                         size_t auth_len, const uint8_t* tag, size_t tag_len) noexcept;
//   // HMAC over data || tail (tail may or may not follow data in memory)
//   bool mac(const uint8_t* data, size_t len, const uint8_t* tail, size_t tail_len,
//            uint8_t digest[20]) noexcept;
//   bool keystream(const uint8_t iv[16], uint8_t* data, size_t len) noexcept;
//   // The parts an RTP packet of a few hundred bytes reads: add(ptr, len) each.
//   template <class F> void hot(F&& add) const noexcept;
//
// What both transforms share: identity, the RTP salt, per-SSRC state, raw
// SRTCP keys and the receive entry points (Derived provides rx_rtp/rx_rtcp;
// out_len == nullptr means verify only). Layout: line 0 holds the vtable
// pointer, the prefetch regions, the RTP salt and the table's counters; the
// first SSRC slot is line 1; then the other slots, the raw SRTCP keys (cold),
// and the derived engine's RTP key schedule, 64-byte aligned. Salts are key
// material: wiped with OPENSSL_cleanse, which the compiler may not elide.
template <class Derived, size_t SaltLen>
class engine_common : public srtp_context_impl {
public:
    engine_common(suite s, engine e) noexcept
        : suite_(s), engine_(e), rtp_tag_(static_cast<uint8_t>(suite_rtp_tag_len(s)))
    {
    }
    ~engine_common() override { OPENSSL_cleanse(rtp_salt_, sizeof rtp_salt_); }

    status unprotect_rtp(uint8_t* buf, size_t len, size_t* out_len) noexcept override
    {
        return self().rx_rtp(buf, len, out_len);
    }
    status verify_rtp(const uint8_t* buf, size_t len) noexcept override
    {
        return self().rx_rtp(const_cast<uint8_t*>(buf), len, nullptr);
    }
    status unprotect_rtcp(uint8_t* buf, size_t len, size_t* out_len) noexcept override
    {
        return self().rx_rtcp(buf, len, out_len);
    }
    status verify_rtcp(const uint8_t* buf, size_t len) noexcept override
    {
        return self().rx_rtcp(const_cast<uint8_t*>(buf), len, nullptr);
    }

    suite get_suite() const noexcept override { return suite_; }
    engine get_engine() const noexcept override { return engine_; }
    bool reserve_ssrcs(uint32_t slots, uint32_t per_source) override
    {
        return tab_.reserve(slots, per_source);
    }
    uint32_t ssrc_capacity() const noexcept override { return tab_.capacity(); }

    bool set_rtcp_tx_index(uint32_t ssrc, uint32_t index) noexcept override
    {
        ssrc_state* s = tab_.find_or_claim(ssrc);
        if (s == nullptr) {
            return false;
        }
        s->rtcp_tx_index = index;
        return true;
    }

protected:
    // The index protect uses: the relayed packet's own (relay_begin) when it
    // is this SSRC's, else estimated from this context's state.
    static uint64_t tx_index(const ssrc_state* s, const rtp_view& v) noexcept
    {
        const relay_hint& h = tls_relay_hint;
        if (h.armed && h.has_index && h.ssrc == v.ssrc) {
            return h.index;
        }
        return s != nullptr ? estimate_index(s->rtp, v.seq) : v.seq;
    }
    static void note_rx(uint32_t ssrc, uint64_t idx) noexcept
    {
        relay_hint& h = tls_relay_hint;
        if (h.armed) {
            h.has_index = true;
            h.ssrc = ssrc;
            h.index = idx;
        }
    }
    // Salts and raw SRTCP keys, and the prefetch regions: the header and
    // first slot, then those `hot(add)` names (the RTP backend's).
    template <class Hot>
    void set_keys(const session_keys& k, Hot&& hot) noexcept
    {
        std::memcpy(rtp_salt_, k.rtp_salt, SaltLen);
        std::memcpy(rtcp_.key, k.rtcp_key, k.key_len);
        std::memcpy(rtcp_.auth, k.rtcp_auth, sizeof rtcp_.auth);
        std::memcpy(rtcp_.salt, k.rtcp_salt, SaltLen);
        rtcp_.key_len = static_cast<uint8_t>(k.key_len);
        unsigned i = 0;
        this->set_hot(i++, this, static_cast<uint32_t>(static_cast<const char*>(tab_.hot_end()) -
                                                       reinterpret_cast<const char*>(this)));
        hot([&](const void* p, size_t n) { this->set_hot(i++, p, static_cast<uint32_t>(n)); });
    }
    context_layout layout_of(size_t object, size_t rtp_keys) const noexcept
    {
        return {object, sizeof tab_, rtp_keys, sizeof rtcp_, tab_.heap_bytes()};
    }

    suite suite_;
    engine engine_;
    uint8_t rtp_tag_;
    uint8_t rtp_salt_[SaltLen] = {};
    ssrc_table tab_;
    rtcp_keys rtcp_;

private:
    Derived& self() noexcept { return static_cast<Derived&>(*this); }
};

template <class Cm>
class cm_engine final : public engine_common<cm_engine<Cm>, 14> {
    using base = engine_common<cm_engine<Cm>, 14>;
    friend base;
    using base::rtcp_;
    using base::rtp_salt_;
    using base::rtp_tag_;
    using base::tab_;

public:
    cm_engine(suite s, engine e) noexcept : base(s, e) {}

    bool init(const session_keys& k, const char*& err)
    {
        if (!rtp_.init(k.rtp_key, k.key_len, k.rtp_auth, err)) {
            return false;
        }
        this->set_keys(k, [&](auto&& add) { rtp_.hot(add); });
        return true;
    }
    context_layout layout() const noexcept override
    {
        return this->layout_of(sizeof *this, sizeof rtp_);
    }

    status protect_rtp(uint8_t* buf, size_t len, size_t cap, size_t* out_len) noexcept override
    {
        rtp_view v;
        if (status st = parse_rtp(buf, len, v); st != status::ok) {
            return st;
        }
        if (cap < len || cap - len < rtp_tag_ || cap - len < 4) {
            return status::no_room;
        }
        ssrc_state* s = tab_.find(v.ssrc);
        uint64_t idx = base::tx_index(s, v);
        if (s != nullptr && !s->rtp.may_accept(idx)) {
            return status::replay; // would reuse keystream
        }
        if (s == nullptr && (s = tab_.claim(v.ssrc)) == nullptr) {
            return status::ssrc_limit;
        }
        uint8_t iv[16];
        aes_cm_iv(rtp_salt_, v.ssrc, idx, iv);
        store_be32(buf + len, uint32_t(idx >> 16)); // ROC, authenticated, then overwritten
        uint8_t d[20];
        if (!rtp_.encrypt_then_mac(iv, buf, v.hdr_len, len - v.hdr_len, len + 4, d)) {
            return status::no_room;
        }
        std::memcpy(buf + len, d, rtp_tag_);
        s->rtp.accept(idx);
        tab_.touch(s);
        *out_len = len + rtp_tag_;
        return status::ok;
    }

    status protect_rtcp(uint8_t* buf, size_t len, size_t cap, size_t* out_len) noexcept override
    {
        if (status st = check_rtcp_header(buf, len, 0); st != status::ok) {
            return st;
        }
        constexpr size_t trailer = 4 + 10;
        if (cap < len || cap - len < trailer) {
            return status::no_room;
        }
        uint32_t ssrc = load_be32(buf + 4);
        ssrc_state* s = tab_.find_or_claim(ssrc);
        if (s == nullptr) {
            return status::ssrc_limit;
        }
        if (s->rtcp_tx_index > 0x7fffffff) {
            return status::replay; // SRTCP index space used up: re-key
        }
        uint32_t idx = s->rtcp_tx_index;
        uint8_t iv[16];
        aes_cm_iv(rtcp_.salt, ssrc, idx, iv);
        store_be32(buf + len, 0x80000000u | idx); // E=1: always encrypted
        uint8_t d[20];
        scratch_backend<Cm> k;
        const char* err = nullptr;
        if (!k->init(rtcp_.key, rtcp_.key_len, rtcp_.auth, err) ||
            !k->encrypt_then_mac(iv, buf, 8, len - 8, len + 4, d)) {
            return status::no_room;
        }
        std::memcpy(buf + len + 4, d, 10);
        s->rtcp_tx_index = idx + 1;
        tab_.touch(s);
        *out_len = len + trailer;
        return status::ok;
    }

private:
    // out_len == nullptr: verify only (the buffer is not written).
    status rx_rtp(uint8_t* buf, size_t len, size_t* out_len) noexcept
    {
        if (len < 12 + rtp_tag_) {
            return status::too_short;
        }
        const size_t body = len - rtp_tag_;
        rtp_view v;
        if (status st = parse_rtp(buf, body, v); st != status::ok) {
            return st;
        }
        ssrc_state* s = tab_.find(v.ssrc);
        if (s == nullptr && !tab_.may_claim()) {
            return status::ssrc_limit;
        }
        uint64_t idx = s != nullptr ? estimate_index(s->rtp, v.seq) : v.seq;
        if (s != nullptr && !s->rtp.may_accept(idx)) {
            return status::replay;
        }
        uint8_t roc[4];
        store_be32(roc, uint32_t(idx >> 16));
        if (out_len == nullptr) {
            uint8_t d[20];
            if (!rtp_.mac(buf, body, roc, 4, d) || !ct_equal(d, buf + body, rtp_tag_)) {
                return status::auth_fail;
            }
        } else {
            // Put the ROC where the tag was so the MAC input is contiguous.
            uint8_t tag[10];
            std::memcpy(tag, buf + body, rtp_tag_);
            std::memcpy(buf + body, roc, 4);
            uint8_t iv[16];
            aes_cm_iv(rtp_salt_, v.ssrc, idx, iv);
            if (!rtp_.mac_then_decrypt(iv, buf, v.hdr_len, body - v.hdr_len, body + 4, tag, rtp_tag_)) {
                std::memcpy(buf + body, tag, rtp_tag_);
                return status::auth_fail;
            }
            *out_len = body;
        }
        if (s == nullptr && (s = tab_.claim(v.ssrc)) == nullptr) {
            return status::ssrc_limit; // authentic, but no slot (see ssrc_table)
        }
        s->rtp.accept(idx);
        tab_.touch(s);
        base::note_rx(v.ssrc, idx);
        return status::ok;
    }

    status rx_rtcp(uint8_t* buf, size_t len, size_t* out_len) noexcept
    {
        if (status st = check_rtcp_header(buf, len, 4 + 10); st != status::ok) {
            return st;
        }
        const size_t auth_len = len - 10;
        const uint32_t tr = load_be32(buf + auth_len - 4);
        const bool encrypted = (tr & 0x80000000u) != 0;
        const uint32_t idx = tr & 0x7fffffffu;
        const uint32_t ssrc = load_be32(buf + 4);
        ssrc_state* s = tab_.find(ssrc);
        if (s == nullptr && !tab_.may_claim()) {
            return status::ssrc_limit;
        }
        if (s != nullptr && !s->rtcp.may_accept(idx)) {
            return status::replay;
        }
        scratch_backend<Cm> k;
        const char* err = nullptr;
        if (!k->init(rtcp_.key, rtcp_.key_len, rtcp_.auth, err)) {
            return status::auth_fail;
        }
        if (out_len == nullptr) {
            uint8_t d[20];
            if (!k->mac(buf, auth_len, nullptr, 0, d) || !ct_equal(d, buf + auth_len, 10)) {
                return status::auth_fail;
            }
        } else {
            uint8_t iv[16];
            aes_cm_iv(rtcp_.salt, ssrc, idx, iv);
            const size_t enc_len = encrypted ? auth_len - 4 - 8 : 0;
            if (!k->mac_then_decrypt(iv, buf, 8, enc_len, auth_len, buf + auth_len, 10)) {
                return status::auth_fail;
            }
            *out_len = auth_len - 4;
        }
        if (s == nullptr && (s = tab_.claim(ssrc)) == nullptr) {
            return status::ssrc_limit;
        }
        s->rtcp.accept(idx);
        tab_.touch(s);
        return status::ok;
    }

    alignas(64) Cm rtp_;
};

// ---- AEAD AES-GCM ------------------------------------------------------------------
//
// Backend contract (one instance per key: RTP, and SRTCP per packet; `wide`
// = AES-256, from the suite, so the backend need not store it):
//   bool init(const uint8_t* key, size_t key_len, const char*& err);
//   template <class F> void hot(bool wide, F&& add) const noexcept; // as for AES-CM
//   bool seal(bool wide, const uint8_t iv[12], const uint8_t* aad, size_t aad_len,
//             uint8_t* data, size_t len, uint8_t tag[16]) noexcept;       // in place
//   bool open(bool wide, const uint8_t iv[12], const uint8_t* aad, size_t aad_len,
//             const uint8_t* in, size_t len, uint8_t* out, const uint8_t tag[16]) noexcept;
//             // out may == in
template <class Gcm>
class gcm_engine final : public engine_common<gcm_engine<Gcm>, 12> {
    using base = engine_common<gcm_engine<Gcm>, 12>;
    friend base;
    using base::rtcp_;
    using base::rtp_salt_;
    using base::tab_;
    // SRTCP's per-packet schedule: the backend's full-size form.
    using rtcp_backend = typename Gcm::full;

public:
    static constexpr size_t tag_len = 16;

    gcm_engine(suite s, engine e) noexcept : base(s, e) {}

    bool init(const session_keys& k, const char*& err)
    {
        if (!rtp_.init(k.rtp_key, k.key_len, err)) {
            return false;
        }
        this->set_keys(k, [&](auto&& add) { rtp_.hot(wide(), add); });
        return true;
    }
    context_layout layout() const noexcept override
    {
        return this->layout_of(sizeof *this, sizeof rtp_);
    }

    status protect_rtp(uint8_t* buf, size_t len, size_t cap, size_t* out_len) noexcept override
    {
        rtp_view v;
        if (status st = parse_rtp(buf, len, v); st != status::ok) {
            return st;
        }
        if (cap < len || cap - len < tag_len) {
            return status::no_room;
        }
        ssrc_state* s = tab_.find(v.ssrc);
        uint64_t idx = base::tx_index(s, v);
        if (s != nullptr && !s->rtp.may_accept(idx)) {
            return status::replay; // would reuse a GCM nonce
        }
        if (s == nullptr && (s = tab_.claim(v.ssrc)) == nullptr) {
            return status::ssrc_limit;
        }
        uint8_t iv[12];
        gcm_iv(rtp_salt_, v.ssrc, uint32_t(idx >> 32), uint32_t(idx), iv);
        if (!rtp_.seal(wide(), iv, buf, v.hdr_len, buf + v.hdr_len, len - v.hdr_len, buf + len)) {
            return status::no_room;
        }
        s->rtp.accept(idx);
        tab_.touch(s);
        *out_len = len + tag_len;
        return status::ok;
    }

    status protect_rtcp(uint8_t* buf, size_t len, size_t cap, size_t* out_len) noexcept override
    {
        if (status st = check_rtcp_header(buf, len, 0); st != status::ok) {
            return st;
        }
        constexpr size_t trailer = tag_len + 4;
        if (cap < len || cap - len < trailer) {
            return status::no_room;
        }
        uint32_t ssrc = load_be32(buf + 4);
        ssrc_state* s = tab_.find_or_claim(ssrc);
        if (s == nullptr) {
            return status::ssrc_limit;
        }
        if (s->rtcp_tx_index > 0x7fffffff) {
            return status::replay; // SRTCP index space used up: re-key
        }
        uint32_t idx = s->rtcp_tx_index;
        uint8_t iv[12];
        gcm_iv(rtcp_.salt, ssrc, 0, idx, iv);
        uint8_t aad[12]; // RTCP header (8) || E + SRTCP index (4)
        std::memcpy(aad, buf, 8);
        store_be32(aad + 8, 0x80000000u | idx);
        scratch_backend<rtcp_backend> k;
        const char* err = nullptr;
        if (!k->init(rtcp_.key, rtcp_.key_len, err) ||
            !k->seal(wide(), iv, aad, sizeof aad, buf + 8, len - 8, buf + len)) {
            return status::no_room;
        }
        std::memcpy(buf + len + tag_len, aad + 8, 4);
        s->rtcp_tx_index = idx + 1;
        tab_.touch(s);
        *out_len = len + trailer;
        return status::ok;
    }

private:
    status rx_rtp(uint8_t* buf, size_t len, size_t* out_len) noexcept
    {
        if (len < 12 + tag_len) {
            return status::too_short;
        }
        const size_t body = len - tag_len;
        rtp_view v;
        if (status st = parse_rtp(buf, body, v); st != status::ok) {
            return st;
        }
        if (out_len == nullptr && body - v.hdr_len > scratch_size) {
            return status::bad_packet;
        }
        ssrc_state* s = tab_.find(v.ssrc);
        if (s == nullptr && !tab_.may_claim()) {
            return status::ssrc_limit;
        }
        uint64_t idx = s != nullptr ? estimate_index(s->rtp, v.seq) : v.seq;
        if (s != nullptr && !s->rtp.may_accept(idx)) {
            return status::replay;
        }
        uint8_t iv[12];
        gcm_iv(rtp_salt_, v.ssrc, uint32_t(idx >> 32), uint32_t(idx), iv);
        uint8_t* out = out_len != nullptr ? buf + v.hdr_len : thread_scratch();
        if (!rtp_.open(wide(), iv, buf, v.hdr_len, buf + v.hdr_len, body - v.hdr_len, out, buf + body)) {
            return status::auth_fail;
        }
        if (out_len != nullptr) {
            *out_len = body;
        }
        if (s == nullptr && (s = tab_.claim(v.ssrc)) == nullptr) {
            return status::ssrc_limit; // authentic, but no slot (see ssrc_table)
        }
        s->rtp.accept(idx);
        tab_.touch(s);
        base::note_rx(v.ssrc, idx);
        return status::ok;
    }

    status rx_rtcp(uint8_t* buf, size_t len, size_t* out_len) noexcept
    {
        if (status st = check_rtcp_header(buf, len, tag_len + 4); st != status::ok) {
            return st;
        }
        if (len > scratch_size - 64) {
            return status::bad_packet;
        }
        const uint8_t* trailer = buf + len - 4;
        const uint32_t tr = load_be32(trailer);
        const bool encrypted = (tr & 0x80000000u) != 0;
        const uint32_t idx = tr & 0x7fffffffu;
        const uint32_t ssrc = load_be32(buf + 4);
        const size_t body = len - tag_len - 4; // header + (encrypted) reports
        const uint8_t* tag = buf + body;
        ssrc_state* s = tab_.find(ssrc);
        if (s == nullptr && !tab_.may_claim()) {
            return status::ssrc_limit;
        }
        if (s != nullptr && !s->rtcp.may_accept(idx)) {
            return status::replay;
        }
        uint8_t iv[12];
        gcm_iv(rtcp_.salt, ssrc, 0, idx, iv);
        scratch_backend<rtcp_backend> k;
        const char* err = nullptr;
        if (!k->init(rtcp_.key, rtcp_.key_len, err)) {
            return status::auth_fail;
        }
        bool ok;
        if (encrypted) {
            uint8_t aad[12];
            std::memcpy(aad, buf, 8);
            std::memcpy(aad + 8, trailer, 4);
            uint8_t* out = out_len != nullptr ? buf + 8 : thread_scratch();
            ok = k->open(wide(), iv, aad, sizeof aad, buf + 8, body - 8, out, tag);
        } else {
            // RFC 7714 §9.3: unencrypted SRTCP authenticates the whole packet and
            // the trailer as AAD.
            uint8_t* aad = thread_scratch();
            std::memcpy(aad, buf, body);
            std::memcpy(aad + body, trailer, 4);
            ok = k->open(wide(), iv, aad, body + 4, buf, 0, aad + body + 4, tag);
        }
        if (!ok) {
            return status::auth_fail;
        }
        if (out_len != nullptr) {
            *out_len = body;
        }
        if (s == nullptr && (s = tab_.claim(ssrc)) == nullptr) {
            return status::ssrc_limit;
        }
        s->rtcp.accept(idx);
        tab_.touch(s);
        return status::ok;
    }

    bool wide() const noexcept { return this->suite_ == suite::aead_aes_256_gcm; }

    alignas(64) Gcm rtp_;
};

// Builds the engine for k.s (an AES-CM suite) over the backend Cm, or (GCM)
// over Gcm.
template <class Engine>
std::unique_ptr<srtp_context_impl> make_one(const session_keys& k, engine e, std::string& err)
{
    auto c = std::unique_ptr<Engine>(new (std::nothrow) Engine(k.s, e));
    const char* why = "SRTP context: out of memory";
    if (c == nullptr || !c->init(k, why)) {
        err = why;
        return nullptr;
    }
    return c;
}

template <class Cm, class Gcm>
std::unique_ptr<srtp_context_impl> make_engine(const session_keys& k, engine e, std::string& err)
{
    switch (k.s) {
    case suite::aes_cm_128_hmac_sha1_80:
    case suite::aes_cm_128_hmac_sha1_32:
        return make_one<cm_engine<Cm>>(k, e, err);
    case suite::aead_aes_128_gcm:
    case suite::aead_aes_256_gcm:
        return make_one<gcm_engine<Gcm>>(k, e, err);
    case suite::none:
        break;
    }
    err = "SRTP context: suite 'none' has no keys";
    return nullptr;
}

} // namespace isar::crypto::detail
