// isar-bench: the load harness. Drives the REAL worker loop (dp::worker::run()
// on an EAL worker lcore, exactly what isard runs) through in-memory net_ring
// ports at full speed; the generator and the sink run on the main lcore.
//
// Honesty rules (see bench/README.md):
//  - every packet is built fresh for its leg (RTP sequence numbers increase per
//    leg; SRTP modes protect each packet with the sending endpoint's key using
//    isar::crypto contexts); nothing is replayed from a pool;
//  - the sink checks a sample of the output (addresses, ports, decrypts with
//    the receiving leg's key, RTP header and payload intact); a scenario whose
//    check fails, or that loses packets, reports an error instead of numbers;
//  - capacity is the worker's own busy TSC per packet (worker_stats::busy_tsc),
//    measured while its RX rings are never empty ("drain" phase: the rings are
//    filled while the worker is stopped, then it is started and the sink drains
//    its TX rings concurrently).
// Baselines measured in the same run: a minimal DPDK forwarder over the same
// ring ports, a kernel UDP relay (recvmmsg/sendmmsg on loopback), and each
// crypto engine's raw decrypt+encrypt cost.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <rte_bus_vdev.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include <nlohmann/json.hpp>

#include "control/commands.h"
#include "control/config.h"
#include "control/neighbor_manager.h"
#include "control/session_manager.h"
#include "crypto/srtp_context.h"
#include "crypto/suite.h"
#include "dataplane/dataplane.h"
#include "bench/load/bench_util.h"
#include "bench/load/ip6_modes.h"
#include "bench/load/packets.h"
#include "bench/load/rss_modes.h"
#include "bench/load/soak.h"
#include "bench/load/ring_port.h"
#include "bench/load/turn_load.h"

using namespace isar;
using json = nlohmann::json;
using bench::ring_port;
using namespace isar::bench_util;

namespace {

// ---------------------------------------------------------------- options --
struct options {
    std::vector<unsigned> legs{1, 1000, 100000};
    std::vector<std::string> modes{"plain", "plain6", "bridge46", "srtp-pass", "transcrypt-cm80", "transcrypt-gcm128",
                                   "fanout10", "turn-channeldata", "turn-indication"};
    std::vector<unsigned> payloads{160, 1200};
    struct extra_run {
        std::string mode;
        unsigned legs;
        unsigned payload; // 0 = every payload of --payloads
    };
    std::vector<extra_run> extra; // MODE:LEGS[:PAYLOAD] (e.g. plain:1000000)
    double phase_s = 0.3;
    unsigned drain_pkts = 131072;
    bool baselines = true;
    bool control = true;
    bool smoke = false;
    unsigned turn_allocs = 20000; // Allocate requests timed through turn_manager (0 = off)
    bool drain_only = false; // capacity only (for profiling the worker: no idle phases)
    std::string perf_ctl;    // perf record --control fifo: enabled only while draining
    std::string out;
    std::string memory_note = "--no-huge";
    bool soak = false; // --soak N: only the churn soak (bench/soak.h)
    bench_soak::options soak_o;
};

// ------------------------------------------------------------------ utils --
// `perf record -D -1 --control fifo:FIFO` samples only between enable and
// disable: the worker's capacity phase, not session set-up or idle loops.
int perf_ctl_fd = -1;
void perf_ctl(const char* cmd)
{
    if (perf_ctl_fd >= 0 && write(perf_ctl_fd, cmd, strlen(cmd)) < 0)
        perf_ctl_fd = -1;
}
uint64_t hz;
int stamp_off = -1; // mbuf dynfield: generator TSC (0 = do not measure)

inline uint64_t& stamp(rte_mbuf* m) { return *RTE_MBUF_DYNFIELD(m, stamp_off, uint64_t*); }
inline uint64_t& tag(rte_mbuf* m) { return *RTE_MBUF_DYNFIELD(m, stamp_off + 8, uint64_t*); }

double secs(uint64_t tsc) { return static_cast<double>(tsc) / static_cast<double>(hz); }

unsigned port_seq = 0;

// ------------------------------------------------------------------ modes --
struct mode_info {
    std::string name;
    crypto::suite s = crypto::suite::none;
    bool pass = false; // same keys both sides (authenticated pass-through)
    unsigned fan = 1;  // receivers per sender
    // Family of leg a and of leg b (plain6: both IPv6; bridge46: a IPv4, b
    // IPv6, so half the packets are bridged v4 -> v6 and half v6 -> v4).
    uint8_t fam[2] = {4, 4};
    bool v6() const { return fam[0] == 6 || fam[1] == 6; }
    uint8_t family(unsigned leg) const { return fam[leg == 0 ? 0 : 1]; }
};

bool mode_of(const std::string& n, mode_info& m)
{
    m = {};
    m.name = n;
    if (n == "plain")
        return true;
    if (n == "plain6") {
        m.fam[0] = m.fam[1] = 6;
        return true;
    }
    if (n == "bridge46") {
        m.fam[1] = 6;
        return true;
    }
    if (n == "srtp-pass") {
        m.s = crypto::suite::aes_cm_128_hmac_sha1_80;
        m.pass = true;
        return true;
    }
    if (n == "transcrypt-cm80") {
        m.s = crypto::suite::aes_cm_128_hmac_sha1_80;
        return true;
    }
    if (n == "transcrypt-gcm128") {
        m.s = crypto::suite::aead_aes_128_gcm;
        return true;
    }
    if (n == "fanout10") {
        m.fan = 10;
        return true;
    }
    if (n == "fanout199") { // a 200-leg conference: a key per receiver
        m.s = crypto::suite::aes_cm_128_hmac_sha1_80;
        m.fan = 199;
        return true;
    }
    return false;
}

constexpr uint32_t relay_ip(unsigned ifc) { return 0xc6120001 + (ifc << 8); } // 198.18.i.1
constexpr uint32_t remote_ip(unsigned ifc, unsigned leg) { return 0xc6120000 + (ifc << 8) + 10 + leg; }
rte_ether_addr remote_mac(unsigned leg)
{
    rte_ether_addr a{{0x02, 0x00, 0x00, 0x00, 0x01, static_cast<uint8_t>(leg)}};
    return a;
}
// IPv6 modes: interface i also has 2001:2:0:i::1/64; leg j's remote is
// 2001:2:0:i::(10 + j).
using bench_ip6::ip6_of;
dp::ip6_addr relay_ip6(unsigned ifc) { return ip6_of(ifc, 1); }
dp::ip6_addr remote_ip6(unsigned ifc, unsigned leg) { return ip6_of(ifc, 10 + leg); }
constexpr uint16_t remote_port_base = 1024;
// "a".."z", then "l26".. (fanout199)
std::string leg_name(unsigned j)
{
    return j < 26 ? std::string(1, static_cast<char>('a' + j)) : "l" + std::to_string(j);
}

void make_key(crypto::key_material& km, crypto::suite s, uint64_t seed)
{
    km.s = s;
    for (size_t i = 0; i < sizeof(km.key); i++)
        km.key[i] = static_cast<uint8_t>(splitmix(seed * 64 + i) >> 8);
    for (size_t i = 0; i < sizeof(km.salt); i++)
        km.salt[i] = static_cast<uint8_t>(splitmix(seed * 64 + 40 + i) >> 8);
}
std::string key_spec(crypto::suite s, uint64_t seed)
{
    crypto::key_material km;
    make_key(km, s, seed);
    std::vector<uint8_t> b(km.key, km.key + km.key_len());
    b.insert(b.end(), km.salt, km.salt + km.salt_len());
    return std::string(crypto::suite_name(s)) + ":" + base64(b.data(), b.size());
}
// key ids: session s, leg j, direction (0 in = how the remote protects, 1 out)
uint64_t key_id(const mode_info& m, uint64_t s, unsigned j, unsigned dir)
{
    if (m.pass) // in(a) == out(b), in(b) == out(a)
        return (s * 256 + (dir == 0 ? j : 1 - j)) * 2 + 1;
    return (s * 256 + j) * 2 + dir + 1000000000ull;
}

// ------------------------------------------------------------- scenario --
struct sender {
    uint32_t sess;
    uint16_t dst_port_be; // relay local port of the sending leg
    uint16_t src_port_be; // remote port
    uint32_t src_ip_be;
    dp::ip6_addr src_ip6{}; // family 6
    uint8_t family = 4;     // of the sending leg (and its remote)
    uint32_t ssrc;
    uint16_t seq = 0;
    uint8_t leg;
    uint8_t ifc;
    uint32_t ts = 0;
    std::unique_ptr<crypto::srtp_context> ctx;
};

struct sess_rec {
    uint16_t local[200] = {}; // fanout199: 200 legs
    uint8_t ifc = 0;
    uint8_t nlegs = 0;
};

struct phase_result {
    double mpps = 0, in_mpps = 0, gbps = 0, cpp = 0, cap_mpps = 0, seconds = 0;
    double cpp_best = 0, cpp_mean = 0; // drain phase: over its repetitions
    unsigned reps = 0;
    // Paced phases: iterations of the main lcore's loop that took > 20 us
    // (it was descheduled or interrupted): packets wait for the sink then,
    // and that shows up in the latency though the relay did not cause it.
    unsigned stalls = 0;
    double max_gap_us = 0;
    uint64_t sent = 0, received = 0, drops = 0;
    int64_t loss = 0;
};

struct scenario {
    const options& o;
    mode_info m;
    unsigned legs = 0;      // legs that send (flows forwarded)
    unsigned nsess = 0;
    unsigned nifaces = 1;
    unsigned payload = 160;
    unsigned extra_legs = 0; // flow-table room for later creates (control bench)
    std::vector<std::unique_ptr<ring_port>> ports;
    ctl::config cfg;
    std::unique_ptr<dp::dataplane> dp;
    std::unique_ptr<ctl::session_manager> sm;
    std::unique_ptr<ctl::neighbor_manager> nm;
    std::unique_ptr<ctl::commands> cmds;
    // IPv6 modes: sessions installed with flow commands (control's
    // session.create takes IPv4 legs only on this branch).
    std::vector<std::unique_ptr<dp::session>> direct;
    std::vector<sess_rec> sess;
    std::vector<sender> senders;
    std::vector<std::vector<uint32_t>> by_iface; // sender indexes per iface
    // sink lookup: [iface][remote-ip leg][remote port - base] -> session
    std::vector<std::vector<uint32_t>> sess_at; // [ifc] -> k -> session
    unsigned lcore = 0;
    bool running = false;
    xorshift rng;
    std::string error;
    // check state
    uint64_t checked = 0, check_fail = 0, sink_seen = 0;
    std::string first_fail;
    std::unordered_map<uint64_t, std::unique_ptr<crypto::srtp_context>> check_ctx;
    // latency capture
    bool lat_on = false;
    std::vector<uint32_t> lat;
    std::vector<uint32_t> create_lat;
    uint64_t out_bytes = 0;
    size_t mem_rss = 0, mem_dpdk = 0;
    double create_s = 0;
    uint8_t pattern[2048];

