// dataplane/rewrite.h: the rewritten frame carries exactly the addresses,
// ports and MACs asked for, valid IPv4 and UDP checksums (verified here by an
// independent one's-complement sum), and the payload untouched.
#include "dataplane/rewrite.h"
#include "tests/support/eal_env.h"
#include "tests/support/packet_builder.h"

#include <gtest/gtest.h>
#include <random>
#include <rte_byteorder.h>
#include <rte_mbuf.h>
#include <vector>

ISAR_TEST_EAL_ENV("test_rewrite");

using namespace isar;
using namespace isar::test;

namespace {

class Rewrite : public ::testing::Test {
protected:
    static void SetUpTestSuite()
    {
        ASSERT_TRUE(eal_env::ready());
        mp_ = rte_pktmbuf_pool_create("rewrite_pool", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                      SOCKET_ID_ANY);
        ASSERT_NE(mp_, nullptr);
    }
    static void TearDownTestSuite()
    {
        rte_mempool_free(mp_);
        mp_ = nullptr;
    }
    void SetUp() override
    {
        ASSERT_NE(mp_, nullptr);
        to_.src_mac = mac(0xaa, 1);
        to_.dst_mac = mac(0xbb, 2);
        to_.src_ip_be = rte_cpu_to_be_32(ip4("198.18.0.1"));
        to_.dst_ip_be = rte_cpu_to_be_32(ip4("203.0.113.77"));
        to_.src_port_be = rte_cpu_to_be_16(30002);
        to_.dst_port_be = rte_cpu_to_be_16(6000);
    }

    // Rewrites a copy of `in` and returns the result.
    // With `sums`: those of the input's header (rewrite_sums_of), as
    // fan-out passes them for every copy.
    bytes run(const bytes& in, uint32_t l3 = 14, uint32_t l4 = 34, uint64_t ol_flags = 0,
              dp::udp_cksum ck = dp::udp_cksum::compute, bool sums = false)
    {
        rte_mbuf* m = make_mbuf(mp_, in);
        EXPECT_NE(m, nullptr);
        if (m == nullptr)
            return {};
        m->ol_flags = ol_flags;
        dp::rewrite_sums rs{};
        if (sums)
            rs = dp::rewrite_sums_of(rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, l3),
                                     rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, l4), l4 - l3,
                                     64);
        dp::rewrite_udp4(m, l3, l4, to_, ck, sums ? &rs : nullptr);
        EXPECT_EQ(m->ol_flags, 0u) << "no offload requested: checksums are in the packet";
        bytes out = mbuf_bytes(m);
        rte_pktmbuf_free(m);
        return out;
    }

    void expect_rewritten(const bytes& in, const bytes& out)
    {
        ASSERT_EQ(out.size(), in.size());
        auto vi = parse_udp4(in);
        auto vo = parse_udp4(out);
        ASSERT_TRUE(vi && vo);
        EXPECT_TRUE(mac_eq(vo->dst_mac, to_.dst_mac)) << mac_str(vo->dst_mac);
        EXPECT_TRUE(mac_eq(vo->src_mac, to_.src_mac)) << mac_str(vo->src_mac);
        EXPECT_EQ(vo->src_ip, ip4("198.18.0.1"));
        EXPECT_EQ(vo->dst_ip, ip4("203.0.113.77"));
        EXPECT_EQ(vo->src_port, 30002);
        EXPECT_EQ(vo->dst_port, 6000);
        EXPECT_EQ(vo->ttl, 64);
        EXPECT_TRUE(vo->ip_cksum_ok) << "IPv4 header checksum";
        EXPECT_TRUE(vo->udp_cksum_ok) << "UDP checksum";
        EXPECT_EQ(vo->payload, vi->payload);
        EXPECT_EQ(vo->total_length, vi->total_length);
        EXPECT_EQ(vo->udp_length, vi->udp_length);
        EXPECT_EQ(vo->proto, 17);
        // Everything else in the IP header is kept: version/IHL, TOS, id, flags.
        EXPECT_EQ(out[14], in[14]);
        EXPECT_EQ(out[15], in[15]);
        EXPECT_EQ(out[18], in[18]);
        EXPECT_EQ(out[19], in[19]);
        EXPECT_EQ(out[20], in[20]);
        EXPECT_EQ(out[21], in[21]);
        EXPECT_EQ(out[12], in[12]); // EtherType
        EXPECT_EQ(out[13], in[13]);
    }

    // Case i of a random run: a datagram of random payload and source, one
    // case in 7 with a destination port of 0-3 (the low end of the port
    // range), and random addresses and ports to rewrite it to (in to_).
    udp4_spec random_case(std::mt19937& rng, int i)
    {
        auto s = spec(1 + rng() % 300);
        for (auto& b : s.payload)
            b = static_cast<uint8_t>(rng());
        s.src_ip = static_cast<uint32_t>(rng());
        s.src_port = static_cast<uint16_t>(rng());
        if (i % 7 == 0)
            s.dst_port = static_cast<uint16_t>(rng() % 4);
        to_.src_ip_be = static_cast<uint32_t>(rng());
        to_.dst_ip_be = static_cast<uint32_t>(rng());
        to_.src_port_be = static_cast<uint16_t>(rng());
        to_.dst_port_be = static_cast<uint16_t>(rng());
        return s;
    }

    static udp4_spec spec(size_t payload_len)
    {
        udp4_spec s;
        s.src_mac = mac(1, 1);
        s.dst_mac = mac(1, 2);
        s.src_ip = ip4("198.18.0.10");
        s.dst_ip = ip4("198.18.0.1");
        s.src_port = 5004;
        s.dst_port = 30000;
        s.ttl = 17;
        s.tos = 0xb8;    // EF
        s.frag = 0x4000; // DF
        s.payload = rtp(7, 0xcafe, payload_len);
        return s;
    }

    static rte_mempool* mp_;
    dp::rewrite_to to_{};
};
rte_mempool* Rewrite::mp_ = nullptr;

} // namespace

