// The per-packet forwarding path by family, at 1k and 100k legs: classify,
// flow-table lookup (prefetched per burst, as the worker does), the leg's
// remote, and the header rewrite (rewrite_udp4, or rewrite_udp6 for IPv6
// and bridging), per burst of 32. No TX, no neighbour lookup. Suites:
//   bm_path/4to4  (IPv4, the reference)   bm_path/6to6  (plain IPv6)
//   bm_path/4to6, bm_path/6to4            (bridging)
// bench_dataplane's main prints each suite's time relative to 4to4 at the
// same leg count.
#include <benchmark/benchmark.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "dataplane/classify.h"
#include "dataplane/flow_table.h"
#include "dataplane/iface.h"
#include "dataplane/leg.h"
#include "dataplane/rewrite.h"
#include "dataplane/rewrite6.h"

using namespace isar;

namespace {

constexpr unsigned burst = 32;
constexpr unsigned payload = 160;

// Two interfaces (ports 0 and 1), each with one slot per family: slot
// 2 * iface + (family == 6). Leg i sits on interface i / 65536, port i % 65536.
struct path_env {
    rte_mempool* pool = nullptr;
    dp::iface ifaces[2];
    dp::local_addr laddrs[4];
    int16_t iface_of_port[RTE_MAX_ETHPORTS];
    dp::classify_ctx cctx;

    path_env()
    {
        pool = rte_pktmbuf_pool_create("bench_path6", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                       static_cast<int>(rte_socket_id()));
        for (auto& i : iface_of_port)
            i = -1;
        for (uint16_t f = 0; f < 2; f++) {
            iface_of_port[f] = static_cast<int16_t>(f);
            dp::iface& i = ifaces[f];
            i.index = i.port_id = f;
            i.ip_be = rte_cpu_to_be_32(0xc6120001 + (uint32_t{f} << 8)); // 198.18.f.1
            i.mask_be = rte_cpu_to_be_32(0xffffff00);
            i.laddr_first = i.laddr4 = static_cast<uint16_t>(2 * f);
            i.nladdr = 2;
            dp::local_addr& a4 = laddrs[2 * f];
            a4.iface = f;
            a4.ip4_be = i.ip_be;
            a4.mask4_be = i.mask_be;
            dp::local_addr& a6 = laddrs[2 * f + 1];
            a6.iface = f;
            a6.family = 6;
            a6.prefix_len = 64;
            a6.ip6 = addr6(static_cast<uint8_t>(f), 1); // 2001:2:0:f::1
        }
        cctx.ifaces = ifaces;
        cctx.laddrs = laddrs;
        cctx.nladdrs = 4;
        cctx.iface_of_port = iface_of_port;
        cctx.nports = RTE_MAX_ETHPORTS;
        cctx.nworkers = 1;
        cctx.relay_min = 0;
        cctx.relay_max = 65535;
    }
    static dp::ip6_addr addr6(uint8_t net, uint16_t host)
    {
        dp::ip6_addr a;
        a.b[0] = 0x20;
        a.b[1] = 0x01;
        a.b[3] = 0x02;
        a.b[7] = net;
        a.b[14] = static_cast<uint8_t>(host >> 8);
        a.b[15] = static_cast<uint8_t>(host);
        return a;
    }
};

path_env& env()
{
    static path_env e;
    return e;
}

// Writes a fresh Ethernet/IP/UDP header of `family` in front of the RTP
// payload (which rewrites never move) to leg `i`'s port on its interface.
void reset_frame(rte_mbuf* m, uint8_t family, uint32_t i)
{
    const path_env& e = env();
    const uint16_t ifc = static_cast<uint16_t>(i >> 16);
    const uint32_t l3 = family == 6 ? 40 : 20;
    m->data_off = RTE_PKTMBUF_HEADROOM;
    m->data_len = static_cast<uint16_t>(14 + l3 + 8 + payload);
    m->pkt_len = m->data_len;
    m->port = ifc;
    m->ol_flags = RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    auto* p = rte_pktmbuf_mtod(m, uint8_t*);
    auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
    eth->ether_type = rte_cpu_to_be_16(family == 6 ? RTE_ETHER_TYPE_IPV6 : RTE_ETHER_TYPE_IPV4);
    if (family == 6) {
        auto* ip = reinterpret_cast<rte_ipv6_hdr*>(p + 14);
        ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
        ip->payload_len = rte_cpu_to_be_16(8 + payload);
        ip->proto = IPPROTO_UDP;
        ip->hop_limits = 64;
        const dp::ip6_addr src = path_env::addr6(static_cast<uint8_t>(ifc), 2);
        std::memcpy(ip->src_addr, src.b, 16);
        std::memcpy(ip->dst_addr, e.laddrs[2 * ifc + 1].ip6.b, 16);
    } else {
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p + 14);
        ip->version_ihl = 0x45;
        ip->type_of_service = 0;
        ip->total_length = rte_cpu_to_be_16(20 + 8 + payload);
        ip->packet_id = 0;
        ip->fragment_offset = 0;
        ip->time_to_live = 64;
        ip->next_proto_id = IPPROTO_UDP;
        ip->src_addr = rte_cpu_to_be_32(0xc6120002 + (uint32_t{ifc} << 8));
        ip->dst_addr = e.ifaces[ifc].ip_be;
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
    }
    auto* udp = reinterpret_cast<rte_udp_hdr*>(p + 14 + l3);
    udp->src_port = rte_cpu_to_be_16(4000);
    udp->dst_port = rte_cpu_to_be_16(static_cast<uint16_t>(i));
    udp->dgram_len = rte_cpu_to_be_16(8 + payload);
    udp->dgram_cksum = 0x1234; // "verified by the port": updated incrementally
}