    explicit scenario(const options& opt) : o(opt)
    {
        for (unsigned i = 0; i < sizeof(pattern); i++)
            pattern[i] = static_cast<uint8_t>(i * 7 + 1);
    }
    ~scenario() { teardown(); }

    dp::worker& wk() { return dp->wk(0); }

    static int wk_main(void* a)
    {
        crypto::prepare_thread();
        return static_cast<dp::worker*>(a)->run();
    }
    void start()
    {
        if (running)
            return;
        wk().stop.store(false);
        rte_eal_remote_launch(wk_main, &wk(), lcore);
        running = true;
    }
    void stop()
    {
        if (!running)
            return;
        wk().stop.store(true);
        rte_eal_wait_lcore(lcore);
        running = false;
    }
    void teardown()
    {
        stop();
        cmds.reset();
        nm.reset();
        sm.reset();
        senders.clear();
        check_ctx.clear();
        for (auto& p : ports)
            p->drain(); // the mbufs belong to dp's pool
        dp.reset();
        direct.clear(); // the worker that referenced them is gone
        ports.clear();
    }

    bool setup(unsigned nlegs, unsigned mbufs)
    {
        legs = nlegs;
        const unsigned per_sess = m.fan > 1 ? m.fan + 1 : 2;
        const unsigned send_per_sess = m.fan > 1 ? 1 : 2;
        nsess = std::max(1u, legs / send_per_sess);
        const unsigned total_legs = nsess * per_sess;
        const unsigned ports_per_iface = 65535 - 1024 + 1;
        nifaces = std::max(1u, (total_legs + ports_per_iface - 1) / ports_per_iface);
        if (nifaces > dp::max_ifaces) {
            error = std::to_string(total_legs) + " legs need " + std::to_string(nifaces) +
                    " interfaces (one UDP port per leg per interface); the worker has max_ifaces=" +
                    std::to_string(dp::max_ifaces);
            return false;
        }
        unsigned l = 0;
        RTE_LCORE_FOREACH_WORKER(l)
        {
            lcore = l;
            break;
        }
        dp::dp_config dc;
        dc.mbufs = mbufs;
        dc.max_legs = std::max(64u, total_legs + total_legs / 8 + 64 + extra_legs);
        dc.ring_size = 4096;
        dc.rx_desc = 512;
        dc.tx_desc = 512;
        cfg.port_min = 1024;
        cfg.port_max = 65535;
        cfg.max_legs = dc.max_legs;
        cfg.mbufs = mbufs;
        const unsigned rx_size = 1u << 17;
        for (unsigned i = 0; i < nifaces; i++) {
            auto p = std::make_unique<ring_port>("lb" + std::to_string(port_seq++), 2, rx_size,
                                                 1u << 16);
            if (p->port < 0) {
                error = "cannot create ring port (RTE_MAX_ETHPORTS or memory)";
                return false;
            }
            ctl::interface_config ic;
            ic.port = static_cast<uint16_t>(p->port);
            ic.address = relay_ip(i);
            ic.prefix_len = 24;
            cfg.interfaces.push_back(ic);
            dc.ifaces.push_back({ic.port, {{4, rte_cpu_to_be_32(ic.address), {}, 24}}, 0});
            if (m.v6()) // slot 2i + 1
                dc.ifaces.back().addrs.push_back({6, 0, relay_ip6(i), 64});
            ports.push_back(std::move(p));
        }
        const size_t heap0 = dpdk_heap_used();
        dp = std::make_unique<dp::dataplane>();
        if (dp->init(dc, 1, error) != 0)
            return false;
        // DPDK memory that scales with legs: the flow table (the mempool is
        // per box, not per leg).
        size_t pool_bytes = 0;
        rte_mempool_mem_iter(
                dp->pool(),
                [](rte_mempool*, void* a, rte_mempool_memhdr* h, unsigned) {
                    *static_cast<size_t*>(a) += h->len;
                },
                &pool_bytes);
        const size_t heap1 = dpdk_heap_used();
        mem_dpdk = heap1 - heap0 > pool_bytes ? heap1 - heap0 - pool_bytes : 0;
        sm = std::make_unique<ctl::session_manager>(*dp, cfg);
        nm = std::make_unique<ctl::neighbor_manager>(*dp);
        cmds = std::make_unique<ctl::commands>(*dp, *sm, *nm, cfg);
        for (unsigned i = 0; i < nifaces; i++)
            for (unsigned j = 0; j < per_sess; j++) {
                dp->ifc(i).neigh->update(rte_cpu_to_be_32(remote_ip(i, j)), remote_mac(j));
                if (m.v6() && !dp->ifc(i).neigh->update6(remote_ip6(i, j), remote_mac(j))) {
                    error = "neighbour table refused an IPv6 entry";
                    return false;
                }
            }
        start();
        return create_sessions(per_sess);
    }

    std::string create_line(unsigned s, unsigned per_sess, unsigned ifc, unsigned k) const
    {
        json legs_j = json::array();
        for (unsigned j = 0; j < per_sess; j++) {
            char ep[40];
            const uint32_t ip = remote_ip(ifc, j);
            snprintf(ep, sizeof(ep), "%u.%u.%u.%u:%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255,
                     ip & 255, remote_port_base + k);
            json l{{"name", leg_name(j)}, {"remote", ep},
                   {"interface", ifc}};
            if (m.fan > 1 && j == 0) {
                json t = json::array();
                for (unsigned r = 1; r < per_sess; r++)
                    t.push_back(leg_name(r));
                l["targets"] = t;
            }
            if (m.s != crypto::suite::none) {
                l["in"] = key_spec(m.s, key_id(m, s, j, 0));
                l["out"] = key_spec(m.s, key_id(m, s, j, 1));
            }
            legs_j.push_back(l);
        }
        return json{{"cmd", "session.create"}, {"session", "s" + std::to_string(s)},
                    {"legs", legs_j}}
                .dump();
    }

    // IPv6 modes: two-leg sessions installed with flow commands (what
    // session_manager does, minus its records). Leg j of session s, the k-th
    // on its interface, is local port 1024 + 2k + j on its family's slot.
    bool install_direct()
    {
        const uint64_t hz_ = rte_get_tsc_hz();
        direct.reserve(nsess);
        for (unsigned s = 0; s < nsess; s++) {
            const unsigned ifc = s % nifaces, k = s / nifaces;
            auto ds = std::make_unique<dp::session>(2);
            for (unsigned j = 0; j < 2; j++) {
                dp::leg& l = ds->legs[j];
                const uint8_t fam = m.family(j);
                l.sess = ds.get();
                l.peers = ds->legs.get();
                l.index = static_cast<uint8_t>(j);
                l.iface = static_cast<uint16_t>(ifc);
                l.port_id = dp->ifc(ifc).port_id;
                l.laddr = static_cast<uint16_t>(dp->ifc(ifc).laddr_first + (fam == 6));
                l.family = fam;
                l.local_port_be = rte_cpu_to_be_16(static_cast<uint16_t>(1024 + 2 * k + j));
                const uint16_t rport_be =
                        rte_cpu_to_be_16(static_cast<uint16_t>(remote_port_base + k));
                if (fam == 6) {
                    l.remote6 = remote_ip6(ifc, j);
                    l.remote.store(dp::pack_ep6(l.remote6, rport_be));
                } else {
                    l.remote.store(dp::pack_ep(rte_cpu_to_be_32(remote_ip(ifc, j)), rport_be));
                }
                l.rtp_mult = dp::rtp_mult(0, hz_);
                l.target_mask = static_cast<uint16_t>(1u << (1 - j));
                l.ntargets = 1;
                l.targets[0] = static_cast<uint8_t>(1 - j);
                sess[s].local[j] = static_cast<uint16_t>(1024 + 2 * k + j);
            }
            sess[s].ifc = static_cast<uint8_t>(ifc);
            sess[s].nlegs = 2;
            sess_at[ifc][k] = s;
            direct.push_back(std::move(ds));
        }
        return bench_ip6::add_sessions(*dp, direct, error);
    }

