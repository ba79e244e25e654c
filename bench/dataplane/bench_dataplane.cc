// Micro benchmarks of the dataplane stages, one packet at a time and per
// burst: classification, flow lookup at 1k, 100k and 1M legs (the worker's
// direct-indexed flow_table, and rte_hash bulk lookup for comparison), header rewrite with checksums, and the RFC 1071 sum
// (DPDK's rte_raw_cksum against dataplane/cksum.h).
//
// bench_path6.cc: the per-packet path by family (IPv4, IPv6, bridging), with
// each suite's time relative to IPv4 printed after the run.
//
// Run: build/bench/dataplane/bench_dataplane --benchmark_min_time=0.2
// Numbers: README.md "Performance" (measured, never asserted).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "dataplane/cksum.h"
#include "dataplane/classify.h"
#include "dataplane/flow_table.h"
#include "dataplane/iface.h"
#include "dataplane/leg.h"
#include "dataplane/rewrite.h"

using namespace isar;

namespace {

rte_mempool* pool;
dp::iface ifc;
dp::local_addr laddr0;
int16_t iface_of_port[RTE_MAX_ETHPORTS];
dp::classify_ctx cctx;

// An Ethernet/IPv4/UDP/RTP frame to 198.18.0.1:port with `payload` RTP bytes.
rte_mbuf* make_frame(uint16_t port, unsigned payload)
{
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    const unsigned len = 14 + 20 + 8 + payload;
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(len)));
    memset(p, 0, len);
    auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p + 14);
    ip->version_ihl = 0x45;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(20 + 8 + payload));
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->src_addr = rte_cpu_to_be_32(0xc6120002);
    ip->dst_addr = ifc.ip_be;
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    auto* udp = reinterpret_cast<rte_udp_hdr*>(p + 34);
    udp->src_port = rte_cpu_to_be_16(4000);
    udp->dst_port = rte_cpu_to_be_16(port);
    udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(8 + payload));
    p[42] = 0x80;
    p[43] = 0;
    udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
    m->port = 0;
    return m;
}

void bm_classify(benchmark::State& st)
{
    rte_mbuf* m = make_frame(30000, static_cast<unsigned>(st.range(0)));
    dp::pkt_meta meta;
    for (auto _ : st) {
        dp::classify_one(cctx, m, meta);
        benchmark::DoNotOptimize(meta);
    }
    if (meta.v != dp::verdict::lookup)
        st.SkipWithError("frame did not classify as RTP");
    rte_pktmbuf_free(m);
}
BENCHMARK(bm_classify)->Arg(160)->Arg(1200);

void bm_lookup_bulk(benchmark::State& st)
{
    const auto n = static_cast<uint32_t>(st.range(0));
    rte_hash_parameters hp{};
    static int seq = 0;
    const std::string name = "bench_flows" + std::to_string(seq++);
    hp.name = name.c_str();
    hp.entries = n < 64 ? 64 : n;
    hp.key_len = sizeof(uint32_t);
    hp.hash_func = rte_hash_crc;
    hp.socket_id = static_cast<int>(rte_socket_id());
    rte_hash* h = rte_hash_create(&hp);
    if (h == nullptr) {
        st.SkipWithError("rte_hash_create failed (memory?)");
        return;
    }
    std::vector<uint32_t> keys(n);
    for (uint32_t i = 0; i < n; i++) {
        // Keys as the worker forms them: port id and relay port, many ports.
        keys[i] = (i / 65536) << 16 | (i % 65536);
        rte_hash_add_key_data(h, &keys[i], reinterpret_cast<void*>(uintptr_t(i + 1)));
    }
    std::mt19937 rng(42);
    std::uniform_int_distribution<uint32_t> pick(0, n - 1);
    constexpr unsigned burst = 32;
    std::vector<uint32_t> probe(1 << 16);
    for (auto& p : probe)
        p = keys[pick(rng)];
    const void* kp[burst];
    void* data[burst];
    uint64_t hits = 0;
    size_t at = 0;
    for (auto _ : st) {
        for (unsigned i = 0; i < burst; i++)
            kp[i] = &probe[(at + i) & 0xffff];
        at += burst;
        rte_hash_lookup_bulk_data(h, kp, burst, &hits, data);
        benchmark::DoNotOptimize(data);
    }
    if (hits != (uint64_t{1} << burst) - 1)
        st.SkipWithError("lookups missed");
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations()) * burst);
    st.counters["ns_per_lookup"] = benchmark::Counter(
            static_cast<double>(st.iterations()) * burst,
            benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    rte_hash_free(h);
}
BENCHMARK(bm_lookup_bulk)->Arg(1000)->Arg(100000)->Arg(1000000);