TEST_F(Rewrite, AddressesPortsMacsAndChecksums)
{
    const bytes in = build(spec(172));
    const bytes out = run(in);
    expect_rewritten(in, out);
}

TEST_F(Rewrite, OddPayloadLength)
{
    for (size_t n : {9u, 13u, 161u, 1001u}) {
        const bytes in = build(spec(n));
        expect_rewritten(in, run(in));
    }
}

TEST_F(Rewrite, InputWithoutUdpChecksumGetsOneWhenComputed)
{
    auto s = spec(100);
    s.udp_cksum = 0;
    const bytes in = build(s);
    expect_rewritten(in, run(in));
}

TEST_F(Rewrite, InputWithPartialOffloadChecksum)
{
    // A kernel with TX checksum offload leaves only the pseudo-header sum.
    auto s = spec(100);
    s.udp_cksum = 0x1234;
    const bytes in = build(s);
    expect_rewritten(in, run(in, 14, 34, RTE_MBUF_F_TX_UDP_CKSUM | RTE_MBUF_F_TX_IPV4));
}

TEST_F(Rewrite, IpOptionsKeptAndCovered)
{
    auto s = spec(60);
    s.ihl = 7;
    const bytes in = build(s);
    const bytes out = run(in, 14, 14 + 28);
    expect_rewritten(in, out);
    // The options themselves are unchanged.
    EXPECT_TRUE(std::equal(out.begin() + 34, out.begin() + 42, in.begin() + 34));
}

TEST_F(Rewrite, AlreadyRewrittenIsIdempotent)
{
    const bytes in = build(spec(50));
    const bytes once = run(in);
    EXPECT_EQ(run(once), once);
}

TEST_F(Rewrite, RandomHeadersAndPayloads)
{
    std::mt19937 rng(7983);
    for (int i = 0; i < 2000; i++) {
        auto s = spec(1 + rng() % 1400);
        for (auto& b : s.payload)
            b = static_cast<uint8_t>(rng());
        s.src_ip = static_cast<uint32_t>(rng());
        s.dst_ip = static_cast<uint32_t>(rng());
        s.src_port = static_cast<uint16_t>(rng());
        s.ip_id = static_cast<uint16_t>(rng());
        to_.src_ip_be = static_cast<uint32_t>(rng());
        to_.dst_ip_be = static_cast<uint32_t>(rng());
        to_.src_port_be = static_cast<uint16_t>(rng());
        to_.dst_port_be = static_cast<uint16_t>(rng());
        const bytes in = build(s);
        const bytes out = run(in);
        auto v = parse_udp4(out);
        ASSERT_TRUE(v);
        ASSERT_TRUE(v->ip_cksum_ok) << i;
        ASSERT_TRUE(v->udp_cksum_ok) << i;
        ASSERT_EQ(v->src_ip, rte_be_to_cpu_32(to_.src_ip_be));
        ASSERT_EQ(v->dst_ip, rte_be_to_cpu_32(to_.dst_ip_be));
        ASSERT_EQ(v->src_port, rte_be_to_cpu_16(to_.src_port_be));
        ASSERT_EQ(v->dst_port, rte_be_to_cpu_16(to_.dst_port_be));
        ASSERT_EQ(v->payload, s.payload);
    }
}