    // Creates every session through commands::handle_line (the management
    // socket's entry point), a window of requests in flight.
    bool create_sessions(unsigned per_sess)
    {
        sess.assign(nsess, {});
        sess_at.assign(nifaces, std::vector<uint32_t>((nsess / nifaces) + 2, UINT32_MAX));
        const size_t rss0 = heap_bytes(), dpdk0 = dpdk_heap_used();
        if (m.v6()) {
            const uint64_t t0 = rte_rdtsc();
            if (!install_direct())
                return false;
            create_s = secs(rte_rdtsc() - t0);
            mem_rss = heap_bytes() - rss0;
            mem_dpdk += dpdk_heap_used() - dpdk0;
            return make_senders();
        }
        unsigned next = 0, done = 0, inflight = 0;
        const unsigned window = 512;
        bool failed = false;
        const uint64_t t0 = rte_rdtsc();
        while (done < nsess && !failed) {
            while (inflight < window && next < nsess) {
                const unsigned s = next++;
                const unsigned ifc = s % nifaces, k = s / nifaces;
                inflight++;
                cmds->handle_line(create_line(s, per_sess, ifc, k), [&, s, ifc, k](const json& r) {
                    inflight--;
                    done++;
                    if (r.contains("error")) {
                        if (!failed)
                            error = "session.create: " + r.dump();
                        failed = true;
                        return;
                    }
                    sess_rec& sr = sess[s];
                    sr.ifc = static_cast<uint8_t>(ifc);
                    sr.nlegs = static_cast<uint8_t>(per_sess);
                    unsigned j = 0;
                    for (const auto& l : r.at("legs")) {
                        const std::string loc = l.at("local").get<std::string>();
                        sr.local[j++] = static_cast<uint16_t>(
                                std::stoul(loc.substr(loc.rfind(':') + 1)));
                    }
                    sess_at[ifc][k] = s;
                });
            }
            sm->poll();
        }
        create_s = secs(rte_rdtsc() - t0);
        mem_rss = heap_bytes() - rss0;
        mem_dpdk += dpdk_heap_used() - dpdk0; // the legs
        if (failed)
            return false;
        return make_senders();
    }

    // Senders (after the memory measurement: they are the generator's).
    bool make_senders()
    {
        const unsigned send_per_sess = m.fan > 1 ? 1 : (legs == 1 ? 1 : 2);
        senders.reserve(static_cast<size_t>(nsess) * send_per_sess);
        by_iface.assign(nifaces, {});
        for (unsigned s = 0; s < nsess; s++) {
            const unsigned ifc = s % nifaces, k = s / nifaces;
            for (unsigned j = 0; j < send_per_sess; j++) {
                sender x;
                x.sess = s;
                x.leg = static_cast<uint8_t>(j);
                x.ifc = static_cast<uint8_t>(ifc);
                x.dst_port_be = rte_cpu_to_be_16(sess[s].local[j]);
                x.src_port_be = rte_cpu_to_be_16(static_cast<uint16_t>(remote_port_base + k));
                x.src_ip_be = rte_cpu_to_be_32(remote_ip(ifc, j));
                x.family = m.family(j);
                x.src_ip6 = remote_ip6(ifc, j);
                x.ssrc = static_cast<uint32_t>(splitmix(s * 16 + j));
                x.seq = static_cast<uint16_t>(splitmix(s * 16 + j + 7) & 0x3fff);
                if (m.s != crypto::suite::none) {
                    crypto::key_material km;
                    make_key(km, m.s, key_id(m, s, j, 0));
                    x.ctx = crypto::srtp_context::create(km, crypto::engine::auto_select, error);
                    if (!x.ctx)
                        return false;
                }
                by_iface[ifc].push_back(static_cast<uint32_t>(senders.size()));
                senders.push_back(std::move(x));
            }
        }
        return true;
    }

    // ---- generator -------------------------------------------------------
    // Builds one fresh packet for sender `x` in `mb`.
    bool build(rte_mbuf* mb, sender& x)
    {
        const unsigned rtp_len = 12 + payload;
        const unsigned trailer = crypto::max_trailer;
        const unsigned hl = bench_pkt::hdr_len(x.family);
        auto* p = reinterpret_cast<uint8_t*>(
                rte_pktmbuf_append(mb, static_cast<uint16_t>(hl + rtp_len)));
        if (p == nullptr)
            return false;
        uint8_t* rtp = p + hl;
        x.seq++;
        x.ts += 160;
        rtp[0] = 0x80;
        rtp[1] = 0x00; // PT 0
        rtp[2] = static_cast<uint8_t>(x.seq >> 8);
        rtp[3] = static_cast<uint8_t>(x.seq);
        const uint32_t ts_be = rte_cpu_to_be_32(x.ts), ssrc_be = rte_cpu_to_be_32(x.ssrc);
        memcpy(rtp + 4, &ts_be, 4);
        memcpy(rtp + 8, &ssrc_be, 4);
        memcpy(rtp + 12, pattern, payload);
        const uint32_t mark = x.ssrc ^ x.seq;
        memcpy(rtp + 12, &mark, 4);
        size_t len = rtp_len;
        if (x.ctx) {
            if (rte_pktmbuf_tailroom(mb) < trailer)
                return false;
            if (x.ctx->protect_rtp(rtp, rtp_len, rtp_len + trailer, &len) != crypto::status::ok)
                return false;
            rte_pktmbuf_append(mb, static_cast<uint16_t>(len - rtp_len));
        }
        bench_pkt::endpoint src, dst;
        src.family = dst.family = x.family;
        src.ip4_be = x.src_ip_be;
        src.ip6 = x.src_ip6;
        src.port_be = x.src_port_be;
        dst.ip4_be = rte_cpu_to_be_32(relay_ip(x.ifc));
        dst.ip6 = relay_ip6(x.ifc);
        dst.port_be = x.dst_port_be;
        bench_pkt::write_udp(p, remote_mac(x.leg), dp->ifc(x.ifc).mac, src, dst, len);
        mb->port = static_cast<uint16_t>(ports[x.ifc]->port);
        return true;
    }

    uint64_t sent = 0, gen_fail = 0;
    rte_mbuf* gbuf[32];

    // Builds and enqueues up to n packets on iface `ifc`; returns how many.
    unsigned gen(unsigned ifc, unsigned n, uint64_t st, uint64_t tg = 0)
    {
        auto& list = by_iface[ifc];
        if (list.empty())
            return 0;
        if (rte_pktmbuf_alloc_bulk(dp->pool(), gbuf, n) != 0)
            return 0;
        for (unsigned i = 0; i < n; i++) {
            sender& x = senders[list[list.size() == 1 ? 0 : rng.next() % list.size()]];
            if (!build(gbuf[i], x)) {
                gen_fail++;
                if (error.empty())
                    error = "generator could not protect a packet";
            }
            stamp(gbuf[i]) = st;
            tag(gbuf[i]) = tg;
        }
        if (st != 0) { // stamp as close to the enqueue as we can
            const uint64_t now = rte_rdtsc();
            for (unsigned i = 0; i < n; i++)
                stamp(gbuf[i]) = now;
        }
        unsigned k = rte_ring_sp_enqueue_burst(ports[ifc]->rx, reinterpret_cast<void**>(gbuf), n,
                                               nullptr);
        if (k < n) {
            // Not sent: the sequence numbers they used are skipped (harmless).
            rte_pktmbuf_free_bulk(gbuf + k, n - k);
        }
        sent += k;
        return k;
    }

    // ---- sink ------------------------------------------------------------
    uint64_t received = 0;
    uint64_t sample_every = 1024;