// range(0): input family, range(1): output family, range(2): legs.
void bm_path(benchmark::State& st)
{
    path_env& e = env();
    const auto fin = static_cast<uint8_t>(st.range(0));
    const auto fout = static_cast<uint8_t>(st.range(1));
    const auto n = static_cast<uint32_t>(st.range(2));
    dp::flow_table ft;
    if (e.pool == nullptr || ft.init(4, n, static_cast<int>(rte_socket_id())) != 0) {
        st.SkipWithError("mempool or flow table (memory?)");
        return;
    }
    // The legs: on the input family's slot, each with a remote of the
    // output family (the worker reads the target's; the cost is the same line).
    std::unique_ptr<dp::leg[]> legs(new dp::leg[n]);
    for (uint32_t i = 0; i < n; i++) {
        dp::leg& l = legs[i];
        const uint16_t ifc = static_cast<uint16_t>(i >> 16);
        l.laddr = static_cast<uint16_t>(2 * ifc + (fout == 6));
        l.family = fout;
        l.local_port_be = rte_cpu_to_be_16(static_cast<uint16_t>(i));
        l.remote6 = path_env::addr6(static_cast<uint8_t>(ifc), 3);
        l.remote.store(fout == 6 ? dp::pack_ep6(l.remote6, rte_cpu_to_be_16(5000))
                                 : dp::pack_ep(rte_cpu_to_be_32(0xc6120003 + (uint32_t{ifc} << 8)),
                                               rte_cpu_to_be_16(5000)));
        ft.insert(dp::flow_key(static_cast<uint16_t>(2 * ifc + (fin == 6)),
                               static_cast<uint16_t>(i)),
                  &l);
    }
    rte_mbuf* m[burst];
    if (rte_pktmbuf_alloc_bulk(e.pool, m, burst) != 0) {
        st.SkipWithError("no mbufs");
        return;
    }
    for (unsigned k = 0; k < burst; k++) {
        auto* p = rte_pktmbuf_mtod_offset(m[k], uint8_t*, 14 + (fin == 6 ? 48 : 28));
        std::memset(p, 0, payload);
        p[0] = 0x80;
    }
    std::mt19937 rng(42);
    std::uniform_int_distribution<uint32_t> pick(0, n - 1);
    std::vector<uint32_t> probe(1 << 16);
    for (auto& p : probe)
        p = pick(rng);
    size_t at = 0;
    uint64_t bad = 0;
    dp::pkt_meta meta[burst];
    dp::leg* found[burst];
    for (auto _ : st) {
        for (unsigned k = 0; k < burst; k++)
            reset_frame(m[k], fin, probe[(at + k) & 0xffff]);
        at += burst;
        for (unsigned k = 0; k < burst; k++) {
            meta[k] = dp::pkt_meta{};
            dp::classify_one(e.cctx, m[k], meta[k]);
            ft.prefetch(meta[k].key);
        }
        for (unsigned k = 0; k < burst; k++) {
            found[k] = ft.lookup(meta[k].key);
            if (found[k] != nullptr) {
                __builtin_prefetch(&found[k]->remote);
                if (meta[k].family == 6) // as the worker does for IPv6 packets
                    __builtin_prefetch(&found[k]->remote6);
            }
        }
        for (unsigned k = 0; k < burst; k++) {
            dp::leg* l = found[k];
            if (l == nullptr) {
                bad++;
                continue;
            }
            const dp::packed_ep r = l->remote.load(std::memory_order_relaxed);
            const dp::local_addr& la = e.laddrs[l->laddr];
            if (fin == 4 && fout == 4) {
                dp::rewrite_to to{};
                to.src_mac = e.ifaces[la.iface].mac;
                to.src_ip_be = la.ip4_be;
                to.dst_ip_be = dp::ep_ip(r);
                to.src_port_be = l->local_port_be;
                to.dst_port_be = dp::ep_port(r);
                dp::rewrite_udp4(m[k], meta[k].l3_off, meta[k].l4_off, to, dp::udp_cksum::update);
            } else {
                dp::rewrite6_to to;
                to.family = la.family;
                to.src_mac = e.ifaces[la.iface].mac;
                to.src_ip_be = la.ip4_be;
                to.dst_ip_be = dp::ep_ip(r);
                if (la.family == 6) {
                    to.src6 = la.ip6;
                    to.dst6 = l->remote6;
                }
                to.src_port_be = l->local_port_be;
                to.dst_port_be = dp::ep_port(r);
                bad += !dp::rewrite_udp6(m[k], meta[k], to, dp::udp_cksum::update);
            }
        }
        benchmark::ClobberMemory();
    }
    rte_pktmbuf_free_bulk(m, burst);
    if (bad != 0)
        st.SkipWithError("a packet did not classify, look up or rewrite");
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations()) * burst);
    st.counters["ns_per_pkt"] = benchmark::Counter(
            static_cast<double>(st.iterations()) * burst,
            benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(bm_path)
        ->ArgNames({"in", "out", "legs"})
        ->ArgsProduct({{4}, {4}, {1000, 100000}})
        ->ArgsProduct({{6}, {6}, {1000, 100000}})
        ->ArgsProduct({{4}, {6}, {1000, 100000}})
        ->ArgsProduct({{6}, {4}, {1000, 100000}});

} // namespace
