// dataplane/cksum.h: raw_cksum / cksum_partial / ipv4_udp_cksum give exactly
// what DPDK's rte_raw_cksum / rte_ipv4_udptcp_cksum give, for every length
// 0..2100 at every alignment 0..7 (random, all-0x00, all-0xff bytes) and with
// every vector width the CPU has, plus the fold, RFC 1071's worked example,
// the UDP 0 -> 0xffff rule, the pseudo-header sum and buffers past the 2 MiB
// lane block.
#include "dataplane/cksum.h"

#include <cstring>
#include <gtest/gtest.h>
#include <memory>
#include <random>
#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_udp.h>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

using namespace isar;

namespace {

constexpr size_t max_len = 2100;
constexpr size_t max_align = 8;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed)
{
    std::mt19937 rng(seed);
    std::vector<uint8_t> b(n);
    for (auto& x : b)
        x = static_cast<uint8_t>(rng());
    return b;
}

// Independent reference: native 16-bit words into 64 bits, odd byte padded.
uint16_t ref_cksum(const uint8_t* p, size_t len)
{
    uint64_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2) {
        uint16_t w;
        memcpy(&w, p + i, 2);
        s += w;
    }
    if (len % 2) {
        const uint8_t pad[2] = {p[len - 1], 0};
        uint16_t w;
        memcpy(&w, pad, 2);
        s += w;
    }
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(s);
}

// raw_cksum == rte_raw_cksum for every length and alignment of buf's bytes.
void expect_raw_matches_dpdk(const std::vector<uint8_t>& buf, const char* what)
{
    ASSERT_GE(buf.size(), max_len + max_align);
    unsigned bad = 0;
    for (size_t a = 0; a < max_align; a++) {
        for (size_t len = 0; len <= max_len; len++) {
            const uint8_t* p = buf.data() + a;
            const uint16_t want = rte_raw_cksum(p, len);
            const uint16_t got = dp::raw_cksum(p, len);
            if (got != want && bad++ < 10)
                ADD_FAILURE() << what << ": align " << a << " len " << len << ": got 0x"
                              << std::hex << got << ", rte_raw_cksum 0x" << want;
        }
    }
    EXPECT_EQ(bad, 0u) << what << ": mismatches";
}

// Every vector width this CPU can run, not only the one cksum_partial() picks.
using partial_fn = uint32_t (*)(const unsigned char*, size_t, uint32_t);
std::vector<std::pair<const char*, partial_fn>> vector_widths()
{
    std::vector<std::pair<const char*, partial_fn>> paths = {{"v128", dp::cksum_detail::partial_v128}};
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2"))
        paths.emplace_back("avx2", dp::cksum_detail::partial_avx2);
#endif
    return paths;
}

// The i-th of a run of random 60-byte headers: random bytes, every 1000th
// all zero or all ones instead.
void random_header(uint8_t (&h)[60], std::mt19937& rng, int i)
{
    for (auto& b : h)
        b = static_cast<uint8_t>(rng());
    if (i % 1000 == 0)
        std::memset(h, i % 2000 == 0 ? 0 : 0xff, sizeof(h));
}

} // namespace

TEST(Cksum, RandomBytesMatchRteRawCksum)
{
    expect_raw_matches_dpdk(random_bytes(max_len + max_align, 1071), "random");
}

TEST(Cksum, AllZeroAndAllOnesMatchRteRawCksum)
{
    expect_raw_matches_dpdk(std::vector<uint8_t>(max_len + max_align, 0x00), "0x00");
    expect_raw_matches_dpdk(std::vector<uint8_t>(max_len + max_align, 0xff), "0xff");
    // The fold keeps DPDK's two zeros apart: no bytes (or zeros) give 0,
    // non-zero bytes that sum to a multiple of 0xffff give 0xffff.
    const std::vector<uint8_t> ones(64, 0xff);
    EXPECT_EQ(dp::raw_cksum(ones.data(), 0), 0);
    EXPECT_EQ(dp::raw_cksum(ones.data(), 64), 0xffff);
    EXPECT_EQ(dp::raw_cksum(ones.data(), 1), rte_be_to_cpu_16(0xff00)); // ff 00
}