    void check(rte_mbuf* mb, unsigned ifc)
    {
        checked++;
        auto fail = [&](const std::string& why) {
            check_fail++;
            if (first_fail.empty())
                first_fail = why;
        };
        if (mb->nb_segs != 1)
            return fail("multi-segment output");
        bench_pkt::udp_view v;
        if (const char* why = bench_pkt::parse_check(rte_pktmbuf_mtod(mb, uint8_t*),
                                                     rte_pktmbuf_pkt_len(mb), v))
            return fail(why);
        if (v.len < 12)
            return fail("short output");
        // The receiving leg j (its remote's host part) and its session (the
        // remote port).
        unsigned j = 200;
        if (v.dst.family == 4) {
            const uint32_t dip = rte_be_to_cpu_32(v.dst.ip4_be);
            if ((dip & 0xffffff00) == (relay_ip(ifc) & 0xffffff00))
                j = (dip & 255) - 10;
        } else {
            dp::ip6_addr base = v.dst.ip6;
            base.b[14] = base.b[15] = 0;
            if (base == ip6_of(ifc, 0))
                j = (v.dst.ip6.b[14] << 8 | v.dst.ip6.b[15]) - 10;
        }
        const unsigned k = rte_be_to_cpu_16(v.dst.port_be) - remote_port_base;
        if (j >= 200 || k >= sess_at[ifc].size() || sess_at[ifc][k] == UINT32_MAX)
            return fail("output to an address no leg has");
        const uint32_t s = sess_at[ifc][k];
        const sess_rec& sr = sess[s];
        if (j >= sr.nlegs)
            return fail("output to a leg index outside the session");
        if (v.dst.family != m.family(j))
            return fail("output in the wrong address family for the receiving leg");
        const bool src_ok = v.src.family == 4 ? rte_be_to_cpu_32(v.src.ip4_be) == relay_ip(ifc)
                                              : v.src.ip6 == relay_ip6(ifc);
        if (!src_ok || rte_be_to_cpu_16(v.src.port_be) != sr.local[j])
            return fail("wrong source address/port for the receiving leg");
        rte_ether_addr want = remote_mac(j);
        if (!rte_is_same_ether_addr(&v.dst_mac, &want) ||
            !rte_is_same_ether_addr(&v.src_mac, &dp->ifc(ifc).mac))
            return fail("wrong MAC addresses");
        uint8_t* rtp = v.payload;
        size_t len = v.len;
        if (m.s != crypto::suite::none) {
            const uint64_t key = static_cast<uint64_t>(s) * 256 + j;
            auto it = check_ctx.find(key);
            std::unique_ptr<crypto::srtp_context> tmp;
            crypto::srtp_context* c = nullptr;
            if (it != check_ctx.end()) {
                c = it->second.get();
            } else if (lat_on) {
                // No key derivation while latency is measured: it would
                // stall the sink and show up as the relay's latency.
                checked--;
                return;
            } else {
                crypto::key_material km;
                make_key(km, m.s, key_id(m, s, j, 1));
                std::string err;
                tmp = crypto::srtp_context::create(km, crypto::engine::boringssl, err);
                if (!tmp)
                    return fail("cannot create check context: " + err);
                c = tmp.get();
                if (check_ctx.size() < 4096)
                    c = (check_ctx[key] = std::move(tmp)).get();
            }
            size_t out = 0;
            crypto::status st = c->unprotect_rtp(rtp, len, &out);
            if (st != crypto::status::ok)
                return fail(std::string("receiving leg's key does not decrypt the output: ") +
                            crypto::status_name(st));
            len = out;
        }
        const unsigned sj = m.fan > 1 ? 0 : 1 - j;
        const uint32_t ssrc = static_cast<uint32_t>(splitmix(static_cast<uint64_t>(s) * 16 + sj));
        uint32_t got_ssrc;
        memcpy(&got_ssrc, rtp + 8, 4);
        if (len != 12 + payload || rte_be_to_cpu_32(got_ssrc) != ssrc)
            return fail("RTP length or SSRC wrong for the sending leg");
        const uint16_t seq = static_cast<uint16_t>(rtp[2] << 8 | rtp[3]);
        uint32_t mark;
        memcpy(&mark, rtp + 12, 4);
        if (mark != (ssrc ^ seq) || memcmp(rtp + 16, pattern + 4, payload - 4) != 0)
            return fail("payload changed");
    }

    unsigned sink()
    {
        unsigned n = 0;
        rte_mbuf* b[64];
        const uint64_t now = rte_rdtsc();
        for (unsigned i = 0; i < nifaces; i++) {
            for (rte_ring* r : ports[i]->tx) {
                unsigned k = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(b), 64, nullptr);
                if (k == 0)
                    continue;
                for (unsigned x = 0; x < k; x++) {
                    out_bytes += rte_pktmbuf_pkt_len(b[x]);
                    if (lat_on && lat.size() < (8u << 20) && stamp(b[x]) != 0)
                        lat.push_back(static_cast<uint32_t>(now - stamp(b[x])));
                    if (tag(b[x]) != 0)
                        create_lat.push_back(static_cast<uint32_t>(now - tag(b[x])));
                    // Checked contexts must follow every leg's ROC, so the
                    // checks go on while latency is measured (check() then
                    // skips legs whose context it would have to create).
                    if (((sink_seen + x) & (sample_every - 1)) == 0 || sink_seen + x < 64)
                        check(b[x], i);
                }
                sink_seen += k;
                rte_pktmbuf_free_bulk(b, k);
                n += k;
            }
        }
        received += n;
        return n;
    }

    uint64_t drops_total() const
    {
        uint64_t d = 0;
        for (unsigned i = 0; i < dp::n_drops; i++)
            d += dp::read(dp->wk(0).stats.drops[i]);
        return d;
    }
    std::string drops_str() const
    {
        std::string s;
        for (unsigned i = 0; i < dp::n_drops; i++) {
            uint64_t v = dp::read(dp->wk(0).stats.drops[i]);
            if (v)
                s += std::string(s.empty() ? "" : ",") + dp::drop_name(static_cast<dp::drop>(i)) +
                     "=" + std::to_string(v);
        }
        return s;
    }
    unsigned rx_pending() const
    {
        unsigned n = 0;
        for (auto& p : ports)
            n += rte_ring_count(p->rx);
        return n;
    }
    // Waits until every packet sent is accounted for (received or dropped),
    // or the worker is idle for a while.
    void settle()
    {
        const uint64_t end0 = rte_rdtsc() + hz;
        while (rte_rdtsc() < end0 && received + drops_total() < sent * m.fan) {
            sink();
            sm->poll();
        }
        const uint64_t end = rte_rdtsc() + hz / 20;
        uint64_t last = ~0ull;
        unsigned quiet = 0;
        while (rte_rdtsc() < end) {
            unsigned k = sink();
            const uint64_t rx = dp::read(wk().stats.rx_pkts);
            if (k == 0 && rx_pending() == 0 && rx == last) {
                if (++quiet > 2000)
                    return;
            } else {
                quiet = 0;
            }
            last = rx;
            if ((quiet & 63) == 0) {
                sm->poll();
                nm->poll();
            }
        }
    }

    struct snap {
        uint64_t busy, rx, fwd, tx, drops, sent, received, bytes, tsc;
    };
    snap take()
    {
        auto& s = wk().stats;
        return {dp::read(s.busy_tsc), dp::read(s.rx_pkts), dp::read(s.fwd_pkts),
                dp::read(s.tx_pkts), drops_total(), sent, received, out_bytes, rte_rdtsc()};
    }
    phase_result diff(const snap& a, const snap& b, uint64_t t0, uint64_t t1)
    {
        phase_result r;
        r.seconds = secs(t1 - t0);
        r.sent = b.sent - a.sent;
        r.received = b.received - a.received;
        r.drops = b.drops - a.drops;
        r.loss = static_cast<int64_t>(r.sent * m.fan) - static_cast<int64_t>(r.received) -
                 static_cast<int64_t>(r.drops);
        const uint64_t out = b.tx - a.tx;
        r.mpps = static_cast<double>(r.received) / r.seconds / 1e6;
        r.in_mpps = static_cast<double>(b.rx - a.rx) / r.seconds / 1e6;
        r.gbps = static_cast<double>(b.bytes - a.bytes) * 8 / r.seconds / 1e9;
        r.cpp = out ? static_cast<double>(b.busy - a.busy) / static_cast<double>(out) : 0;
        r.cap_mpps = r.cpp > 0 ? static_cast<double>(hz) / r.cpp / 1e6 : 0;
        return r;
    }

    // Capacity: fill the RX rings with the worker stopped, start it, drain.
    phase_result drain_phase()
    {
        snap a{}, b{};
        uint64_t busy_time = 0;
        const uint64_t end = rte_rdtsc() + static_cast<uint64_t>(o.phase_s * static_cast<double>(hz));
        unsigned reps = 0;
        uint64_t tot_rx = 0, tot_busy = 0, tot_out = 0, tot_bytes = 0, tot_sent = 0, tot_drops = 0;
        struct rep {
            double cpp, mpps, in_mpps, gbps;
        };
        std::vector<rep> reps_v;
        do {
            stop();
            const unsigned want = o.drain_pkts / m.fan;
            unsigned filled = 0;
            // Round-robin over the interfaces that have sending legs (with
            // fan-out, the receivers' interfaces have none).
            for (unsigned round = 0, idle = 0; filled < want && idle < nifaces; round++) {
                const unsigned ifc = round % nifaces;
                unsigned k = gen(ifc, std::min(32u, want - filled), 0);
                idle = k == 0 ? idle + 1 : 0;
                filled += k;
            }
            a = take();
            perf_ctl("enable\n");
            const uint64_t t0 = rte_rdtsc();
            start();
            uint64_t tl = t0;
            const uint64_t expect = static_cast<uint64_t>(filled) * m.fan;
            uint64_t got = 0;
            const uint64_t lim = t0 + hz;
            while (got + (drops_total() - a.drops) < expect && rte_rdtsc() < lim) {
                unsigned k = sink();
                if (k) {
                    got += k;
                    tl = rte_rdtsc();
                }
            }
            b = take();
            perf_ctl("disable\n");
            busy_time += tl - t0;
            tot_rx += b.rx - a.rx;
            tot_busy += b.busy - a.busy;
            tot_out += b.tx - a.tx;
            tot_bytes += b.bytes - a.bytes;
            tot_sent += b.sent - a.sent;
            tot_drops += b.drops - a.drops;
            if (b.tx > a.tx && tl > t0) {
                const double s = secs(tl - t0);
                reps_v.push_back({static_cast<double>(b.busy - a.busy) / static_cast<double>(b.tx - a.tx),
                                  static_cast<double>(b.tx - a.tx) / s / 1e6,
                                  static_cast<double>(b.rx - a.rx) / s / 1e6,
                                  static_cast<double>(b.bytes - a.bytes) * 8 / s / 1e9});
            }
            reps++;
        } while (rte_rdtsc() < end && reps < 64);
        settle();
        phase_result r;
        r.seconds = secs(busy_time);
        r.sent = tot_sent;
        r.received = tot_out; // tx_pkts of the worker; the sink counted them too
        r.drops = tot_drops;
        r.reps = reps;
        // The median repetition: on a shared (virtual) machine a repetition
        // during which the worker's vCPU was descheduled counts those cycles
        // as its own; the median is robust to a few of those, the mean is not.
        if (!reps_v.empty()) {
            std::sort(reps_v.begin(), reps_v.end(),
                      [](const rep& x, const rep& y) { return x.cpp < y.cpp; });
            const rep& med = reps_v[reps_v.size() / 2];
            r.mpps = med.mpps;
            r.in_mpps = med.in_mpps;
            r.gbps = med.gbps;
            r.cpp = med.cpp;
            r.cpp_best = reps_v.front().cpp;
        }
        r.cpp_mean = tot_out ? static_cast<double>(tot_busy) / static_cast<double>(tot_out) : 0;
        r.cap_mpps = r.cpp > 0 ? static_cast<double>(hz) / r.cpp / 1e6 : 0;
        return r;
    }

