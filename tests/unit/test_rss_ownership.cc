// dataplane/ownership.cc: the Toeplitz hashes Isar computes for a port's
// owner (rte_softrss) agree with the RSS specification's test vectors and
// with a bit-by-bit Toeplitz over the bytes a NIC hashes (destination
// address, then port); the per-slot maps follow the RETA and the queue ->
// worker deal; classify reads the map for real packets.
#include "dataplane/classify.h"
#include "dataplane/iface.h"
#include "dataplane/leg.h"
#include "dataplane/ownership.h"
#include "tests/support/eal_env.h"
#include "tests/support/packet_builder.h"

#include <gtest/gtest.h>
#include <rte_byteorder.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_thash.h>

#include <memory>
#include <vector>

ISAR_TEST_EAL_ENV("test_rss_ownership");

using namespace isar;
using namespace isar::test;

namespace {

// Toeplitz as the RSS specification defines it, over a byte stream: for
// every set bit i of the input (most significant bit first), XOR in the 32
// key bits starting at bit i.
uint32_t toeplitz_ref(const uint8_t* key, size_t key_len, const std::vector<uint8_t>& in)
{
    auto key_bit = [&](size_t b) -> uint32_t {
        return b / 8 < key_len ? (key[b / 8] >> (7 - b % 8)) & 1u : 0u;
    };
    uint32_t h = 0;
    for (size_t i = 0; i < in.size() * 8; i++) {
        if (((in[i / 8] >> (7 - i % 8)) & 1u) == 0)
            continue;
        uint32_t w = 0;
        for (size_t k = 0; k < 32; k++)
            w = (w << 1) | key_bit(i + k);
        h ^= w;
    }
    return h;
}

std::vector<uint8_t> be_bytes(uint32_t v, unsigned n)
{
    std::vector<uint8_t> b;
    for (unsigned i = 0; i < n; i++)
        b.push_back(static_cast<uint8_t>(v >> (8 * (n - 1 - i))));
    return b;
}

dp::local_addr v4(const char* a)
{
    dp::local_addr l;
    l.family = 4;
    l.ip4_be = rte_cpu_to_be_32(ip4(a));
    return l;
}

dp::local_addr v6()
{
    dp::local_addr l;
    l.family = 6;
    const uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34};
    std::copy(a, a + 16, l.ip6.b);
    return l;
}

// What a NIC with RSS on L3_DST_ONLY | L4_DST_ONLY hashes: the destination
// address's bytes, then the port's.
std::vector<uint8_t> dst_bytes(const dp::local_addr& a, uint16_t port)
{
    std::vector<uint8_t> in;
    if (a.family == 4)
        in = be_bytes(rte_be_to_cpu_32(a.ip4_be), 4);
    else
        in.assign(a.ip6.b, a.ip6.b + 16);
    in.push_back(static_cast<uint8_t>(port >> 8));
    in.push_back(static_cast<uint8_t>(port));
    return in;
}

dp::rss_layout layout(unsigned reta_size, unsigned nrxq, std::vector<uint8_t> queue_worker)
{
    dp::rss_layout l;
    for (unsigned i = 0; i < reta_size; i++)
        l.reta.push_back(static_cast<uint16_t>(i % nrxq));
    l.queue_worker = std::move(queue_worker);
    l.nworkers = 2;
    l.v4 = l.v6 = true;
    return l;
}

} // namespace