// cksum_fold(uint32_t) is __rte_raw_cksum_reduce(); the 64-bit fold gives the
// canonical value: 0 for 0, else the residue mod 0xffff with 0xffff for 0.
TEST(Cksum, FoldMatchesRteReduceAndResidue)
{
    const auto canonical = [](uint64_t x) -> uint16_t {
        return x == 0 ? 0 : x % 0xffff == 0 ? 0xffff : static_cast<uint16_t>(x % 0xffff);
    };
    std::vector<uint64_t> xs = {0, 1, 0xfffe, 0xffff, 0x10000, 0x1fffe, 0x1ffff, 0xffffffff,
                                0x1'0000'ffff, 0x1'0000'ffff'ffff, 0xffff'0000'ffff'ffff,
                                0xffff'ffff'ffff'ffff, 0xffff'ffff'ffff'fffe};
    std::mt19937_64 rng(17);
    for (int i = 0; i < 100000; i++)
        xs.push_back(rng() >> (i % 64));
    for (const uint64_t x : xs) {
        EXPECT_EQ(dp::cksum_fold(x), canonical(x)) << std::hex << x;
        const auto x32 = static_cast<uint32_t>(x);
        EXPECT_EQ(dp::cksum_fold(x32), __rte_raw_cksum_reduce(x32)) << std::hex << x32;
    }
}

// RFC 1071 section 3: bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2 in network
// byte order (the sum of the byte-swapped words is the byte-swapped sum).
TEST(Cksum, Rfc1071Example)
{
    const uint8_t b[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    EXPECT_EQ(rte_be_to_cpu_16(dp::raw_cksum(b, sizeof(b))), 0xddf2);
    EXPECT_EQ(dp::raw_cksum(b, sizeof(b)), rte_raw_cksum(b, sizeof(b)));
    // As stored in a header: complemented, then read back it verifies.
    const uint16_t ck = static_cast<uint16_t>(~dp::raw_cksum(b, sizeof(b)));
    EXPECT_EQ(rte_be_to_cpu_16(ck), 0x220d);
}

// cksum_partial(buf, len, sum) == __rte_raw_cksum_reduce(__rte_raw_cksum(buf,
// len, sum)), and even-length pieces chain.
TEST(Cksum, PartialWithInitialSumAndChaining)
{
    const auto buf = random_bytes(max_len + max_align, 7);
    std::mt19937 rng(99);
    unsigned bad = 0;
    for (size_t a = 0; a < max_align; a++) {
        const uint8_t* p = buf.data() + a;
        for (size_t len = 0; len <= max_len; len++) {
            const uint32_t init = rng() >> 1; // DPDK's 32-bit sum must not wrap
            const uint16_t want = __rte_raw_cksum_reduce(__rte_raw_cksum(p, len, init));
            const uint32_t got = dp::cksum_partial(p, len, init);
            const size_t cut = (len / 3) & ~size_t{1};
            const uint32_t chained =
                    dp::cksum_partial(p + cut, len - cut, dp::cksum_partial(p, cut));
            if ((got != want || dp::cksum_fold(chained) != rte_raw_cksum(p, len)) &&
                bad++ < 10)
                ADD_FAILURE() << "align " << a << " len " << len << " init " << init;
        }
    }
    EXPECT_EQ(bad, 0u);
}

// Past the 2 MiB lane block (and the length DPDK's 32-bit sum survives):
// compared with the independent reference instead.
TEST(Cksum, LargeBuffersAcrossLaneBlocks)
{
    for (const uint8_t fill : {uint8_t{0xff}, uint8_t{0x5a}}) {
        const std::vector<uint8_t> buf((4u << 20) + 200, fill);
        for (const size_t len : {size_t{131074}, size_t{(2u << 20) - 1}, size_t{(2u << 20) + 64},
                                 size_t{(4u << 20) + 131}, size_t{(4u << 20) + 192}}) {
            ASSERT_LE(len + 7, buf.size());
            EXPECT_EQ(dp::raw_cksum(buf.data() + 7, len), ref_cksum(buf.data() + 7, len))
                    << "fill " << int(fill) << " len " << len;
        }
    }
    const auto rnd = random_bytes((2u << 20) + 300, 3);
    EXPECT_EQ(dp::raw_cksum(rnd.data() + 3, rnd.size() - 3), ref_cksum(rnd.data() + 3, rnd.size() - 3));
}

// Every vector width this CPU can run, not only the one cksum_partial() picks.
TEST(Cksum, EveryVectorWidthMatchesRteRawCksum)
{
    const auto paths = vector_widths();
    const auto rnd = random_bytes((4u << 20) + 200, 11);
    const std::vector<uint8_t> ones((4u << 20) + 200, 0xff);
    for (const auto& [name, partial] : paths) {
        unsigned bad = 0;
        for (const auto* buf : {&rnd, &ones}) {
            for (size_t a = 0; a < max_align; a++) {
                const uint8_t* p = buf->data() + a;
                for (size_t len = 0; len <= max_len; len++)
                    if (partial(p, len, 0) != rte_raw_cksum(p, len) && bad++ < 10)
                        ADD_FAILURE() << name << " align " << a << " len " << len;
                for (const size_t len : {size_t{2u << 20}, size_t{(4u << 20) + 191}})
                    EXPECT_EQ(partial(p, len, 0), ref_cksum(p, len)) << name << " len " << len;
            }
        }
        EXPECT_EQ(bad, 0u) << name;
    }
}

namespace {

// An IPv4 header (no options) at buf + off followed by a UDP/TCP segment of
// l4_len bytes taken from `fill`, checksum field zeroed.
struct ip_packet {
    rte_ipv4_hdr* ip;
    uint8_t* l4;
};

ip_packet make_ipv4(std::vector<uint8_t>& buf, size_t off, const std::vector<uint8_t>& fill,
                    size_t l4_len, uint8_t proto)
{
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(buf.data() + off);
    uint8_t* l4 = buf.data() + off + sizeof(rte_ipv4_hdr);
    memset(ip, 0, sizeof(*ip));
    ip->version_ihl = 0x45;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(sizeof(rte_ipv4_hdr) + l4_len));
    ip->time_to_live = 64;
    ip->next_proto_id = proto;
    ip->src_addr = rte_cpu_to_be_32(0xc6120002 + static_cast<uint32_t>(l4_len));
    ip->dst_addr = rte_cpu_to_be_32(0xcb00714d);
    memcpy(l4, fill.data(), l4_len);
    if (proto == IPPROTO_UDP && l4_len >= sizeof(rte_udp_hdr)) {
        auto* udp = reinterpret_cast<rte_udp_hdr*>(l4);
        udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(l4_len));
        udp->dgram_cksum = 0;
    }
    return {ip, l4};
}

} // namespace