    // Generator as fast as it can (rate = 0) or paced at `rate` pps.
    phase_result run_phase(double seconds, double rate, bool measure_lat)
    {
        // No reallocation and no page faults while measuring.
        lat.resize(8u << 20);
        lat.clear();
        lat_on = measure_lat;
        const snap a = take();
        const uint64_t t0 = rte_rdtsc();
        const uint64_t end = t0 + static_cast<uint64_t>(seconds * static_cast<double>(hz));
        uint64_t sent0 = sent;
        unsigned ifc = 0, it = 0;
        const double per_tsc = rate / static_cast<double>(hz);
        const uint64_t stall_tsc = hz / 50000; // 20 us
        double forgiven = 0;
        uint64_t prev = t0, max_gap = 0;
        unsigned stalls = 0;
        for (uint64_t now = t0; now < end; now = rte_rdtsc()) {
            if (now - prev > stall_tsc)
                stalls++;
            max_gap = std::max(max_gap, now - prev);
            prev = now;
            unsigned n = 32;
            if (rate > 0) {
                double due = static_cast<double>(now - t0) * per_tsc -
                             static_cast<double>(sent - sent0) - forgiven;
                // Behind by more than a few bursts means the main lcore was
                // stalled (the worker has twice the capacity at 50 %): drop
                // the debt instead of bursting it out at far above the rate.
                if (due > 128) {
                    forgiven += due - 32;
                    due = 32;
                }
                n = due >= 32 ? 32 : static_cast<unsigned>(std::max(0.0, due));
                if (n > 8 && due < 32)
                    n = 8; // small bursts at moderate rates: less queueing than a NIC's
            }
            // A NIC RX ring holds ~4k descriptors: never queue more than that
            // (and never starve the mempool the worker copies from).
            if (n > 0 && rte_ring_count(ports[ifc]->rx) < 4096) {
                gen(ifc, n, measure_lat ? 1 : 0);
                ifc = (ifc + 1) % nifaces;
            }
            sink();
            if ((++it & 1023) == 0 && !measure_lat) {
                sm->poll();
                nm->poll();
            }
        }
        const uint64_t t1 = rte_rdtsc();
        settle();
        lat_on = false;
        snap b = take();
        phase_result r = diff(a, b, t0, t1);
        r.mpps = static_cast<double>(r.received) / r.seconds / 1e6;
        r.stalls = stalls;
        r.max_gap_us = secs(max_gap) * 1e6;
        return r;
    }
};

// ---------------------------------------------------------------- results --
json results = json::array();
json baselines = json::array();
json control_j = json::object();
json crypto_j = json::array();
json turn_j = json::array(); // bench_turn::run_mode records (turn_load.cc)
json rss_j = json::array();  // bench_rss::run_mode records (rss_modes.cc)
json turn_alloc_j;           // bench_turn::run_allocs
bench_turn::options turn_opts(const options& o)
{
    bench_turn::options t;
    t.payloads = o.payloads;
    t.phase_s = o.phase_s;
    t.drain_pkts = o.drain_pkts;
    t.hz = hz;
    return t;
}
std::vector<std::string> errors;

json phase_json(const phase_result& r)
{
    return {{"mpps", r.mpps},        {"in_mpps", r.in_mpps}, {"gbps", r.gbps},
            {"cycles_per_packet", r.cpp}, {"capacity_mpps", r.cap_mpps}, {"sent", r.sent},
            {"received", r.received}, {"drops", r.drops}, {"loss", r.loss},
            {"seconds", r.seconds}, {"repetitions", r.reps}, {"main_lcore_stalls", r.stalls},
            {"main_lcore_max_gap_us", r.max_gap_us}, {"cycles_per_packet_best", r.cpp_best},
            {"cycles_per_packet_mean", r.cpp_mean}};
}

void run_scenario(const options& o, const std::string& mode, unsigned legs, unsigned only_payload = 0)
{
    auto sc = std::make_unique<scenario>(o);
    if (!mode_of(mode, sc->m)) {
        errors.push_back("unknown mode " + mode);
        return;
    }
    const unsigned mbufs = std::max(65535u, o.drain_pkts * 2 + 65535);
    fprintf(stderr, "isar-bench: %s, %u legs: creating sessions...\n", mode.c_str(), legs);
    const bool ok = sc->setup(legs, mbufs);
    const unsigned total_legs = sc->nsess * (sc->m.fan > 1 ? sc->m.fan + 1 : 2);
    const std::vector<unsigned> payloads =
            only_payload != 0 ? std::vector<unsigned>{only_payload} : o.payloads;
    for (unsigned payload : payloads) {
        json rec{{"mode", mode}, {"payload", payload}, {"legs", legs},
                 {"sessions", sc->nsess}, {"legs_installed", total_legs},
                 {"interfaces", sc->nifaces}};
        if (!ok) {
            rec["error"] = sc->error;
            errors.push_back(mode + "/" + std::to_string(legs) + ": " + sc->error);
            results.push_back(rec);
            fprintf(stderr, "isar-bench:   ERROR %s\n", sc->error.c_str());
            continue;
        }
        sc->payload = payload;
        sc->checked = sc->check_fail = 0;
        sc->first_fail.clear();
        // check contexts persist across payloads: they track each leg's ROC
        // warm-up (every leg touched at least once where feasible)
        sc->run_phase(std::min(0.1, o.phase_s), 0, false);
        phase_result cap = sc->drain_phase();
        phase_result sus, l50, l90;
        percentiles p50{}, p90{};
        if (!o.drain_only) {
            sus = sc->run_phase(o.phase_s, 0, false);
            const double max_rate = cap.in_mpps * 1e6;
            l50 = sc->run_phase(o.phase_s, max_rate * 0.5, true);
            p50 = pct(sc->lat, hz);
            l90 = sc->run_phase(o.phase_s, max_rate * 0.9, true);
            p90 = pct(sc->lat, hz);
        }
        sc->settle();
        const int64_t loss = sus.loss + l50.loss + l90.loss;
        rec["mpps_per_core"] = cap.mpps;
        rec["capacity_mpps"] = cap.cap_mpps;
        rec["in_mpps"] = cap.in_mpps;
        rec["gbps"] = cap.gbps;
        rec["cycles_per_packet"] = cap.cpp;
        rec["cycles_per_input_packet"] = cap.cpp * sc->m.fan;
        rec["sustained_mpps"] = sus.mpps;
        rec["sustained_in_mpps"] = sus.in_mpps;
        rec["p50_us"] = p50.p50;
        rec["p99_us"] = p50.p99;
        rec["p999_us"] = p50.p999;
        rec["offered_mpps_50"] = l50.in_mpps;
        rec["main_lcore_stalls_50"] = l50.stalls;
        rec["main_lcore_max_gap_us_50"] = l50.max_gap_us;
        rec["p50_us_90"] = p90.p50;
        rec["p99_us_90"] = p90.p99;
        rec["p999_us_90"] = p90.p999;
        rec["offered_mpps_90"] = l90.in_mpps;
        rec["loss"] = loss;
        rec["drops"] = sc->drops_str();
        rec["checked"] = sc->checked;
        rec["check_failures"] = sc->check_fail;
        rec["mem_bytes_per_leg"] =
                static_cast<double>(sc->mem_rss + sc->mem_dpdk) / static_cast<double>(total_legs);
        rec["mem_heap_bytes"] = sc->mem_rss;    // C++ heap: session records, SRTP contexts
        rec["mem_dpdk_bytes"] = sc->mem_dpdk;   // DPDK heap: legs, flow table
        rec["setup_s"] = sc->create_s;
        if (sc->m.v6()) // control's session.create takes IPv4 legs only on this branch
            rec["sessions_via"] = "flow commands";
        rec["phases"] = {{"drain", phase_json(cap)}, {"sustained", phase_json(sus)},
                         {"lat50", phase_json(l50)}, {"lat90", phase_json(l90)}};
        std::string err;
        if (sc->check_fail)
            err = "output check failed (" + std::to_string(sc->check_fail) + "/" +
                  std::to_string(sc->checked) + "): " + sc->first_fail;
        else if (sc->checked == 0)
            err = "no output to check";
        else if (loss != 0 || cap.drops != 0 || sc->drops_total() != 0)
            err = "packets lost or dropped: loss=" + std::to_string(loss) + " drops=" +
                  sc->drops_str();
        else if (sc->gen_fail)
            err = sc->error;
        if (!err.empty()) {
            rec = json{{"mode", rec["mode"]}, {"payload", payload}, {"legs", legs}, {"error", err}};
            errors.push_back(mode + "/" + std::to_string(legs) + "/" + std::to_string(payload) +
                             ": " + err);
            fprintf(stderr, "isar-bench:   %4u B ERROR %s\n", payload, err.c_str());
        } else {
            fprintf(stderr,
                    "isar-bench:   %4u B  %6.2f Mpps (cap %6.2f) %6.1f cyc/pkt %6.2f Gbit/s  "
                    "p99 %.1f/%.1f us  mem/leg %.0f B  checked %lu\n",
                    payload, cap.mpps, cap.cap_mpps, cap.cpp, cap.gbps, p50.p99, p90.p99,
                    rec["mem_bytes_per_leg"].get<double>(),
                    static_cast<unsigned long>(sc->checked));
        }
        results.push_back(rec);
    }
}

