// IPv6 test frames (Ethernet + IPv6 [+ extension headers] + UDP or ICMPv6),
// built and checked independently of the dataplane's code (ones_sum from the
// packet builder).
#pragma once

#include "dataplane/ip6.h"
#include "dataplane/leg.h"
#include "tests/support/packet_builder.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace isar::test {

// "2001:2::1" -> address; aborts on a typo.
inline dp::ip6_addr ip6(const char* s)
{
    dp::ip6_addr a;
    if (inet_pton(AF_INET6, s, a.b) != 1)
        abort();
    return a;
}

// The IPv6 relay address and the two endpoints of the IPv6 relay tests.
inline const dp::ip6_addr relay6 = ip6("2001:2::1");
struct peer6 {
    dp::ip6_addr ip;
    uint16_t port;
    rte_ether_addr mac;
    dp::packed_ep ep() const { return dp::pack_ep6(ip, rte_cpu_to_be_16(port)); }
};
inline const peer6 alice6{ip6("2001:2::10"), 5000, mac(0x0a, 0x06)};
inline const peer6 bob6{ip6("2001:2::20"), 6000, mac(0x14, 0x06)};

struct udp6_spec {
    rte_ether_addr dst_mac = mac(0, 1);
    rte_ether_addr src_mac = mac(0, 2);
    uint8_t version = 6;
    uint8_t tc = 0;
    uint8_t hop_limit = 64;
    dp::ip6_addr src, dst;
    // Extension headers before the upper layer: (type, total length in
    // bytes, a multiple of 8) each.
    std::vector<std::pair<uint8_t, uint16_t>> ext;
    uint8_t proto = 17;                  // upper layer: UDP (or 58, 6, ...)
    std::optional<uint16_t> payload_len; // default: the real one
    uint16_t src_port = 0, dst_port = 0;
    std::optional<uint16_t> udp_length;
    std::optional<uint16_t> udp_cksum; // default: the correct one
    std::optional<bytes> l4;           // raw upper-layer bytes instead of UDP
    bytes payload;
    size_t eth_pad = 0;
    std::optional<size_t> truncate;
};

// The upper-layer checksum over the IPv6 pseudo-header (RFC 8200 §8.1).
inline uint16_t cksum6(const dp::ip6_addr& s, const dp::ip6_addr& d, uint8_t proto,
                       const uint8_t* l4, size_t n)
{
    uint8_t ph[40] = {};
    std::memcpy(ph, s.b, 16);
    std::memcpy(ph + 16, d.b, 16);
    ph[34] = static_cast<uint8_t>(n >> 8);
    ph[35] = static_cast<uint8_t>(n);
    ph[39] = proto;
    const uint16_t h = ones_sum(ph, sizeof(ph));
    return static_cast<uint16_t>(~ones_sum(l4, n, h));
}

inline bytes build(const udp6_spec& s)
{
    bytes l4;
    if (s.l4) {
        l4 = *s.l4;
    } else {
        const size_t ulen = 8 + s.payload.size();
        l4 = {uint8_t(s.src_port >> 8),
              uint8_t(s.src_port),
              uint8_t(s.dst_port >> 8),
              uint8_t(s.dst_port),
              0,
              0,
              0,
              0};
        const uint16_t ul = s.udp_length.value_or(static_cast<uint16_t>(ulen));
        l4[4] = uint8_t(ul >> 8);
        l4[5] = uint8_t(ul);
        l4.insert(l4.end(), s.payload.begin(), s.payload.end());
        uint16_t ck = cksum6(s.src, s.dst, 17, l4.data(), l4.size());
        if (ck == 0)
            ck = 0xffff;
        ck = s.udp_cksum.value_or(ck);
        l4[6] = uint8_t(ck >> 8);
        l4[7] = uint8_t(ck);
    }
    bytes ext;
    for (size_t i = 0; i < s.ext.size(); i++) {
        const uint8_t next = i + 1 < s.ext.size() ? s.ext[i + 1].first : s.proto;
        bytes h(s.ext[i].second, 0);
        h[0] = next;
        h[1] = static_cast<uint8_t>(s.ext[i].second / 8 - 1);
        if (s.ext[i].first == 44) // Fragment: fixed 8 bytes, no length field
            h[1] = 0;
        if (h.size() > 2) { // PadN over the rest (options headers)
            h[2] = 1;
            h[3] = static_cast<uint8_t>(h.size() - 4);
        }
        ext.insert(ext.end(), h.begin(), h.end());
    }
    // Sized once and filled in place: GCC 12 warns (-Warray-bounds, wrongly)
    // about vector::insert's reallocation of the 14-byte start.
    bytes f(14 + 40 + ext.size() + l4.size(), 0);
    std::memcpy(f.data(), s.dst_mac.addr_bytes, 6);
    std::memcpy(f.data() + 6, s.src_mac.addr_bytes, 6);
    f[12] = 0x86;
    f[13] = 0xdd;
    const uint16_t pl = s.payload_len.value_or(static_cast<uint16_t>(ext.size() + l4.size()));
    uint8_t ip[40] = {};
    ip[0] = static_cast<uint8_t>((s.version << 4) | (s.tc >> 4));
    ip[1] = static_cast<uint8_t>(s.tc << 4);
    ip[4] = uint8_t(pl >> 8);
    ip[5] = uint8_t(pl);
    ip[6] = s.ext.empty() ? s.proto : s.ext[0].first;
    ip[7] = s.hop_limit;
    std::memcpy(ip + 8, s.src.b, 16);
    std::memcpy(ip + 24, s.dst.b, 16);
    std::memcpy(f.data() + 14, ip, 40);
    std::copy(ext.begin(), ext.end(), f.begin() + 54);
    std::copy(l4.begin(), l4.end(), f.begin() + 54 + static_cast<std::ptrdiff_t>(ext.size()));
    f.resize(f.size() + s.eth_pad, 0);
    if (s.truncate && *s.truncate < f.size())
        f.resize(*s.truncate);
    return f;
}

// An untagged IPv6 frame without extension headers carrying UDP with a
// correct, non-zero checksum.
inline bool udp6_cksum_ok(const bytes& f)
{
    if (f.size() < 62 || f[12] != 0x86 || f[13] != 0xdd || f[20] != 17)
        return false;
    const size_t pl = (size_t{f[18]} << 8) | f[19];
    if (54 + pl > f.size() || (f[60] == 0 && f[61] == 0))
        return false;
    dp::ip6_addr s, d;
    std::memcpy(s.b, &f[22], 16);
    std::memcpy(d.b, &f[38], 16);
    bytes l4(f.begin() + 54, f.begin() + 54 + static_cast<long>(pl));
    return cksum6(s, d, 17, l4.data(), l4.size()) == 0;
}

} // namespace isar::test