TEST(Cksum, Ipv4UdpMatchesRteIpv4UdptcpCksum)
{
    const auto fill = random_bytes(max_len, 768);
    std::vector<uint8_t> buf(sizeof(rte_ipv4_hdr) + max_len + max_align);
    unsigned bad = 0;
    for (const uint8_t proto : {uint8_t{IPPROTO_UDP}, uint8_t{IPPROTO_TCP}}) {
        for (size_t a = 0; a < max_align; a++) {
            for (size_t len = 0; len <= max_len; len++) {
                const ip_packet pk = make_ipv4(buf, a, fill, len, proto);
                const uint16_t want = rte_ipv4_udptcp_cksum(pk.ip, pk.l4);
                const uint16_t got = dp::ipv4_udp_cksum(pk.ip, pk.l4);
                if (got != want && bad++ < 10)
                    ADD_FAILURE() << "proto " << int(proto) << " align " << a << " len "
                                  << len << ": got 0x" << std::hex << got << ", DPDK 0x"
                                  << want;
            }
        }
    }
    EXPECT_EQ(bad, 0u);

    // Stored in the header, the checksum verifies: everything sums to 0xffff.
    const ip_packet pk = make_ipv4(buf, 1, fill, 1200, IPPROTO_UDP);
    reinterpret_cast<rte_udp_hdr*>(pk.l4)->dgram_cksum = dp::ipv4_udp_cksum(pk.ip, pk.l4);
    EXPECT_EQ(dp::cksum_fold(dp::cksum_partial(pk.l4, 1200, rte_ipv4_phdr_cksum(pk.ip, 0))),
              0xffff);
}

// A segment whose checksum computes to 0: UDP sends 0xffff (RFC 768), TCP 0.
// A total_length shorter than the header gives DPDK's 0xffff.
TEST(Cksum, Ipv4UdpZeroRuleAndShortTotalLength)
{
    const auto fill = random_bytes(200, 5);
    std::vector<uint8_t> buf(sizeof(rte_ipv4_hdr) + 200);
    for (const uint8_t proto : {uint8_t{IPPROTO_UDP}, uint8_t{IPPROTO_TCP}}) {
        ip_packet pk = make_ipv4(buf, 0, fill, 200, proto);
        // Make the last word the complement of the rest: the sum becomes 0xffff.
        memset(pk.l4 + 198, 0, 2);
        const uint16_t rest = static_cast<uint16_t>(
                dp::cksum_partial(pk.l4, 200, rte_ipv4_phdr_cksum(pk.ip, 0)));
        const uint16_t last = static_cast<uint16_t>(~rest);
        memcpy(pk.l4 + 198, &last, 2);
        const uint16_t want = proto == IPPROTO_UDP ? 0xffff : 0x0000;
        EXPECT_EQ(rte_ipv4_udptcp_cksum(pk.ip, pk.l4), want) << int(proto);
        EXPECT_EQ(dp::ipv4_udp_cksum(pk.ip, pk.l4), want) << int(proto);
    }
    ip_packet pk = make_ipv4(buf, 0, fill, 100, IPPROTO_UDP);
    pk.ip->total_length = rte_cpu_to_be_16(19);
    EXPECT_EQ(dp::ipv4_udp_cksum(pk.ip, pk.l4), rte_ipv4_udptcp_cksum(pk.ip, pk.l4));
    EXPECT_EQ(dp::ipv4_udp_cksum(pk.ip, pk.l4), 0xffff);
}