// The worker's flow table (dataplane/flow_table.h) with the worker's access
// pattern: prefetch every slot of a burst, then read them.
void bm_lookup_flow_table(benchmark::State& st)
{
    const auto n = static_cast<uint32_t>(st.range(0));
    const unsigned nifaces = (n + 65535) / 65536;
    dp::flow_table ft;
    if (ft.init(nifaces, n, static_cast<int>(rte_socket_id())) != 0) {
        st.SkipWithError("flow_table init failed (memory?)");
        return;
    }
    // Any non-null pointer will do: the benchmark never dereferences a leg.
    static dp::leg dummy;
    std::vector<uint32_t> keys(n);
    for (uint32_t i = 0; i < n; i++) {
        keys[i] = dp::flow_key(static_cast<uint16_t>(i / 65536), static_cast<uint16_t>(i % 65536));
        ft.insert(keys[i], &dummy);
    }
    std::mt19937 rng(42);
    std::uniform_int_distribution<uint32_t> pick(0, n - 1);
    constexpr unsigned burst = 32;
    std::vector<uint32_t> probe(1 << 16);
    for (auto& p : probe)
        p = keys[pick(rng)];
    dp::leg* found[burst];
    uint64_t misses = 0;
    size_t at = 0;
    for (auto _ : st) {
        for (unsigned i = 0; i < burst; i++)
            ft.prefetch(probe[(at + i) & 0xffff]);
        for (unsigned i = 0; i < burst; i++) {
            found[i] = ft.lookup(probe[(at + i) & 0xffff]);
            misses += found[i] == nullptr;
        }
        at += burst;
        benchmark::DoNotOptimize(found);
    }
    if (misses != 0)
        st.SkipWithError("lookups missed");
    st.SetItemsProcessed(static_cast<int64_t>(st.iterations()) * burst);
    st.counters["ns_per_lookup"] = benchmark::Counter(
            static_cast<double>(st.iterations()) * burst,
            benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(bm_lookup_flow_table)->Arg(1000)->Arg(100000)->Arg(1000000);

// range(1): 1 = the port verified the UDP checksum (incremental update),
// 0 = unknown (full recomputation, as on af_packet/veth).
void bm_rewrite(benchmark::State& st)
{
    rte_mbuf* m = make_frame(30000, static_cast<unsigned>(st.range(0)));
    const uint64_t rx_flags = st.range(1) ? RTE_MBUF_F_RX_L4_CKSUM_GOOD : 0;
    dp::rewrite_to to{};
    to.src_mac = ifc.mac;
    to.src_ip_be = ifc.ip_be;
    to.dst_ip_be = rte_cpu_to_be_32(0xc6120003);
    to.src_port_be = rte_cpu_to_be_16(30001);
    to.dst_port_be = rte_cpu_to_be_16(5000);
    for (auto _ : st) {
        m->ol_flags = rx_flags;
        dp::rewrite_udp4(m, 14, 34, to,
                         st.range(1) ? dp::udp_cksum::update : dp::udp_cksum::compute);
        benchmark::ClobberMemory();
    }
    rte_pktmbuf_free(m);
}
BENCHMARK(bm_rewrite)->ArgsProduct({{160, 1200}, {0, 1}});

// The sum of range(0) bytes that start where the UDP header of a frame sits
// in an mbuf (64-byte aligned data + 34): what a full UDP checksum reads.
template <uint16_t (*Sum)(const void*, size_t)>
void bm_cksum(benchmark::State& st)
{
    alignas(64) static uint8_t buf[34 + 2048];
    const auto len = static_cast<size_t>(st.range(0));
    std::mt19937 rng(1071);
    for (auto& b : buf)
        b = static_cast<uint8_t>(rng());
    const uint8_t* p = buf + 34;
    for (auto _ : st) {
        benchmark::DoNotOptimize(p); // the bytes may have changed: sum again
        uint16_t ck = Sum(p, len);
        benchmark::DoNotOptimize(ck);
    }
    st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * len));
}
// Out of line, loops 32-byte aligned: DPDK's loop (one 16-bit word per
// cycle at best) took 1.5 cycles per word wherever it crossed a 32-byte
// fetch boundary, which would flatter the comparison by ~60%.
[[gnu::noinline, gnu::optimize("align-loops=32")]] uint16_t rte_raw(const void* buf, size_t len)
{
    return rte_raw_cksum(buf, len);
}
[[gnu::noinline, gnu::optimize("align-loops=32")]] uint16_t isar_raw(const void* buf, size_t len)
{
    return dp::raw_cksum(buf, len);
}
BENCHMARK(bm_cksum<rte_raw>)->Name("bm_cksum_rte_raw")->Arg(160)->Arg(1200);
BENCHMARK(bm_cksum<isar_raw>)->Name("bm_cksum_isar_raw")->Arg(160)->Arg(1200);