// The specification's IPv4/UDP-or-TCP vectors (source, destination, source
// port, destination port) with its key: the key, the tuple layout and
// rte_softrss as Isar calls it.
TEST(RssHash, SpecificationVectors)
{
    struct vec {
        const char *src, *dst;
        uint16_t sport, dport;
        uint32_t hash;
    };
    const vec vs[] = {
            {"66.9.149.187", "161.142.100.80", 2794, 1766, 0x51ccc178},
            {"199.92.111.2", "65.69.140.83", 14230, 4739, 0xc626b0ea},
            {"24.19.198.95", "12.22.207.184", 12898, 38024, 0x5c2b394a},
    };
    for (const vec& v : vs) {
        const uint32_t s = rte_cpu_to_be_32(ip4(v.src)), d = rte_cpu_to_be_32(ip4(v.dst));
        EXPECT_EQ(dp::rss_hash_4tuple(s, d, v.sport, v.dport, dp::rss_key), v.hash) << v.dst;
        std::vector<uint8_t> in = be_bytes(ip4(v.src), 4);
        for (uint8_t b : be_bytes(ip4(v.dst), 4))
            in.push_back(b);
        for (uint8_t b : be_bytes(v.sport, 2))
            in.push_back(b);
        for (uint8_t b : be_bytes(v.dport, 2))
            in.push_back(b);
        EXPECT_EQ(toeplitz_ref(dp::rss_key, dp::rss_key_size, in), v.hash) << "reference";
    }
}

// Destination address and port, packed as a NIC hashes them: equal to the
// bit-by-bit Toeplitz for every port of an IPv4 and an IPv6 address, and
// NOT what a zero-padded rte_ipv4_tuple would give (other key bits).
TEST(RssHash, DestinationOnlyMatchesReference)
{
    for (const dp::local_addr& a : {v4("198.18.0.1"), v4("203.0.113.77"), v6()}) {
        unsigned same_as_padded = 0;
        for (uint32_t p = 0; p < 65536; p += 97) {
            const auto port = static_cast<uint16_t>(p);
            const uint32_t h = dp::rss_hash_dst(a, port, dp::rss_key);
            ASSERT_EQ(h, toeplitz_ref(dp::rss_key, dp::rss_key_size, dst_bytes(a, port)))
                    << "family " << int{a.family} << " port " << port;
            if (a.family == 4) {
                rte_ipv4_tuple t{};
                t.dst_addr = rte_be_to_cpu_32(a.ip4_be);
                t.dport = port;
                same_as_padded +=
                        h == rte_softrss(reinterpret_cast<uint32_t*>(&t), RTE_THASH_V4_L4_LEN,
                                         dp::rss_key);
            }
        }
        EXPECT_LT(same_as_padded, 20u) << "the packed and the padded layouts differ";
    }
}

// The map: every port's owner is RETA[hash % size]'s worker; both workers
// get a fair share; a family the NIC does not hash on the destination gets
// the pairs rule.
TEST(RssOwnerMap, FollowsRetaAndQueues)
{
    auto m = std::make_unique<dp::port_owner_map>();
    // 3 RX queues (af_packet qpairs=3 style) dealt w0, w1, w0; RETA of 128.
    const dp::rss_layout l = layout(128, 3, {0, 1, 0});
    for (const dp::local_addr& a : {v4("198.18.0.1"), v6()}) {
        dp::fill_toeplitz(*m, a, l, dp::rss_key);
        unsigned n[2] = {0, 0};
        for (uint32_t p = 0; p < 65536; p++) {
            const uint32_t h = toeplitz_ref(dp::rss_key, dp::rss_key_size,
                                            dst_bytes(a, static_cast<uint16_t>(p)));
            const unsigned w = l.queue_worker[l.reta[h % 128]];
            ASSERT_EQ(m->owner[p], w) << p;
            n[w]++;
        }
        // Queues 0 and 2 are worker 0's: about 2/3 of the ports.
        EXPECT_NEAR(n[0] / 65536.0, 2.0 / 3, 0.05);
        EXPECT_NEAR(n[1] / 65536.0, 1.0 / 3, 0.05);
    }
    dp::rss_layout v4only = l;
    v4only.v6 = false;
    dp::fill_toeplitz(*m, v6(), v4only, dp::rss_key);
    for (uint32_t p = 0; p < 65536; p++)
        ASSERT_EQ(m->owner[p], dp::owner_of_port(static_cast<uint16_t>(p), 2)) << p;
}

