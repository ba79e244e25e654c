// Helpers shared by the crypto tests.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/srtp_context.h"
#include "crypto/srtp_internal.h"
#include "crypto/suite.h"

namespace isar::crypto::test {

using bytes = std::vector<uint8_t>;

inline bytes hex(std::string_view s)
{
    bytes out;
    int hi = -1;
    for (char c : s) {
        int v;
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            v = c - 'A' + 10;
        } else {
            continue; // spaces, newlines
        }
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(uint8_t(hi << 4 | v));
            hi = -1;
        }
    }
    return out;
}

inline const std::vector<suite>& all_suites()
{
    static const std::vector<suite> s = {suite::aes_cm_128_hmac_sha1_80,
            suite::aes_cm_128_hmac_sha1_32, suite::aead_aes_128_gcm, suite::aead_aes_256_gcm};
    return s;
}

// Engines usable on this machine (ipsec_mb only with AES-NI).
inline std::vector<engine> all_engines()
{
    std::vector<engine> e;
    if (detail::ipsec_mb_available()) {
        e.push_back(engine::ipsec_mb);
    }
    e.push_back(engine::boringssl);
    e.push_back(engine::libsrtp);
    return e;
}

// Isar's own engines (the ones that take session keys).
inline std::vector<engine> own_engines()
{
    std::vector<engine> e;
    if (detail::ipsec_mb_available()) {
        e.push_back(engine::ipsec_mb);
    }
    e.push_back(engine::boringssl);
    return e;
}

inline key_material random_key(suite s, std::mt19937& rng)
{
    key_material km;
    km.s = s;
    for (auto& b : km.key) {
        b = uint8_t(rng());
    }
    for (auto& b : km.salt) {
        b = uint8_t(rng());
    }
    return km;
}

// An RTP packet: `csrcs` CSRCs, an optional header extension of `ext_words`
// 32-bit words, and `payload` random bytes. Room for the trailer is reserved.
struct packet {
    bytes buf;
    size_t len = 0;
    uint8_t* data() { return buf.data(); }
    size_t cap() const { return buf.size(); }
    bytes view() const { return bytes(buf.begin(), buf.begin() + long(len)); }
};

inline packet make_rtp(uint32_t ssrc, uint16_t seq, size_t payload, std::mt19937& rng,
        unsigned csrcs = 0, int ext_words = -1)
{
    packet p;
    size_t hdr = 12 + 4 * csrcs + (ext_words >= 0 ? 4 + 4 * size_t(ext_words) : 0);
    p.buf.assign(hdr + payload + max_trailer, 0);
    uint8_t* b = p.buf.data();
    b[0] = uint8_t(0x80 | (ext_words >= 0 ? 0x10 : 0) | csrcs);
    b[1] = 96;
    b[2] = uint8_t(seq >> 8);
    b[3] = uint8_t(seq);
    detail::store_be32(b + 4, uint32_t(seq) * 160);
    detail::store_be32(b + 8, ssrc);
    size_t o = 12;
    for (unsigned i = 0; i < csrcs; ++i, o += 4) {
        detail::store_be32(b + o, uint32_t(rng()));
    }
    if (ext_words >= 0) {
        b[o] = 0xbe;
        b[o + 1] = 0xde;
        b[o + 2] = uint8_t(ext_words >> 8);
        b[o + 3] = uint8_t(ext_words);
        o += 4;
        for (int i = 0; i < ext_words; ++i, o += 4) {
            detail::store_be32(b + o, uint32_t(rng()));
        }
    }
    for (size_t i = 0; i < payload; ++i) {
        b[o + i] = uint8_t(rng());
    }
    p.len = hdr + payload;
    return p;
}

// An RTCP SR/RR-like compound packet of 8 + 4*words bytes.
inline packet make_rtcp(uint32_t ssrc, size_t words, std::mt19937& rng)
{
    packet p;
    size_t len = 8 + 4 * words;
    p.buf.assign(len + max_trailer, 0);
    uint8_t* b = p.buf.data();
    b[0] = 0x80 | uint8_t(rng() % 2);
    b[1] = (rng() % 2) != 0 ? 200 : 201;
    b[2] = uint8_t((len / 4 - 1) >> 8);
    b[3] = uint8_t(len / 4 - 1);
    detail::store_be32(b + 4, ssrc);
    for (size_t i = 8; i < len; ++i) {
        b[i] = uint8_t(rng());
    }
    p.len = len;
    return p;
}

inline std::string label(suite s, engine e)
{
    return std::string(suite_name(s)) + "/" + engine_name(e);
}

} // namespace isar::crypto::test
