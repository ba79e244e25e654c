// RFC 1071 Internet checksum, fast: drop-ins for rte_raw_cksum() and
// rte_ipv4_udptcp_cksum() (DPDK 22.11 adds one 16-bit word per step, ~2 bytes
// per cycle). Used when the payload changed (SRTP) and the port has no TX
// checksum offload.
//
// Same convention as DPDK: the buffer is summed as native-endian 16-bit words
// from its first byte (any alignment: loads are memcpy), an odd trailing byte
// counts as if a zero byte followed it. The folded result equals DPDK's for
// every buffer DPDK's 32-bit sum does not overflow on (len <= 131074 bytes,
// any IP packet); beyond that DPDK loses carries and this stays correct.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <rte_byteorder.h>
#include <rte_ip.h>

#include "dataplane/byteorder.h"

namespace isar::dp {

// Folds a sum of 16- and 32-bit one's-complement words to 16 bits (not
// complemented; 2^16 = 1 mod 0xffff, so 32-bit words may be added whole).
// Each half is added to the other by one rotate and add: the upper half of
// x + rotr(x, w) is hi + lo with the end-around carry (the carry out of the
// lower half lands in it), as Linux's csum_fold does it - 6 instructions
// instead of 14. A zero sum stays 0, any other multiple of 0xffff gives
// 0xffff - as __rte_raw_cksum_reduce() does (tests/unit/test_rewrite.cc,
// Fold64.*; test_cksum.cc, FoldMatchesRteReduceAndResidue). Always inlined,
// also into the AVX2 sum (built with other tuning, which GCC does not
// inline plain inline functions across).
[[gnu::always_inline]] inline uint16_t fold64(uint64_t s) noexcept
{
    // The rotates written out: std::rotr is not inlined into the AVX2 sum.
    const auto u = static_cast<uint32_t>((s + ((s >> 32) | (s << 32))) >> 32);
    return static_cast<uint16_t>((u + ((u >> 16) | (u << 16))) >> 16);
}

[[gnu::always_inline]] inline uint16_t cksum_fold(uint64_t sum) noexcept
{
    return fold64(sum);
}

[[gnu::always_inline]] inline uint16_t cksum_fold(uint32_t sum) noexcept
{
    return fold64(uint64_t{sum});
}

// Whether an IPv4 header of `ihl` bytes (a multiple of 4, at least 20, all
// in the buffer) sums to 0xffff, i.e. its checksum is right: what
// rte_raw_cksum(ip, ihl) == 0xffff says, in 32-bit words (five adds and a
// fold for the usual header instead of DPDK's ten 16-bit steps).
inline bool ipv4_hdr_sum_ok(const void* ip, uint32_t ihl) noexcept
{
    const auto* p = static_cast<const unsigned char*>(ip);
    // Word by word from the packet (copied into an array, the header went
    // through the stack: a 16-byte store read back as 4-byte words).
    const auto word = [p](uint32_t off) {
        uint32_t w;
        __builtin_memcpy(&w, p + off, 4);
        return uint64_t{w};
    };
    uint64_t s = word(0) + word(4) + word(8) + word(12) + word(16);
    for (uint32_t off = 20; off < ihl; off += 4) // options
        s += word(off);
    return cksum_fold(s) == 0xffff;
}

namespace cksum_detail {

using u32x4 = uint32_t __attribute__((vector_size(16)));
using u32x8 = uint32_t __attribute__((vector_size(32)));

// Bytes [32 - width + n, 32 + n) of this: width - n zeros, then n 0xff
// (n < width <= 32).
alignas(64) inline constexpr unsigned char tail_mask[64] = {
        0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
        0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
        0,    0,    0,    0,    0,    0,    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

// cksum_partial() with vectors V of 32-bit lanes for the 64-byte steps, one
// accumulator per vector of a step. A lane adds the low and the high word of
// its 32-bit word (<= 0x1fffe per step), so it cannot overflow within 32768
// steps; after every such block the lanes are folded into one vector, whose
// lanes go into the 64-bit sum once, at the end. As
// 2^16 = 1 (mod 0xffff), where a word sits in a lane does not matter.
// Inlined into a function built for V's ISA.
template <typename V>
[[gnu::always_inline]] inline uint32_t partial(const unsigned char* p, size_t len,
                                               uint64_t s) noexcept
{
    const size_t from_start = len; // the whole buffer's length
    constexpr unsigned nvec = 64 / sizeof(V);
    constexpr size_t block = 32768 * 64;
    V r{}; // every lane <= 0x1fffe after each block
    while (len >= 64) {
        const size_t chunk = len < block ? len & ~size_t{63} : block;
        V acc[nvec] = {};
        for (size_t i = 0; i < chunk; i += 64) {
#pragma GCC unroll 4
            for (unsigned j = 0; j < nvec; j++) {
                V v;
                memcpy(&v, p + i + j * sizeof(V), sizeof(V));
                acc[j] += (v & 0xffff) + (v >> 16);
            }
        }
        // Each lane to <= 0x1fffe again, all into r, r's lanes to <= 0x1fffe.
        for (unsigned j = 0; j < nvec; j++)
            r += (acc[j] & 0xffff) + (acc[j] >> 16);
        r = (r & 0xffff) + (r >> 16);
        p += chunk;
        len -= chunk;
    }
    // Whole vectors of the < 64 bytes left (at most 3: a lane stays at most
    // 0x1fffe * 5 with the tail's below), then the lanes into the sum, once.
    for (; len >= sizeof(V); p += sizeof(V), len -= sizeof(V)) {
        V v;
        memcpy(&v, p, sizeof(V));
        r += (v & 0xffff) + (v >> 16);
    }
    if (len != 0 && from_start >= sizeof(V)) {
        // The < one vector left, as one vector that ends where the buffer
        // does: its first sizeof(V) - len bytes, counted already, masked to
        // zero. It starts sizeof(V) - len bytes before p, an even offset, so
        // for an odd len its 16-bit words straddle the buffer's: a sum of
        // words taken one byte off is the byte swap of the sum, so the bytes
        // of each word are swapped back first. An odd length's last byte
        // then pairs with a zero, as RFC 1071 pads it.
        V v, mask;
        memcpy(&v, p + len - sizeof(V), sizeof(V));
        memcpy(&mask, tail_mask + (32 - sizeof(V)) + len, sizeof(V));
        v &= mask;
        if (len & 1)
            v = ((v & 0x00ff00ff) << 8) | ((v >> 8) & 0x00ff00ff);
        r += (v & 0xffff) + (v >> 16);
        len = 0;
    }
    for (unsigned l = 0; l < sizeof(V) / 4; l++)
        s += r[l];
    // A buffer shorter than a vector: 32-bit halves of 8-byte words, then
    // 4, 2, 1 bytes.
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        s += (w & 0xffffffff) + (w >> 32);
    }
    if (len >= 4) {
        uint32_t w;
        memcpy(&w, p, 4);
        s += w;
        p += 4;
        len -= 4;
    }
    if (len >= 2) {
        uint16_t w;
        memcpy(&w, p, 2);
        s += w;
        p += 2;
        len -= 2;
    }
    if (len != 0) { // odd length: the last byte with a zero byte after it
        uint16_t w = 0;
        memcpy(&w, p, 1);
        s += w;
    }
    return cksum_fold(s);
}

// 16-byte vectors: SSE on x86-64 (the project's baseline), whatever the
// target has elsewhere. Out of line, like the AVX2 one: callers stay small.
[[gnu::noinline]] inline uint32_t partial_v128(const unsigned char* p, size_t len,
                                               uint32_t sum) noexcept
{
    return partial<u32x4>(p, len, sum);
}

#if defined(__x86_64__)
// tune=generic: DPDK's -march=corei7 tuning would split every unaligned
// 32-byte load in two halves.
[[gnu::noinline, gnu::target("avx2,tune=generic")]] inline uint32_t partial_avx2(const unsigned char* p,
                                                                   size_t len,
                                                                   uint32_t sum) noexcept
{
    return partial<u32x8>(p, len, sum);
}
#endif

} // namespace cksum_detail

// Ones'-complement sum of len bytes plus `sum`, folded to 16 bits (returned
// as uint32_t, <= 0xffff, not complemented): __rte_raw_cksum(buf, len, sum)
// followed by __rte_raw_cksum_reduce(). Results of pieces can be added and
// folded again, like DPDK's internal sum, as long as every piece but the last
// has an even length (an odd one shifts the next piece's byte lanes).
//
// AVX2 if the CPU has it (a load and a bit test of libgcc's CPU model, set
// before main), else 16-byte vectors: the binary runs on any x86-64 the
// project targets (-msse4.2), no -march needed. No AVX-512: ~1 ns less for
// 1200 bytes on Zen 4, not worth the clock drop it costs on some Intel parts
// (DPDK too caps SIMD at 256 bits by default).
inline uint32_t cksum_partial(const void* buf, size_t len, uint32_t sum = 0) noexcept
{
    const auto* p = static_cast<const unsigned char*>(buf);
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2"))
        return cksum_detail::partial_avx2(p, len, sum);
#endif
    return cksum_detail::partial_v128(p, len, sum);
}

// Drop-in for rte_raw_cksum(): the folded, not complemented sum.
inline uint16_t raw_cksum(const void* buf, size_t len) noexcept
{
    return static_cast<uint16_t>(cksum_partial(buf, len));
}

// rte_ipv4_phdr_cksum(ip, 0): the folded, not complemented sum of the
// pseudo header of an L4 length of total_length - IHL: the two addresses as
// 32-bit words, protocol and length as 16-bit ones (DPDK sums its 12 bytes
// 16 bits at a time from a copy on the stack).
inline uint16_t ipv4_phdr_sum(const rte_ipv4_hdr* ip) noexcept
{
    const auto l4_len = static_cast<uint16_t>(be16(ip->total_length) - rte_ipv4_hdr_len(ip));
    return fold64(uint64_t{ip->src_addr} + ip->dst_addr +
                  to_be16(ip->next_proto_id) + to_be16(l4_len));
}

// Drop-in for rte_ipv4_udptcp_cksum(ip, l4): the complemented UDP/TCP checksum
// of the L4 bytes (length from total_length - IHL) and the pseudo header, the
// checksum field zeroed by the caller. A UDP result of 0 is sent as 0xffff.
inline uint16_t ipv4_udp_cksum(const rte_ipv4_hdr* ip, const void* l4) noexcept
{
    const uint32_t ihl = rte_ipv4_hdr_len(ip);
    const uint32_t l3_len = be16(ip->total_length);
    uint16_t ck = 0; // DPDK's value for a total_length shorter than the header
    if (l3_len >= ihl)
        ck = static_cast<uint16_t>(cksum_partial(l4, l3_len - ihl, ipv4_phdr_sum(ip)));
    ck = static_cast<uint16_t>(~ck);
    if (ck == 0 && ip->next_proto_id == IPPROTO_UDP)
        ck = 0xffff;
    return ck;
}

} // namespace isar::dp