// Toeplitz is linear: with "entry i -> queue i % 2" every port pair of an
// address family lands on two queues or none (the hashes of 2k and 2k+1
// differ by one constant). paired_reta keeps every pair on one queue, for
// IPv4 and IPv6 at once, with the queues balanced.
TEST(RssOwnerMap, PairedRetaKeepsPortPairsTogether)
{
    auto m = std::make_unique<dp::port_owner_map>();
    for (unsigned nrxq : {2u, 3u, 4u}) {
        dp::rss_layout l;
        l.reta = dp::paired_reta(128, nrxq, dp::rss_key);
        std::vector<unsigned> per_q(nrxq, 0);
        for (uint16_t q : l.reta)
            per_q[q]++;
        for (unsigned c : per_q)
            EXPECT_NEAR(c, 128.0 / nrxq, 4.0) << "queue entries, nrxq " << nrxq;
        for (unsigned q = 0; q < nrxq; q++)
            l.queue_worker.push_back(static_cast<uint8_t>(q % 2));
        l.nworkers = 2;
        l.v4 = l.v6 = true;
        for (const dp::local_addr& a : {v4("198.18.0.1"), v4("10.1.2.3"), v6()}) {
            dp::fill_toeplitz(*m, a, l, dp::rss_key);
            for (uint32_t p = 0; p < 65536; p += 2)
                ASSERT_EQ(m->owner[p], m->owner[p + 1]) << "pair " << p << " nrxq " << nrxq;
        }
    }
    // The naive RETA: every IPv4 pair split or none is (the constant's low bit).
    dp::rss_layout naive = layout(128, 2, {0, 1});
    dp::fill_toeplitz(*m, v4("198.18.0.1"), naive, dp::rss_key);
    unsigned split = 0;
    for (uint32_t p = 0; p < 65536; p += 2)
        split += m->owner[p] != m->owner[p + 1];
    EXPECT_TRUE(split == 0 || split == 32768) << split;
}

TEST(RssOwnerMap, PairsIsOwnerOfPort)
{
    auto m = std::make_unique<dp::port_owner_map>();
    for (unsigned nw : {1u, 2u, 3u, 5u}) {
        dp::fill_pairs(*m, nw);
        for (uint32_t p = 0; p < 65536; p++)
            ASSERT_EQ(m->owner[p], dp::owner_of_port(static_cast<uint16_t>(p), nw));
    }
}

// classify on real frames: the owner of a relay port is the slot's map entry
// (the NIC's queue), not the pairs rule; without a map the pairs rule.
TEST(RssClassify, OwnerFromTheSlotMap)
{
    ASSERT_TRUE(eal_env::ready());
    rte_mempool* mp = rte_pktmbuf_pool_create("rss_pool", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                              SOCKET_ID_ANY);
    ASSERT_NE(mp, nullptr);
    dp::iface ifc;
    const uint32_t relay = ip4("198.18.0.1");
    ifc.ip_be = rte_cpu_to_be_32(relay);
    ifc.mask_be = rte_cpu_to_be_32(0xffffff00);
    ifc.laddr_first = ifc.laddr4 = 0;
    ifc.nladdr = 1;
    dp::local_addr la = v4("198.18.0.1");
    la.mask4_be = ifc.mask_be;
    int16_t iface_of_port[1] = {0};
    auto map = std::make_unique<dp::port_owner_map>();
    const dp::rss_layout l = layout(512, 2, {1, 0});
    dp::fill_toeplitz(*map, la, l, dp::rss_key);
    const uint8_t* maps[1] = {map->owner};
    dp::classify_ctx ctx;
    ctx.ifaces = &ifc;
    ctx.laddrs = &la;
    ctx.nladdrs = 1;
    ctx.iface_of_port = iface_of_port;
    ctx.nports = 1;
    ctx.nworkers = 2;
    ctx.relay_min = 30000;
    ctx.relay_max = 39999;
    unsigned differs = 0;
    for (uint16_t port = 30000; port < 30400; port++) {
        udp4_spec s;
        s.src_ip = ip4("198.51.100.9");
        s.dst_ip = relay;
        s.src_port = static_cast<uint16_t>(5000 + port % 7);
        s.dst_port = port;
        s.payload = rtp(1, 0x11223344, 172);
        for (const bool with_map : {true, false}) {
            ctx.port_owner = with_map ? maps : nullptr;
            rte_mbuf* m = make_mbuf(mp, build(s), 0);
            ASSERT_NE(m, nullptr);
            dp::pkt_meta meta;
            dp::classify_one(ctx, m, meta);
            rte_pktmbuf_free(m);
            ASSERT_EQ(meta.v, dp::verdict::lookup) << port;
            const uint32_t h = toeplitz_ref(dp::rss_key, dp::rss_key_size, dst_bytes(la, port));
            const unsigned want = with_map ? l.queue_worker[l.reta[h % 512]]
                                           : dp::owner_of_port(port, 2);
            EXPECT_EQ(meta.owner, want) << "port " << port << (with_map ? " map" : " pairs");
            if (with_map)
                differs += meta.owner != dp::owner_of_port(port, 2);
        }
    }
    EXPECT_GT(differs, 100u) << "the Toeplitz map is not the pairs rule";
    rte_mempool_free(mp);
}