// ------------------------------------------------------ control plane bench --
void run_control(const options& o, const std::string& mode, unsigned n)
{
    scenario sc(o);
    mode_of(mode, sc.m);
    sc.payload = 160;
    const unsigned base_legs = 1000;
    sc.extra_legs = n * 2 + 64;
    if (!sc.setup(base_legs, 65535)) {
        errors.push_back("control: " + sc.error);
        return;
    }
    // Background traffic: ~1 Mpps over the existing legs while creating.
    const unsigned per_sess = 2;
    std::vector<uint64_t> ack_tsc;
    std::vector<unsigned> acked;
    unsigned next = 0, done = 0, inflight = 0, failed = 0;
    const unsigned first = sc.nsess;
    sc.sess.resize(first + n);
    sc.sess_at[0].resize(first + n + 2, UINT32_MAX);
    const uint64_t t0 = rte_rdtsc();
    const double rate = 1e6 / static_cast<double>(hz);
    uint64_t gsent = 0;
    std::vector<std::string> lines;
    lines.reserve(n);
    for (unsigned i = 0; i < n; i++)
        lines.push_back(sc.create_line(first + i, per_sess, 0, first + i));
    const uint64_t tl = rte_rdtsc();
    while (done < n) {
        while (inflight < 256 && next < n) {
            const unsigned s = first + next;
            inflight++;
            sc.cmds->handle_line(lines[next++], [&, s](const json& r) {
                inflight--;
                done++;
                if (r.contains("error")) {
                    if (failed++ == 0)
                        sc.error = r.dump();
                    return;
                }
                unsigned j = 0;
                for (const auto& l : r.at("legs")) {
                    const std::string loc = l.at("local").get<std::string>();
                    sc.sess[s].local[j++] =
                            static_cast<uint16_t>(std::stoul(loc.substr(loc.rfind(':') + 1)));
                }
                sc.sess[s].nlegs = per_sess;
                sc.sess_at[0][s] = s;
                ack_tsc.push_back(rte_rdtsc());
                acked.push_back(s);
            });
        }
        sc.sm->poll();
        // First packet right after each acknowledgement (every 16th session).
        while (!acked.empty()) {
            const unsigned s = acked.back();
            const uint64_t at = ack_tsc.back();
            acked.pop_back();
            ack_tsc.pop_back();
            if (s % 16 != 0)
                continue;
            sender x;
            x.sess = s;
            x.leg = 0;
            x.ifc = 0;
            x.dst_port_be = rte_cpu_to_be_16(sc.sess[s].local[0]);
            x.src_port_be = rte_cpu_to_be_16(static_cast<uint16_t>(remote_port_base + s));
            x.src_ip_be = rte_cpu_to_be_32(remote_ip(0, 0));
            x.ssrc = static_cast<uint32_t>(splitmix(static_cast<uint64_t>(s) * 16));
            if (sc.m.s != crypto::suite::none) {
                crypto::key_material km;
                make_key(km, sc.m.s, key_id(sc.m, s, 0, 0));
                x.ctx = crypto::srtp_context::create(km, crypto::engine::auto_select, sc.error);
            }
            rte_mbuf* mb = rte_pktmbuf_alloc(sc.dp->pool());
            if (mb && sc.build(mb, x)) {
                stamp(mb) = 0;
                tag(mb) = at;
                if (rte_ring_sp_enqueue(sc.ports[0]->rx, mb) == 0)
                    sc.sent++;
                else
                    rte_pktmbuf_free(mb);
            } else if (mb) {
                rte_pktmbuf_free(mb);
            }
        }
        // Catch up with the background rate in bursts (bounded per loop:
        // the creates must go on too).
        double due = static_cast<double>(rte_rdtsc() - tl) * rate - static_cast<double>(gsent);
        for (int b = 0; b < 16 && due >= 8; b++) {
            const unsigned g = sc.gen(0, due >= 32 ? 32 : 8, 0);
            if (g == 0)
                break;
            gsent += g;
            due -= g;
        }
        for (int b = 0; b < 16 && sc.sink() > 0; b++) {
        }
    }
    const double el = secs(rte_rdtsc() - tl);
    sc.settle();
    (void)t0;
    percentiles cl = pct(sc.create_lat, hz);
    json j{{"mode", mode},
           {"sessions", n},
           {"legs", n * per_sess},
           {"creates_per_s", static_cast<double>(n) / el},
           {"legs_per_s", static_cast<double>(n * per_sess) / el},
           {"failed", failed},
           {"background_mpps", static_cast<double>(gsent) / el / 1e6},
           {"first_packet_p50_us", cl.p50},
           {"first_packet_p99_us", cl.p99},
           {"first_packet_samples", cl.n},
           {"check_failures", sc.check_fail}};
    if (sc.check_fail || failed || cl.n == 0) {
        j["error"] = failed ? "creates failed: " + sc.error : cl.n == 0 ? "no first packet arrived" : sc.first_fail;
        errors.push_back("control/" + mode + ": " + j["error"].get<std::string>());
    }
    fprintf(stderr,
            "isar-bench: control %s: %.0f session creates/s (%u sessions, 2 legs each) while "
            "forwarding %.2f Mpps; create-ack -> first packet forwarded p50 %.1f us p99 %.1f us\n",
            mode.c_str(), j["creates_per_s"].get<double>(), n, j["background_mpps"].get<double>(),
            cl.p50, cl.p99);
    control_j[mode] = j;
}

// ---------------------------------------------------- baseline: forwarder --
struct fwd_state {
    uint16_t port;
    std::atomic<bool> stop{false};
    uint64_t busy = 0, pkts = 0;
};
int fwd_main(void* a)
{
    auto* f = static_cast<fwd_state*>(a);
    rte_mbuf* b[32];
    while (!f->stop.load(std::memory_order_relaxed)) {
        const uint64_t t = rte_rdtsc();
        uint16_t n = rte_eth_rx_burst(f->port, 0, b, 32);
        if (n == 0)
            continue;
        for (uint16_t i = 0; i < n; i++) {
            auto* e = rte_pktmbuf_mtod(b[i], rte_ether_hdr*);
            rte_ether_addr t2 = e->src_addr;
            e->src_addr = e->dst_addr;
            e->dst_addr = t2;
        }
        uint16_t s = rte_eth_tx_burst(f->port, 0, b, n);
        if (s < n)
            rte_pktmbuf_free_bulk(b + s, n - s);
        f->pkts += s;
        f->busy += rte_rdtsc() - t;
    }
    return 0;
}

void run_forwarder(const options& o, unsigned payload)
{
    rte_mempool* pool = rte_pktmbuf_pool_create(("fwdp" + std::to_string(payload)).c_str(),
                                                o.drain_pkts + 8191, 256, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
    auto pp = std::make_unique<ring_port>("fw" + std::to_string(port_seq++), 1, 1u << 17, 1u << 16);
    ring_port& p = *pp;
    rte_eth_conf conf{};
    rte_eth_dev_configure(static_cast<uint16_t>(p.port), 1, 1, &conf);
    rte_eth_rx_queue_setup(static_cast<uint16_t>(p.port), 0, 512, rte_socket_id(), nullptr, pool);
    rte_eth_tx_queue_setup(static_cast<uint16_t>(p.port), 0, 512, rte_socket_id(), nullptr);
    rte_eth_dev_start(static_cast<uint16_t>(p.port));
    unsigned lcore = rte_get_next_lcore(-1, 1, 0);
    uint8_t frame[1500] = {};
    const unsigned len = 42 + 12 + payload;
    frame[12] = 0x08;
    frame[14] = 0x45;
    frame[42] = 0x80;
    uint64_t busy = 0, pkts = 0, wall = 0;
    const uint64_t end = rte_rdtsc() + static_cast<uint64_t>(o.phase_s * static_cast<double>(hz));
    uint16_t seq = 0;
    do {
        rte_mbuf* b[32];
        unsigned filled = 0;
        while (filled < o.drain_pkts) {
            if (rte_pktmbuf_alloc_bulk(pool, b, 32) != 0)
                break;
            for (auto* m : b) {
                auto* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(len)));
                memcpy(d, frame, len);
                d[44] = static_cast<uint8_t>(++seq >> 8);
                d[45] = static_cast<uint8_t>(seq);
            }
            filled += rte_ring_sp_enqueue_burst(p.rx, reinterpret_cast<void**>(b), 32, nullptr);
        }
        fwd_state f;
        f.port = static_cast<uint16_t>(p.port);
        const uint64_t t0 = rte_rdtsc();
        rte_eal_remote_launch(fwd_main, &f, lcore);
        uint64_t got = 0, tl = t0;
        while (got < filled && rte_rdtsc() < t0 + hz) {
            unsigned k = rte_ring_sc_dequeue_burst(p.tx[0], reinterpret_cast<void**>(b), 32, nullptr);
            if (k) {
                rte_pktmbuf_free_bulk(b, k);
                got += k;
                tl = rte_rdtsc();
            }
        }
        f.stop = true;
        rte_eal_wait_lcore(lcore);
        busy += f.busy;
        pkts += f.pkts;
        wall += tl - t0;
    } while (rte_rdtsc() < end);
    rte_eth_dev_stop(static_cast<uint16_t>(p.port));
    const double cpp = static_cast<double>(busy) / static_cast<double>(pkts);
    json j{{"name", "dpdk-forwarder"},
           {"payload", payload},
           {"mpps_per_core", static_cast<double>(pkts) / secs(wall) / 1e6},
           {"capacity_mpps", static_cast<double>(hz) / cpp / 1e6},
           {"cycles_per_packet", cpp}};
    fprintf(stderr, "isar-bench: baseline dpdk-forwarder %u B: %.2f Mpps (cap %.2f), %.1f cyc/pkt\n",
            payload, j["mpps_per_core"].get<double>(), j["capacity_mpps"].get<double>(), cpp);
    baselines.push_back(j);
    pp.reset(); // removes the port, frees queued mbufs
    rte_mempool_free(pool);
}