// A port that verified the UDP checksum on receive lets the rewrite update it
// incrementally (RFC 1624); the result must be as valid as a full computation.
TEST_F(Rewrite, IncrementalWhenReceiveVerified)
{
    for (size_t n : {8u, 9u, 172u, 1001u}) {
        const bytes in = build(spec(n));
        ASSERT_TRUE(udp4_cksum_ok(in));
        expect_rewritten(in, run(in, 14, 34, 0, dp::udp_cksum::update));
    }
}

// An incremental update keeps a corrupt checksum corrupt: the relay never
// launders a damaged datagram into a valid one.
TEST_F(Rewrite, IncrementalKeepsACorruptChecksumCorrupt)
{
    std::mt19937 rng(1071);
    for (int i = 0; i < 200; i++) {
        bytes in = build(spec(20 + rng() % 200));
        in[42 + 12 + rng() % 8] ^= static_cast<uint8_t>(1 + rng() % 255); // payload damage
        ASSERT_FALSE(udp4_cksum_ok(in));
        const bytes out = run(in, 14, 34, 0, dp::udp_cksum::update);
        auto v = parse_udp4(out);
        ASSERT_TRUE(v);
        EXPECT_TRUE(v->ip_cksum_ok);
        EXPECT_FALSE(v->udp_cksum_ok) << i;
    }
}

// A sender without UDP checksum (0) gets none from us either when the payload
// is unchanged.
TEST_F(Rewrite, NoChecksumStaysNone)
{
    auto s = spec(100);
    s.udp_cksum = 0;
    const bytes in = build(s);
    const bytes out = run(in, 14, 34, 0, dp::udp_cksum::none);
    auto v = parse_udp4(out);
    ASSERT_TRUE(v);
    EXPECT_TRUE(v->ip_cksum_ok);
    EXPECT_EQ(out[40], 0);
    EXPECT_EQ(out[41], 0);
    EXPECT_EQ(v->payload, s.payload);
}

// The decision table of choose_udp_cksum.
TEST_F(Rewrite, ChooseChecksumMethod)
{
    using dp::udp_cksum;
    rte_mbuf* m = make_mbuf(mp_, build(spec(40)));
    ASSERT_NE(m, nullptr);
    auto* udp = rte_pktmbuf_mtod_offset(m, rte_udp_hdr*, 34);
    struct c {
        uint64_t rx;
        bool changed, partial, offload;
        udp_cksum want;
    };
    const uint64_t good = RTE_MBUF_F_RX_L4_CKSUM_GOOD, unk = RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN;
    for (const c& x : std::initializer_list<c>{
                 {unk, false, false, false, udp_cksum::update},  // a NIC port, not verified
                 {good, false, false, false, udp_cksum::update}, // verified
                 {good, false, true, false, udp_cksum::update},  // af_packet, verified
                 {unk, false, true, false, udp_cksum::compute},  // af_packet: maybe partial
                 {unk, false, true, true, udp_cksum::offload},
                 // the port says the field is no checksum (virtio partial sum)
                 {RTE_MBUF_F_RX_L4_CKSUM_NONE, false, false, false, udp_cksum::compute},
                 {RTE_MBUF_F_RX_L4_CKSUM_NONE, false, false, true, udp_cksum::offload},
                 {good, true, false, false, udp_cksum::compute}, // SRTP rewrote the payload
                 {good, true, false, true, udp_cksum::offload},
         }) {
        m->ol_flags = x.rx;
        EXPECT_EQ(dp::choose_udp_cksum(m, udp, x.changed, x.partial, x.offload), x.want)
                << x.rx << x.changed << x.partial << x.offload;
    }
    udp->dgram_cksum = 0;
    m->ol_flags = unk;
    EXPECT_EQ(dp::choose_udp_cksum(m, udp, false, true, false), udp_cksum::none);
    EXPECT_EQ(dp::choose_udp_cksum(m, udp, true, false, false), udp_cksum::compute);
    rte_pktmbuf_free(m);
}