// classify's IPv4 header check agrees with rte_raw_cksum(ip, ihl) == 0xffff
// on random headers of every IHL, half of them with a right checksum, and on
// the all-zero and all-ones headers.
TEST(Cksum, Ipv4HeaderSumOkMatchesRteRawCksum)
{
    std::mt19937 rng(7);
    unsigned ok = 0;
    for (int i = 0; i < 200000; i++) {
        uint8_t h[60];
        random_header(h, rng, i);
        const uint32_t ihl = 20 + 4 * (rng() % 11);
        if (rng() % 2) {
            auto* ip = reinterpret_cast<rte_ipv4_hdr*>(h);
            ip->hdr_checksum = 0;
            ip->hdr_checksum = static_cast<uint16_t>(~rte_raw_cksum(h, ihl));
        }
        const bool want = rte_raw_cksum(h, ihl) == 0xffff;
        ASSERT_EQ(dp::ipv4_hdr_sum_ok(h, ihl), want) << i << " ihl " << ihl;
        ok += want;
    }
    EXPECT_GT(ok, 90000u); // both verdicts exercised
    EXPECT_LT(ok, 110000u);
}

// The pseudo-header sum the software checksum and the offload path start
// from agrees with DPDK's on random headers: IHL 5 to 15, any total length,
// also one shorter than the header (the L4 length wraps in 16 bits as
// DPDK's does); and on a zero sum and a non-zero multiple of 0xffff.
TEST(Cksum, Ipv4PhdrSumMatchesRteIpv4PhdrCksum)
{
    for (const uint32_t src : {0u, 0xffffffffu}) {
        rte_ipv4_hdr ip{};
        ip.version_ihl = 0x46;
        ip.total_length = rte_cpu_to_be_16(24); // an L4 length of 0
        ip.src_addr = src;
        EXPECT_EQ(dp::ipv4_phdr_sum(&ip), rte_ipv4_phdr_cksum(&ip, 0));
        EXPECT_EQ(dp::ipv4_phdr_sum(&ip), src == 0 ? 0 : 0xffff);
    }
    std::mt19937 rng(17);
    for (int i = 0; i < 200000; i++) {
        uint8_t h[60];
        random_header(h, rng, i);
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(h);
        ip->version_ihl = static_cast<uint8_t>(0x40 | (5 + rng() % 11));
        ASSERT_EQ(dp::ipv4_phdr_sum(ip), rte_ipv4_phdr_cksum(ip, 0)) << i;
    }
}

// The bytes after the last whole vector are summed as one vector that ends
// at the buffer's end: it must not read before the buffer's start nor past
// its end. Buffers that start right after, and end right before, a page the
// process cannot read (a stray read faults), every length up to five
// vectors, with a start sum, for every vector width.
TEST(Cksum, EveryVectorWidthReadsOnlyTheBuffer)
{
    const auto paths = vector_widths();
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    auto* map = static_cast<uint8_t*>(
            mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(map, MAP_FAILED);
    const auto unmap = [page](uint8_t* m) { munmap(m, 3 * page); };
    const std::unique_ptr<uint8_t, decltype(unmap)> owned(map, unmap); // also on an early return
    ASSERT_EQ(mprotect(map, page, PROT_NONE), 0);
    ASSERT_EQ(mprotect(map + 2 * page, page, PROT_NONE), 0);
    uint8_t* const lo = map + page; // readable: [lo, lo + page)
    const auto fill = random_bytes(page, 23);
    memcpy(lo, fill.data(), page);
    std::mt19937 rng(29);
    unsigned bad = 0;
    for (const auto& [name, partial] : paths) {
        for (size_t len = 0; len <= 160; len++) {
            const uint8_t* const starts[] = {lo, lo + page - len};
            for (const uint8_t* p : starts) {
                const uint32_t sum = rng() & 0xffff;
                const uint16_t want = dp::cksum_fold(uint64_t{ref_cksum(p, len)} + sum);
                if (partial(p, len, sum) != want && bad++ < 10)
                    ADD_FAILURE() << name << " len " << len << (p == lo ? " at the start" : " at the end");
            }
        }
    }
    EXPECT_EQ(bad, 0u);
}