// ----------------------------------------------- baseline: kernel UDP relay --
void run_kernel_relay(const options& o, unsigned payload)
{
    auto mk = [](uint16_t port) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        int sz = 16 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(port);
        if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
            close(fd);
            return -1;
        }
        return fd;
    };
    const uint16_t base = static_cast<uint16_t>(41000 + (getpid() % 1000) * 3);
    int gfd = mk(base), rfd = mk(base + 1), sfd = mk(base + 2);
    if (gfd < 0 || rfd < 0 || sfd < 0) {
        errors.push_back("kernel relay: cannot bind loopback UDP sockets");
        return;
    }
    timeval tv{0, 100000};
    setsockopt(rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in to_relay{}, to_sink{};
    to_relay.sin_family = to_sink.sin_family = AF_INET;
    to_relay.sin_addr.s_addr = to_sink.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to_relay.sin_port = htons(base + 1);
    to_sink.sin_port = htons(base + 2);
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> relayed{0};
    double relay_cpu = 0;
    const unsigned sz = 12 + payload;
    std::thread relay([&] {
        cpu_set_t cs;
        CPU_ZERO(&cs);
        CPU_SET(std::min<unsigned>(1, std::thread::hardware_concurrency() - 1), &cs);
        pthread_setaffinity_np(pthread_self(), sizeof(cs), &cs);
        constexpr unsigned B = 32;
        static uint8_t buf[B][2048];
        mmsghdr msgs[B];
        iovec iov[B];
        timespec c0, c1;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
        while (!stop.load(std::memory_order_relaxed)) {
            for (unsigned i = 0; i < B; i++) {
                iov[i] = {buf[i], sizeof(buf[i])};
                msgs[i] = {};
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            int n = recvmmsg(rfd, msgs, B, 0, nullptr);
            if (n <= 0)
                continue;
            for (int i = 0; i < n; i++) {
                iov[i].iov_len = msgs[i].msg_len;
                msgs[i].msg_hdr.msg_name = &to_sink;
                msgs[i].msg_hdr.msg_namelen = sizeof(to_sink);
            }
            int s = sendmmsg(rfd, msgs, static_cast<unsigned>(n), 0);
            if (s > 0)
                relayed.fetch_add(static_cast<uint64_t>(s), std::memory_order_relaxed);
        }
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
        relay_cpu = static_cast<double>(c1.tv_sec - c0.tv_sec) +
                    static_cast<double>(c1.tv_nsec - c0.tv_nsec) * 1e-9;
    });
    constexpr unsigned B = 32;
    static uint8_t gb[B][2048], sb[B][2048];
    mmsghdr gm[B], sm[B];
    iovec gi[B], si[B];
    uint64_t sent = 0, got = 0;
    uint16_t seq = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const auto tend = t0 + std::chrono::duration<double>(std::max(0.5, o.phase_s * 2));
    while (std::chrono::steady_clock::now() < tend && sent < 20000000) {
        for (unsigned i = 0; i < B; i++) {
            gb[i][0] = 0x80;
            gb[i][2] = static_cast<uint8_t>(++seq >> 8);
            gb[i][3] = static_cast<uint8_t>(seq);
            gi[i] = {gb[i], sz};
            gm[i] = {};
            gm[i].msg_hdr.msg_iov = &gi[i];
            gm[i].msg_hdr.msg_iovlen = 1;
            gm[i].msg_hdr.msg_name = &to_relay;
            gm[i].msg_hdr.msg_namelen = sizeof(to_relay);
        }
        int s = sendmmsg(gfd, gm, B, MSG_DONTWAIT);
        if (s > 0)
            sent += static_cast<uint64_t>(s);
        for (;;) {
            for (unsigned i = 0; i < B; i++) {
                si[i] = {sb[i], sizeof(sb[i])};
                sm[i] = {};
                sm[i].msg_hdr.msg_iov = &si[i];
                sm[i].msg_hdr.msg_iovlen = 1;
            }
            int r = recvmmsg(sfd, sm, B, MSG_DONTWAIT, nullptr);
            if (r <= 0)
                break;
            got += static_cast<uint64_t>(r);
        }
    }
    const double el =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stop = true;
    relay.join();
    close(gfd);
    close(rfd);
    close(sfd);
    const double mpps_core = static_cast<double>(relayed.load()) / relay_cpu / 1e6;
    json j{{"name", "kernel-udp-relay"},
           {"payload", payload},
           {"mpps_per_core", mpps_core},
           {"achieved_mpps", static_cast<double>(relayed.load()) / el / 1e6},
           {"relay_cpu_s", relay_cpu},
           {"sent", sent},
           {"relayed", relayed.load()},
           {"received", got}};
    fprintf(stderr,
            "isar-bench: baseline kernel-udp-relay %u B: %.3f Mpps per relay core (%.3f Mpps "
            "achieved, relay thread CPU %.2f s)\n",
            payload, mpps_core, j["achieved_mpps"].get<double>(), relay_cpu);
    baselines.push_back(j);
}

// ----------------------------------------------------- baseline: raw crypto --
void run_crypto(const options& o)
{
    using crypto::engine;
    const crypto::suite suites[] = {crypto::suite::aes_cm_128_hmac_sha1_80,
                                    crypto::suite::aead_aes_128_gcm};
    const engine engines[] = {engine::ipsec_mb, engine::boringssl, engine::libsrtp};
    crypto::prepare_thread();
    for (auto s : suites) {
        for (unsigned payload : o.payloads) {
            for (auto e : engines) {
                crypto::key_material k1, k2;
                make_key(k1, s, 11);
                make_key(k2, s, 12);
                std::string err;
                auto snd = crypto::srtp_context::create(k1, e, err);
                auto rin = crypto::srtp_context::create(k1, e, err);
                auto rout = crypto::srtp_context::create(k2, e, err);
                auto vin = crypto::srtp_context::create(k1, e, err);
                if (!snd || !rin || !rout || !vin)
                    continue;
                constexpr unsigned N = 512;
                static uint8_t pk[N][1600], w[N][1600];
                size_t plen[N];
                uint16_t seq = 0;
                uint64_t cyc = 0, vcyc = 0, n = 0;
                bool bad = false;
                const uint64_t end =
                        rte_rdtsc() + static_cast<uint64_t>(std::min(0.15, o.phase_s / 2) *
                                                            static_cast<double>(hz));
                do {
                    for (unsigned i = 0; i < N; i++) {
                        uint8_t* p = pk[i];
                        memset(p, 0x5a, 12 + payload);
                        p[0] = 0x80;
                        p[1] = 0;
                        ++seq;
                        p[2] = static_cast<uint8_t>(seq >> 8);
                        p[3] = static_cast<uint8_t>(seq);
                        p[8] = 0x12;
                        if (snd->protect_rtp(p, 12 + payload, 1600, &plen[i]) != crypto::status::ok)
                            bad = true;
                        memcpy(w[i], p, plen[i]);
                    }
                    uint64_t t = rte_rdtsc();
                    for (unsigned i = 0; i < N; i++) {
                        size_t l = 0, l2 = 0;
                        if (rin->unprotect_rtp(w[i], plen[i], &l) != crypto::status::ok ||
                            rout->protect_rtp(w[i], l, 1600, &l2) != crypto::status::ok)
                            bad = true;
                    }
                    cyc += rte_rdtsc() - t;
                    t = rte_rdtsc();
                    for (unsigned i = 0; i < N; i++)
                        if (vin->verify_rtp(pk[i], plen[i]) != crypto::status::ok)
                            bad = true;
                    vcyc += rte_rdtsc() - t;
                    n += N;
                } while (rte_rdtsc() < end && !bad);
                const double cpp = static_cast<double>(cyc) / static_cast<double>(n);
                const double vcpp = static_cast<double>(vcyc) / static_cast<double>(n);
                json j{{"suite", std::string(crypto::suite_name(s))},
                       {"engine", crypto::engine_name(e)},
                       {"payload", payload},
                       {"transcrypt_cycles", cpp},
                       {"transcrypt_mpps", static_cast<double>(hz) / cpp / 1e6},
                       {"verify_cycles", vcpp},
                       {"verify_mpps", static_cast<double>(hz) / vcpp / 1e6},
                       {"auto", crypto::auto_engine(s) == e}};
                if (bad)
                    j["error"] = "crypto round trip failed";
                crypto_j.push_back(j);
                fprintf(stderr,
                        "isar-bench: raw crypto %s %s %u B: decrypt+encrypt %.0f cyc (%.2f Mpps), "
                        "verify %.0f cyc%s\n",
                        std::string(crypto::suite_name(s)).c_str(), crypto::engine_name(e), payload,
                        cpp, j["transcrypt_mpps"].get<double>(), vcpp,
                        crypto::auto_engine(s) == e ? " [auto]" : "");
                baselines.push_back({{"name", std::string("raw-crypto-") + crypto::engine_name(e) +
                                                      "-" + std::string(crypto::suite_name(s))},
                                     {"payload", payload},
                                     {"mpps_per_core", j["transcrypt_mpps"]},
                                     {"cycles_per_packet", cpp}});
            }
        }
    }
}

std::string cpu_model()
{
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("model name", 0) == 0)
            return line.substr(line.find(':') + 2);
    return "?";
}