// With TX offload the frame leaves with the flags, header lengths and the
// pseudo-header sum a NIC needs; finishing the sum over the datagram as the
// NIC does gives a valid checksum.
TEST_F(Rewrite, OffloadLeavesThePseudoHeaderSumForTheNic)
{
    const bytes in = build(spec(333));
    rte_mbuf* m = make_mbuf(mp_, in);
    ASSERT_NE(m, nullptr);
    dp::rewrite_udp4(m, 14, 34, to_, dp::udp_cksum::offload);
    EXPECT_EQ(m->ol_flags, RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM);
    EXPECT_EQ(m->l2_len, 14u);
    EXPECT_EQ(m->l3_len, 20u);
    auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, 14);
    auto* udp = rte_pktmbuf_mtod_offset(m, rte_udp_hdr*, 34);
    EXPECT_EQ(ip->hdr_checksum, 0);
    EXPECT_EQ(udp->dgram_cksum, rte_ipv4_phdr_cksum(ip, 0));
    // What the NIC does: checksum over the IP header and over the datagram
    // (whose checksum field holds the pseudo-header sum).
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    uint16_t ck = static_cast<uint16_t>(~rte_raw_cksum(udp, rte_be_to_cpu_16(udp->dgram_len)));
    udp->dgram_cksum = ck == 0 ? 0xffff : ck;
    expect_rewritten(in, mbuf_bytes(m));
    rte_pktmbuf_free(m);
}

TEST_F(Rewrite, RandomIncremental)
{
    std::mt19937 rng(1624);
    for (int i = 0; i < 3000; i++) {
        const auto s = random_case(rng, i);
        const bytes in = build(s);
        const bytes out = run(in, 14, 34, RTE_MBUF_F_RX_L4_CKSUM_GOOD, dp::udp_cksum::update);
        auto v = parse_udp4(out);
        ASSERT_TRUE(v);
        ASSERT_TRUE(v->ip_cksum_ok) << i;
        ASSERT_TRUE(v->udp_cksum_ok) << i;
        ASSERT_EQ(v->payload, s.payload);
    }
}

// Fan-out's copies are rewritten from the sums of the header they replace,
// taken once (rewrite_sums_of): byte for byte what a rewrite that reads the
// header itself gives, with IP options, a checksum field of 0 (none), of
// 0xffff (a computed 0 as sent) and a corrupt one, and for each way the UDP
// checksum is brought up to date.
TEST_F(Rewrite, RandomFromSumsAsFromTheHeader)
{
    std::mt19937 rng(768);
    const dp::udp_cksum ways[] = {dp::udp_cksum::update, dp::udp_cksum::none,
                                  dp::udp_cksum::compute};
    for (int i = 0; i < 3000; i++) {
        auto s = random_case(rng, i);
        s.ihl = static_cast<uint8_t>(5 + rng() % 3);
        bytes in = build(s);
        const uint32_t l4 = 14 + s.ihl * 4u;
        if (i % 5 == 0) // a corrupt checksum stays as corrupt
            in[l4 + 6] ^= static_cast<uint8_t>(1 + rng() % 255);
        if (i % 11 == 0) // the sender's 0: none
            in[l4 + 6] = in[l4 + 7] = 0;
        if (i % 13 == 0) // a computed 0, as it is sent
            in[l4 + 6] = in[l4 + 7] = 0xff;
        const dp::udp_cksum ck = ways[i % 3];
        const uint64_t ol = RTE_MBUF_F_RX_L4_CKSUM_GOOD;
        const bytes want = run(in, 14, l4, ol, ck);
        const bytes got = run(in, 14, l4, ol, ck, true);
        ASSERT_EQ(got, want) << "case " << i << " ihl " << int{s.ihl};
        auto v = parse_udp4(got);
        ASSERT_TRUE(v);
        ASSERT_TRUE(v->ip_cksum_ok) << i;
    }
}