// The console output, and the bm_path suites' times for the ratio table.
class ratio_reporter : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override
    {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& r : runs)
            if (!r.error_occurred && r.iterations > 0)
                t_[r.benchmark_name()] = r.GetAdjustedRealTime();
    }
    // "bm_path/in:6/out:6/legs:1000" against "bm_path/in:4/out:4/legs:1000".
    void print_ratios() const
    {
        bool header = false;
        for (const auto& [name, t] : t_) {
            if (name.rfind("bm_path/", 0) != 0 || name.find("in:4/out:4/") != std::string::npos)
                continue;
            const size_t legs = name.find("/legs:");
            if (legs == std::string::npos)
                continue;
            const auto ref = t_.find("bm_path/in:4/out:4" + name.substr(legs));
            if (ref == t_.end() || ref->second <= 0)
                continue;
            if (!header)
                std::printf("\nper-packet path relative to IPv4 -> IPv4 (same run, same legs):\n");
            header = true;
            std::printf("  %-36s %6.2fx\n", name.c_str(), t / ref->second);
        }
    }

private:
    std::map<std::string, double> t_;
};

} // namespace

int main(int argc, char** argv)
{
    const char* eal[] = {"bench_dataplane", "--no-huge", "-m",         "1024",
                         "--no-pci",        "--file-prefix=bench_dp", "--log-level=error"};
    if (rte_eal_init(sizeof(eal) / sizeof(eal[0]), const_cast<char**>(eal)) < 0) {
        fprintf(stderr, "bench_dataplane: EAL init failed\n");
        return 1;
    }
    pool = rte_pktmbuf_pool_create("bench_pool", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   static_cast<int>(rte_socket_id()));
    for (auto& i : iface_of_port)
        i = -1;
    iface_of_port[0] = 0;
    ifc.ip_be = rte_cpu_to_be_32(0xc6120001);
    ifc.mask_be = rte_cpu_to_be_32(0xffffff00);
    ifc.laddr_first = ifc.laddr4 = 0;
    ifc.nladdr = 1;
    laddr0.ip4_be = ifc.ip_be;
    laddr0.mask4_be = ifc.mask_be;
    cctx.ifaces = &ifc;
    cctx.laddrs = &laddr0;
    cctx.nladdrs = 1;
    cctx.iface_of_port = iface_of_port;
    cctx.nports = RTE_MAX_ETHPORTS;
    cctx.nworkers = 1;
    benchmark::Initialize(&argc, argv);
    ratio_reporter rep;
    benchmark::RunSpecifiedBenchmarks(&rep);
    rep.print_ratios();
    benchmark::Shutdown();
    rte_eal_cleanup();
    return 0;
}
