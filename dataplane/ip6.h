// An IPv6 address as the dataplane handles it: 16 bytes in network order,
// 8-byte aligned so that compares and copies are two 64-bit words.
#pragma once

#include <cstdint>
#include <cstring>

namespace isar::dp {

struct ip6_addr {
    alignas(8) uint8_t b[16] = {};

    uint64_t word(unsigned i) const noexcept
    {
        uint64_t w;
        std::memcpy(&w, b + 8 * i, 8);
        return w;
    }
    bool operator==(const ip6_addr& o) const noexcept
    {
        return ((word(0) ^ o.word(0)) | (word(1) ^ o.word(1))) == 0;
    }
    bool is_zero() const noexcept { return (word(0) | word(1)) == 0; }
    // XOR of the four 32-bit words (as stored): a cheap 32-bit digest for
    // packed endpoints and hashes. Not unique: compare the whole address.
    uint32_t fold32() const noexcept
    {
        const uint64_t w = word(0) ^ word(1);
        return static_cast<uint32_t>(w) ^ static_cast<uint32_t>(w >> 32);
    }
    // fe80::/10
    bool is_link_local() const noexcept { return b[0] == 0xfe && (b[1] & 0xc0) == 0x80; }
    // ff00::/8
    bool is_multicast() const noexcept { return b[0] == 0xff; }
    // ff02::1:ffXX:XXXX (RFC 4291 §2.7.1): where Neighbor Solicitations for
    // this address go.
    ip6_addr solicited_node() const noexcept
    {
        ip6_addr s;
        s.b[0] = 0xff;
        s.b[1] = 0x02;
        s.b[11] = 0x01;
        s.b[12] = 0xff;
        s.b[13] = b[13];
        s.b[14] = b[14];
        s.b[15] = b[15];
        return s;
    }
    // ff02::1, all nodes.
    static ip6_addr all_nodes() noexcept
    {
        ip6_addr s;
        s.b[0] = 0xff;
        s.b[1] = 0x02;
        s.b[15] = 0x01;
        return s;
    }
};

// Whether a and b agree in their first `len` bits (0..128).
inline bool same_prefix(const ip6_addr& a, const ip6_addr& b, unsigned len) noexcept
{
    if (len > 128)
        len = 128;
    const unsigned full = len / 8;
    if (std::memcmp(a.b, b.b, full) != 0)
        return false;
    const unsigned rest = len % 8;
    if (rest == 0)
        return true;
    const uint8_t mask = static_cast<uint8_t>(0xff00u >> rest);
    return ((a.b[full] ^ b.b[full]) & mask) == 0;
}

} // namespace isar::dp