// A frame in an attached external buffer (as some PMDs deliver them) must
// stay attached after the rewrite, or freeing it would put an mbuf pointing
// at someone else's memory back into the pool.
TEST_F(Rewrite, ExternalBufferStaysAttached)
{
    const unsigned in_use = rte_mempool_in_use_count(mp_);
    const bytes in = build(spec(120));
    rte_mbuf* m = make_exact_mbuf(mp_, in);
    ASSERT_NE(m, nullptr);
    ASSERT_TRUE(RTE_MBUF_HAS_EXTBUF(m));
    m->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_GOOD | RTE_MBUF_F_RX_IP_CKSUM_GOOD;
    dp::rewrite_udp4(m, 14, 34, to_, dp::udp_cksum::update);
    EXPECT_TRUE(RTE_MBUF_HAS_EXTBUF(m)) << "RTE_MBUF_F_EXTERNAL was cleared";
    EXPECT_EQ(m->ol_flags & ~(RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT), 0u);
    expect_rewritten(in, mbuf_bytes(m));
    rte_pktmbuf_free(m);
    EXPECT_EQ(rte_mempool_in_use_count(mp_), in_use);
    // Every mbuf in the pool must be whole again: a direct mbuf with its own
    // data room, not one still pointing at the (freed) external buffer.
    std::vector<rte_mbuf*> all;
    while (rte_mbuf* x = rte_pktmbuf_alloc(mp_))
        all.push_back(x);
    ASSERT_GT(all.size(), 1000u);
    unsigned broken = 0;
    for (rte_mbuf* x : all)
        broken += !RTE_MBUF_DIRECT(x) || x->buf_len != RTE_MBUF_DEFAULT_BUF_SIZE ||
                  rte_pktmbuf_tailroom(x) < 2000;
    for (rte_mbuf* x : all)
        rte_pktmbuf_free(x);
    EXPECT_EQ(broken, 0u);
}

// The independent checker itself must reject wrong checksums, or every
// assertion above would pass vacuously.
TEST_F(Rewrite, CheckerRejectsCorruption)
{
    const bytes good = run(build(spec(40)));
    ASSERT_TRUE(ipv4_cksum_ok(good));
    ASSERT_TRUE(udp4_cksum_ok(good));
    for (size_t at : std::initializer_list<size_t>{22, 26, 33}) { // TTL, source, destination
        bytes b = good;
        b[at] ^= 0x01;
        EXPECT_FALSE(ipv4_cksum_ok(b)) << at;
    }
    for (size_t at : std::initializer_list<size_t>{26, 34, 37, 42, good.size() - 1}) {
        bytes b = good;
        b[at] ^= 0x80;
        EXPECT_FALSE(udp4_cksum_ok(b)) << at;
    }
}

// fold64 against the plain fold (add the halves, then fold the carries one
// step at a time): every sum folds to the same 16 bits, 0 only for 0.
namespace {
uint16_t fold64_reference(uint64_t s)
{
    s = (s & 0xffffffff) + (s >> 32);
    while (s > 0xffff)
        s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(s);
}
} // namespace

TEST(Fold64, EdgesMatchTheStepwiseFold)
{
    const uint64_t edges[] = {0,
                              1,
                              0xffff,
                              0x10000,
                              0xfffe'ffff,
                              0xffff'ffff,
                              0x1'0000'0000,
                              0x1'ffff'fffe,
                              0xffff'ffff'0000'0000,
                              0xffff'fffe'0000'0001,
                              0xffff'ffff'ffff'ffff,
                              0x8000'0000'8000'0000,
                              uint64_t{0xffff'ffff} * 0xffff};
    for (uint64_t s : edges)
        EXPECT_EQ(dp::fold64(s), fold64_reference(s)) << std::hex << s;
    EXPECT_EQ(dp::fold64(0), 0);
    EXPECT_EQ(dp::fold64(0xffff), 0xffff);
    EXPECT_EQ(dp::fold64(0xffff'ffff), 0xffff); // one's complement -0
}

TEST(Fold64, RandomSumsMatchTheStepwiseFold)
{
    std::mt19937_64 rng(7);
    for (int i = 0; i < 2'000'000; i++) {
        const uint64_t s = rng() >> (i % 40); // wide and narrow sums alike
        ASSERT_EQ(dp::fold64(s), fold64_reference(s)) << std::hex << s;
        const uint64_t m = (rng() & 0xffff'ffff) * 0xffff; // multiples of 0xffff
        ASSERT_EQ(dp::fold64(m), fold64_reference(m)) << std::hex << m;
    }
}