// The port configuration isard asks of a NIC that can: RSS on destination
// address and port of UDP, the specification's key repeated to the device's
// key size; nothing of it from a NIC without L3_DST_ONLY/L4_DST_ONLY.
TEST(RssPortConf, DestinationOnlyWhereTheDeviceCan)
{
    rte_eth_dev_info info{};
    info.reta_size = 512;
    info.hash_key_size = 52; // ice
    info.flow_type_rss_offloads = RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_NONFRAG_IPV6_UDP |
                                  RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_L3_SRC_ONLY |
                                  RTE_ETH_RSS_L3_DST_ONLY | RTE_ETH_RSS_L4_SRC_ONLY |
                                  RTE_ETH_RSS_L4_DST_ONLY;
    ASSERT_TRUE(dp::rss_dst_capable(info));
    rte_eth_conf conf{};
    std::vector<uint8_t> key;
    dp::rss_dst_conf(conf, info, key);
    EXPECT_EQ(conf.rxmode.mq_mode, RTE_ETH_MQ_RX_RSS);
    EXPECT_EQ(conf.rx_adv_conf.rss_conf.rss_hf,
              RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_NONFRAG_IPV6_UDP |
                      RTE_ETH_RSS_L3_DST_ONLY | RTE_ETH_RSS_L4_DST_ONLY);
    EXPECT_EQ(conf.rx_adv_conf.rss_conf.rss_hf & ~info.flow_type_rss_offloads, 0u)
            << "ethdev refuses bits the device does not offer";
    ASSERT_EQ(conf.rx_adv_conf.rss_conf.rss_key_len, 52);
    ASSERT_EQ(conf.rx_adv_conf.rss_conf.rss_key, key.data());
    for (unsigned i = 0; i < 52; i++)
        EXPECT_EQ(key[i], dp::rss_key[i % dp::rss_key_size]) << i;
    dp::rss_layout l;
    dp::rss_dst_families(info, l);
    EXPECT_TRUE(l.v4 && l.v6);

    for (const uint64_t missing : {RTE_ETH_RSS_L4_DST_ONLY, RTE_ETH_RSS_L3_DST_ONLY,
                                   RTE_ETH_RSS_NONFRAG_IPV4_UDP}) {
        rte_eth_dev_info no = info;
        no.flow_type_rss_offloads &= ~missing;
        EXPECT_FALSE(dp::rss_dst_capable(no)) << std::hex << missing;
    }
    rte_eth_dev_info no_reta = info;
    no_reta.reta_size = 0;
    EXPECT_FALSE(dp::rss_dst_capable(no_reta));
}