void usage()
{
    fprintf(stderr,
            "usage: isar-bench [--smoke] [--legs 1,1000,100000] [--modes plain,srtp-pass,...]\n"
            "                  [--payloads 160,1200] [--extra MODE:LEGS ...] [--phase S]\n"
            "                  [--drain N] [--drain-only] [--perf-ctl FIFO] [--no-baselines] [--no-control]\n"
            "                  [--memory-note TEXT] [--out FILE.json] [-- EAL args]\n"
            "                  [--turn-allocs N]\n"
            "       isar-bench --soak N [--soak-seconds S] [--soak-warmup N] [--soak-rate PPS]\n"
            "                  [--soak-inject-leak] [-- EAL args]\n"
            "modes: plain plain6 bridge46 srtp-pass transcrypt-cm80 transcrypt-gcm128 fanout10 fanout199\n"
            "       turn-channeldata turn-indication (legs = allocations)\n"
            "       rss-4tuple rss-dstport (2 workers, software RSS: bench/load/rss_modes.h)\n");
}

} // namespace

int main(int argc, char** argv)
{
    options o;
    std::vector<std::string> eal{"isar-bench"};
    bool eal_given = false;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
                exit(2);
            }
            return argv[++i];
        };
        if (a == "--smoke") {
            o.smoke = true;
            o.legs = {1, 100};
            o.payloads = {160};
            o.phase_s = 0.05;
            o.drain_pkts = 8192;
            o.turn_allocs = 500;
        } else if (a == "--turn-allocs") {
            o.turn_allocs = static_cast<unsigned>(std::stoul(val()));
        } else if (a == "--legs") {
            o.legs = parse_list(val());
        } else if (a == "--modes") {
            o.modes = parse_slist(val());
        } else if (a == "--payloads") {
            o.payloads = parse_list(val());
        } else if (a == "--extra") {
            std::string v = val();
            auto c = v.find(':');
            const auto c2 = v.find(':', c + 1);
            o.extra.push_back({v.substr(0, c), static_cast<unsigned>(std::stoul(v.substr(c + 1))),
                               c2 == std::string::npos
                                       ? 0u
                                       : static_cast<unsigned>(std::stoul(v.substr(c2 + 1)))});
        } else if (a == "--phase") {
            o.phase_s = std::stod(val());
        } else if (a == "--drain") {
            o.drain_pkts = static_cast<unsigned>(std::stoul(val()));
        } else if (a == "--drain-only") {
            o.drain_only = true;
        } else if (a == "--perf-ctl") {
            o.perf_ctl = val();
        } else if (a == "--no-baselines") {
            o.baselines = false;
        } else if (a == "--no-control") {
            o.control = false;
        } else if (a == "--soak") {
            o.soak = true;
            o.soak_o.sessions = std::stoull(val());
        } else if (a == "--soak-seconds") {
            o.soak_o.seconds = std::stod(val());
        } else if (a == "--soak-inject-leak") {
            o.soak_o.inject_leak = true;
        } else if (a == "--soak-rate") {
            o.soak_o.rate_pps = std::stod(val());
        } else if (a == "--soak-warmup") {
            o.soak_o.warmup = static_cast<unsigned>(std::stoul(val()));
        } else if (a == "--memory-note") {
            o.memory_note = val();
        } else if (a == "--out") {
            o.out = val();
        } else if (a == "--") {
            eal_given = true;
            for (i++; i < argc; i++)
                eal.push_back(argv[i]);
        } else {
            usage();
            return 2;
        }
    }
    if (!o.perf_ctl.empty()) {
        perf_ctl_fd = open(o.perf_ctl.c_str(), O_WRONLY | O_CLOEXEC);
        if (perf_ctl_fd < 0)
            fprintf(stderr, "isar-bench: --perf-ctl %s: %s\n", o.perf_ctl.c_str(), strerror(errno));
    }
    if (!eal_given) {
        cpu_set_t cs;
        sched_getaffinity(0, sizeof(cs), &cs);
        const bool two = CPU_COUNT(&cs) >= 2;
        eal.insert(eal.end(), {"--no-huge", "-m", o.smoke ? "512" : "3072", "--no-pci",
                               "--file-prefix", "isarbench" + std::to_string(getpid()),
                               "--lcores",
                               std::any_of(o.modes.begin(), o.modes.end(), bench_rss::is_rss_mode)
                                       ? bench_rss::eal_lcores(CPU_COUNT(&cs)) // 2 workers
                                       : two ? "0@0,1@1" : "0@0,1@0",
                               "--log-level", "*:warning"});
    }
    std::vector<char*> av;
    for (auto& s : eal)
        av.push_back(s.data());
    if (rte_eal_init(static_cast<int>(av.size()), av.data()) < 0) {
        fprintf(stderr, "isar-bench: rte_eal_init failed: %s (hugepages? try --no-huge)\n",
                rte_strerror(rte_errno));
        return 1;
    }
    if (rte_lcore_count() < 2) {
        fprintf(stderr, "isar-bench: needs 2 lcores (main: generator+sink, worker)\n");
        return 1;
    }
    hz = rte_get_tsc_hz();
    rte_mbuf_dynfield df{};
    snprintf(df.name, sizeof(df.name), "isar_bench_stamp");
    df.size = 16;
    df.align = 8;
    stamp_off = rte_mbuf_dynfield_register(&df);
    if (stamp_off < 0) {
        fprintf(stderr, "isar-bench: cannot register the mbuf dynfield\n");
        return 1;
    }
    crypto::prepare_thread();
    if (o.soak) {
        const int rc = bench_soak::run(o.soak_o);
        rte_eal_cleanup();
        return rc;
    }
    fprintf(stderr, "isar-bench: CPU %s, TSC %.3f GHz, memory %s\n", cpu_model().c_str(),
            static_cast<double>(hz) / 1e9, o.memory_note.c_str());

    if (o.baselines) {
        for (unsigned p : o.payloads)
            run_forwarder(o, p);
        for (unsigned p : o.payloads)
            run_kernel_relay(o, p);
        run_crypto(o);
    }
    for (const auto& mode : o.modes)
        for (unsigned l : o.legs)
            if (bench_turn::is_turn_mode(mode))
                bench_turn::run_mode(turn_opts(o), mode, l, baselines, turn_j, errors);
            else if (bench_rss::is_rss_mode(mode))
                bench_rss::run_mode({o.payloads, o.drain_pkts}, mode, l, rss_j, errors);
            else
                run_scenario(o, mode, l);
    for (const auto& x : o.extra)
        run_scenario(o, x.mode, x.legs, x.payload);
    bench_ip6::add_plain_ratios(results);
    if (o.control) {
        run_control(o, "plain", o.smoke ? 500 : 20000);
        run_control(o, "transcrypt-cm80", o.smoke ? 200 : 10000);
    }
    if (o.turn_allocs != 0 && std::any_of(o.modes.begin(), o.modes.end(), bench_turn::is_turn_mode))
        turn_alloc_j = bench_turn::run_allocs(turn_opts(o), o.turn_allocs, errors);

    json out{{"tool", "isar-bench"},
             {"cpu", cpu_model()},
             {"tsc_hz", hz},
             {"memory", o.memory_note},
             {"lcores", "main: generator+sink, 1 worker lcore: dp::worker::run()"},
             {"phase_s", o.phase_s},
             {"loadavg_at_end", [] {
                  std::ifstream f("/proc/loadavg");
                  std::string l;
                  std::getline(f, l);
                  return l;
              }()},
             {"results", results},
             {"baselines", baselines},
             {"crypto", crypto_j},
             {"control", control_j},
             {"turn", turn_j},
             {"rss", rss_j},
             {"turn_allocations", turn_alloc_j},
             {"errors", errors}};
    if (!o.out.empty()) {
        std::ofstream f(o.out);
        f << out.dump(1) << "\n";
    }
    fprintf(stderr, "isar-bench: %zu result(s), %zu error(s)\n", results.size(), errors.size());
    for (auto& e : errors)
        fprintf(stderr, "isar-bench: ERROR %s\n", e.c_str());
    rte_eal_cleanup();
    return errors.empty() ? 0 : 1;
}
