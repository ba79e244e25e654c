#include "bench/load/rss_modes.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

#include <unistd.h>

#include <rte_bus_vdev.h>
#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "bench/load/packets.h"
#include "control/commands.h"
#include "control/config.h"
#include "control/neighbor_manager.h"
#include "control/session_manager.h"
#include "crypto/srtp_context.h"
#include "dataplane/dataplane.h"
#include "dataplane/ownership.h"

namespace isar::bench_rss {

using nlohmann::json;

namespace {

constexpr unsigned nworkers = 2;
constexpr unsigned reta_size = 128; // dp::paired_reta, as dataplane_rss.cc programs
constexpr uint32_t relay_ip = 0xc6120001;                               // 198.18.0.1
constexpr uint32_t remote_ip(unsigned leg) { return 0xc612000a + leg; } // 198.18.0.10+
constexpr uint16_t remote_port_base = 1024;
unsigned seq = 0;

rte_ether_addr remote_mac(unsigned leg)
{
    return rte_ether_addr{{0x02, 0, 0, 0, 0x10, static_cast<uint8_t>(leg)}};
}

// A net_ring port with one RX ring per worker queue and a TX ring per
// worker plus control's.
struct rss_port {
    std::string name;
    int port = -1;
    std::vector<rte_ring*> rx, tx;
    rss_port(unsigned nrx, unsigned ntx, unsigned rx_size, unsigned tx_size)
        : name("rss" + std::to_string(seq++))
    {
        const int sock = static_cast<int>(rte_socket_id());
        const unsigned f = RING_F_SP_ENQ | RING_F_SC_DEQ;
        for (unsigned q = 0; q < nrx; q++)
            rx.push_back(rte_ring_create((name + "r" + std::to_string(q)).c_str(), rx_size, sock, f));
        for (unsigned q = 0; q < ntx; q++)
            tx.push_back(rte_ring_create((name + "t" + std::to_string(q)).c_str(), tx_size, sock, f));
        for (auto* r : rx)
            if (r == nullptr)
                return;
        for (auto* r : tx)
            if (r == nullptr)
                return;
        port = rte_eth_from_rings(name.c_str(), rx.data(), nrx, tx.data(), ntx, sock);
    }
    void drain()
    {
        void* o[64];
        unsigned k;
        for (auto* rs : {&rx, &tx})
            for (rte_ring* r : *rs)
                while (r && (k = rte_ring_dequeue_burst(r, o, 64, nullptr)) > 0)
                    rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(o), k);
    }
    ~rss_port()
    {
        if (port >= 0)
            rte_vdev_uninit(("net_ring_" + name).c_str());
        drain();
        for (auto* rs : {&rx, &tx})
            for (rte_ring* r : *rs)
                rte_ring_free(r);
    }
};

int wk_main(void* a)
{
    crypto::prepare_thread();
    return static_cast<dp::worker*>(a)->run();
}

struct flow {
    uint32_t src_be;
    uint16_t sport, dport; // host order
    unsigned leg;
    unsigned queue;
};

struct run_state {
    std::unique_ptr<rss_port> port;
    ctl::config cfg;
    std::unique_ptr<dp::dataplane> dp;
    std::unique_ptr<ctl::session_manager> sm;
    std::unique_ptr<ctl::neighbor_manager> nm;
    std::unique_ptr<ctl::commands> cmds;
    std::vector<unsigned> lcores;
    bool running = false;
    std::string error;

    void start()
    {
        for (unsigned w = 0; w < nworkers; w++) {
            dp->wk(w).stop.store(false);
            rte_eal_remote_launch(wk_main, &dp->wk(w), lcores[w]);
        }
        running = true;
    }
    void stop()
    {
        if (!running)
            return;
        for (unsigned w = 0; w < nworkers; w++)
            dp->wk(w).stop.store(true);
        for (unsigned w = 0; w < nworkers; w++)
            rte_eal_wait_lcore(lcores[w]);
        running = false;
    }
    ~run_state()
    {
        stop();
        cmds.reset();
        nm.reset();
        sm.reset();
        if (port)
            port->drain();
        dp.reset();
        port.reset();
    }

    bool setup(bool dstport, unsigned legs, unsigned drain_pkts)
    {
        unsigned l;
        RTE_LCORE_FOREACH_WORKER(l)
        lcores.push_back(l);
        if (lcores.size() < nworkers) {
            error = "needs 3 lcores (main + 2 workers): --lcores 0@0,1@1,2@1";
            return false;
        }
        port = std::make_unique<rss_port>(nworkers, nworkers + 1, 1u << 18, 1u << 18);
        if (port->port < 0) {
            error = "cannot create the ring port";
            return false;
        }
        dp::dp_config dc;
        dc.mbufs = std::max(16383u, drain_pkts + 16383);
        dc.max_legs = legs + legs / 8 + 64;
        dc.ring_size = 1u << 16; // handoff: the other worker may be off its core for a while
        dc.rx_desc = 512;
        dc.tx_desc = 512;
        dc.soft_rss_reta = dstport ? reta_size : 0;
        dc.ifaces.push_back({static_cast<uint16_t>(port->port),
                             {{4, rte_cpu_to_be_32(relay_ip), {}, 24}}, 0});
        ctl::interface_config ic;
        ic.port = static_cast<uint16_t>(port->port);
        ic.address = relay_ip;
        ic.prefix_len = 24;
        cfg.interfaces.push_back(ic);
        cfg.port_min = 1024;
        cfg.port_max = 65535;
        cfg.max_legs = dc.max_legs;
        cfg.mbufs = dc.mbufs;
        dp = std::make_unique<dp::dataplane>();
        if (dp->init(dc, nworkers, error) != 0)
            return false;
        sm = std::make_unique<ctl::session_manager>(*dp, cfg);
        nm = std::make_unique<ctl::neighbor_manager>(*dp);
        cmds = std::make_unique<ctl::commands>(*dp, *sm, *nm, cfg);
        for (unsigned j = 0; j < 2; j++)
            dp->ifc(0).neigh->update(rte_cpu_to_be_32(remote_ip(j)), remote_mac(j));
        return true;
    }

    // Two-leg sessions through commands::handle_line; the legs' local ports.
    bool create(unsigned nsess, std::vector<flow>& flows)
    {
        flows.assign(static_cast<size_t>(nsess) * 2, flow{});
        unsigned next = 0, done = 0, inflight = 0;
        bool failed = false;
        while (done < nsess && !failed) {
            while (inflight < 256 && next < nsess) {
                const unsigned s = next++;
                json legs_j = json::array();
                for (unsigned j = 0; j < 2; j++) {
                    const uint32_t ip = remote_ip(j);
                    char ep[40];
                    snprintf(ep, sizeof(ep), "%u.%u.%u.%u:%u", ip >> 24, (ip >> 16) & 255,
                             (ip >> 8) & 255, ip & 255, remote_port_base + s);
                    legs_j.push_back({{"name", j == 0 ? "a" : "b"}, {"remote", ep},
                                      {"interface", 0}});
                }
                const std::string line = json{{"cmd", "session.create"},
                                              {"session", "r" + std::to_string(s)},
                                              {"legs", legs_j}}
                                                 .dump();
                inflight++;
                cmds->handle_line(line, [&, s](const json& r) {
                    inflight--;
                    done++;
                    if (r.contains("error")) {
                        error = "session.create: " + r.dump();
                        failed = true;
                        return;
                    }
                    unsigned j = 0;
                    for (const auto& lg : r.at("legs")) {
                        const std::string loc = lg.at("local").get<std::string>();
                        flow& f = flows[2 * s + j];
                        f.src_be = rte_cpu_to_be_32(remote_ip(j));
                        f.sport = static_cast<uint16_t>(remote_port_base + s);
                        f.dport = static_cast<uint16_t>(std::stoul(loc.substr(loc.rfind(':') + 1)));
                        f.leg = j++;
                    }
                });
            }
            sm->poll();
        }
        return !failed;
    }
};

// The RX queue a NIC with this RSS (the RETA dataplane_rss.cc programs)
// puts `f` on.
unsigned queue_of(bool dstport, const dp::local_addr& relay, const std::vector<uint16_t>& reta,
                  const flow& f)
{
    const uint32_t h = dstport ? dp::rss_hash_dst(relay, f.dport, dp::rss_key)
                               : dp::rss_hash_4tuple(f.src_be, rte_cpu_to_be_32(relay_ip), f.sport,
                                                     f.dport, dp::rss_key);
    return reta[h % reta.size()];
}

struct wstat {
    uint64_t rx, ho_out, ho_in, fwd, busy, drops;
};
wstat read_stats(const dp::worker& w)
{
    const dp::worker_stats& s = w.stats;
    uint64_t d = 0;
    for (const auto& c : s.drops)
        d += dp::read(c);
    return {dp::read(s.rx_pkts), dp::read(s.handoff_out), dp::read(s.handoff_in),
            dp::read(s.fwd_pkts), dp::read(s.busy_tsc), d};
}

// Builds `n` RTP packets over the flows (round-robin) into their queues' rings.
bool fill(run_state& st, bool dstport, const std::vector<flow>& flows, unsigned payload,
          unsigned n, std::vector<uint64_t>& per_queue)
{
    const dp::local_addr& relay = st.dp->laddr(0);
    const rte_ether_addr dmac = st.dp->ifc(0).mac;
    const std::vector<uint16_t> reta = dp::paired_reta(reta_size, nworkers, dp::rss_key);
    std::vector<uint16_t> rtp_seq(flows.size(), 0);
    rte_mbuf* m[32];
    for (unsigned done = 0; done < n;) {
        const unsigned k = std::min(32u, n - done);
        if (rte_pktmbuf_alloc_bulk(st.dp->pool(), m, k) != 0) {
            st.error = "mempool exhausted while filling";
            return false;
        }
        for (unsigned i = 0; i < k; i++) {
            const size_t fi = (done + i) % flows.size();
            const flow& f = flows[fi];
            const size_t len = bench_pkt::hdr4 + payload;
            auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m[i], static_cast<uint16_t>(len)));
            uint8_t* rtp = p + bench_pkt::hdr4;
            std::memset(rtp, 0x5a, payload);
            rtp[0] = 0x80;
            rtp[1] = 0;
            const uint16_t sq = rtp_seq[fi]++;
            rtp[2] = static_cast<uint8_t>(sq >> 8);
            rtp[3] = static_cast<uint8_t>(sq);
            std::memcpy(rtp + 8, &fi, 4); // SSRC
            bench_pkt::endpoint src, dst;
            src.ip4_be = f.src_be;
            src.port_be = rte_cpu_to_be_16(f.sport);
            dst.ip4_be = rte_cpu_to_be_32(relay_ip);
            dst.port_be = rte_cpu_to_be_16(f.dport);
            bench_pkt::write_udp(p, remote_mac(f.leg), dmac, src, dst, payload);
            m[i]->port = static_cast<uint16_t>(st.port->port);
            const unsigned q = queue_of(dstport, relay, reta, f);
            per_queue[q]++;
            if (rte_ring_sp_enqueue(st.port->rx[q], m[i]) != 0) {
                rte_pktmbuf_free_bulk(m + i, k - i);
                st.error = "RX ring full while filling";
                return false;
            }
        }
        done += k;
    }
    return true;
}

// Sleeps until the workers have forwarded or dropped `n` packets since
// `before` (or made no progress for 3 s); returns the TSC of the last progress.
uint64_t wait_drained(run_state& st, const wstat* before, uint64_t n_want)
{
    const uint64_t hz = rte_get_tsc_hz();
    uint64_t t_end = rte_rdtsc(), last = 0, last_change = t_end;
    for (;;) {
        usleep(100);
        uint64_t n = 0;
        for (unsigned w = 0; w < nworkers; w++) {
            const wstat x = read_stats(st.dp->wk(w));
            n += x.fwd - before[w].fwd + x.drops - before[w].drops;
        }
        const uint64_t now = rte_rdtsc();
        if (n != last) {
            last = n;
            last_change = t_end = now;
        }
        if (n >= n_want || now - last_change > 3 * hz)
            return t_end;
    }
}

struct sink_result {
    uint64_t out = 0, bad = 0;
    const char* first_bad = nullptr;
};

// The sink, after the drain: every output packet, a sample fully parsed.
sink_result sink(run_state& st, unsigned payload)
{
    sink_result r;
    void* b[64];
    for (rte_ring* t : st.port->tx) {
        unsigned k;
        while ((k = rte_ring_sc_dequeue_burst(t, b, 64, nullptr)) > 0) {
            for (unsigned i = 0; i < k; i++) {
                if ((r.out + i) % 61 != 0)
                    continue;
                auto* m = static_cast<rte_mbuf*>(b[i]);
                bench_pkt::udp_view v;
                const char* e = bench_pkt::parse_check(rte_pktmbuf_mtod(m, uint8_t*),
                                                       rte_pktmbuf_data_len(m), v);
                if (e == nullptr && v.len != payload)
                    e = "payload length changed";
                if (e != nullptr) {
                    r.bad++;
                    r.first_bad = r.first_bad ? r.first_bad : e;
                }
            }
            r.out += k;
            rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(b), k);
        }
    }
    return r;
}

json run_one(const options& o, const std::string& mode, unsigned legs, unsigned payload)
{
    const bool dstport = mode == "rss-dstport";
    json r{{"mode", mode}, {"legs", legs}, {"payload", payload}, {"workers_n", nworkers}};
    run_state st;
    const unsigned nsess = std::max(1u, legs / 2);
    if (nsess * 2 > 60000) { // one address: 64512 relay ports, dealt to 2 workers
        r["error"] = "at most 60000 legs (one relay address, ports 1024-65535)";
        return r;
    }
    std::vector<flow> flows;
    if (!st.setup(dstport, nsess * 2, o.drain_pkts)) {
        r["error"] = st.error;
        return r;
    }
    st.start();
    if (!st.create(nsess, flows)) {
        r["error"] = st.error;
        return r;
    }
    st.stop();
    r["ownership"] = st.dp->ownership_desc(0);
    // Fill while the workers are stopped, then drain: each worker's busy TSC
    // is its capacity (its RX ring never empty), the wall clock the two
    // workers' rate together.
    std::vector<uint64_t> per_queue(nworkers, 0);
    if (!fill(st, dstport, flows, payload, o.drain_pkts, per_queue)) {
        r["error"] = st.error;
        return r;
    }
    wstat before[nworkers], after[nworkers];
    for (unsigned w = 0; w < nworkers; w++)
        before[w] = read_stats(st.dp->wk(w));
    const uint64_t hz = rte_get_tsc_hz();
    // The main lcore sleeps while the workers drain (the TX rings hold every
    // output packet): on a 2-core machine each worker then has a core.
    const uint64_t t0 = rte_rdtsc();
    st.start();
    const uint64_t wall = wait_drained(st, before, o.drain_pkts) - t0;
    st.stop();
    sink_result sk = sink(st, payload);
    for (unsigned w = 0; w < nworkers; w++)
        after[w] = read_stats(st.dp->wk(w));
    json ws = json::array();
    uint64_t rx = 0, ho = 0, fwd = 0, drops = 0;
    double sum_mpps = 0;
    for (unsigned w = 0; w < nworkers; w++) {
        const wstat d{after[w].rx - before[w].rx,         after[w].ho_out - before[w].ho_out,
                      after[w].ho_in - before[w].ho_in,   after[w].fwd - before[w].fwd,
                      after[w].busy - before[w].busy,     after[w].drops - before[w].drops};
        const double busy_s = static_cast<double>(d.busy) / static_cast<double>(hz);
        const double mpps = busy_s > 0 ? static_cast<double>(d.fwd) / busy_s / 1e6 : 0;
        sum_mpps += mpps;
        rx += d.rx;
        ho += d.ho_out;
        fwd += d.fwd;
        drops += d.drops;
        ws.push_back({{"worker", w}, {"rx_queue_pkts", per_queue[w]}, {"rx_pkts", d.rx},
                      {"handoff_out", d.ho_out}, {"handoff_in", d.ho_in}, {"fwd_pkts", d.fwd},
                      {"busy_s", busy_s}, {"mpps", mpps},
                      {"handoff_share", d.rx ? static_cast<double>(d.ho_out) / d.rx : 0.0}});
    }
    const double wall_s = static_cast<double>(wall) / static_cast<double>(hz);
    r["workers"] = ws;
    r["mpps_total"] = sum_mpps;
    r["mpps_wall"] = wall_s > 0 ? static_cast<double>(fwd) / wall_s / 1e6 : 0;
    r["handoff_share"] = rx ? static_cast<double>(ho) / static_cast<double>(rx) : 0.0;
    r["packets"] = o.drain_pkts;
    r["note"] = "mpps per worker = its forwarded packets per busy second; mpps_total = their sum; "
                "mpps_wall = all forwarded / wall time of the drain (the generator+sink lcore "
                "sleeps meanwhile; " + std::to_string(rte_lcore_count()) + " lcores on " +
                std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) +
                " cores, shared with whatever else runs): handoff_share is the robust number";
    // The point of the mode: with the ports dealt per the Toeplitz map no
    // packet crosses workers; with the pairs rule and 4-tuple RSS some must.
    if (dstport && ho != 0)
        r["error"] = std::to_string(ho) + " packets handed off under RSS on the destination "
                     "port: port ownership disagrees with the Toeplitz map";
    else if (!dstport && nsess > 8 && ho == 0)
        r["error"] = "no handoff under 4-tuple RSS with ports in pairs: the generator's "
                     "spreading is broken";
    else if (sk.out != o.drain_pkts || fwd != o.drain_pkts || drops != 0 || sk.bad != 0)
        r["error"] = "sent " + std::to_string(o.drain_pkts) + ", forwarded " +
                     std::to_string(fwd) + ", out " + std::to_string(sk.out) + ", drops " +
                     std::to_string(drops) + ", bad samples " + std::to_string(sk.bad) +
                     (sk.first_bad ? std::string(" (") + sk.first_bad + ")" : std::string());
    return r;
}

} // namespace

void run_mode(const options& o, const std::string& mode, unsigned legs, json& out,
              std::vector<std::string>& errors)
{
    for (unsigned payload : o.payloads) {
        json r = run_one(o, mode, legs, payload);
        if (r.contains("error")) {
            errors.push_back(mode + " legs " + std::to_string(legs) + ": " +
                             r["error"].get<std::string>());
            fprintf(stderr, "%-12s legs %-7u %4u B: ERROR %s\n", mode.c_str(), legs, payload,
                    r["error"].get<std::string>().c_str());
        } else {
            const json& w = r["workers"];
            fprintf(stderr,
                    "%-12s legs %-7u %4u B: worker 0 %.2f Mpps, worker 1 %.2f Mpps, total %.2f "
                    "Mpps (wall %.2f Mpps, %u lcores on %ld cores), handoff %.1f %%\n",
                    mode.c_str(), legs, payload, w[0]["mpps"].get<double>(),
                    w[1]["mpps"].get<double>(), r["mpps_total"].get<double>(),
                    r["mpps_wall"].get<double>(), rte_lcore_count(), sysconf(_SC_NPROCESSORS_ONLN),
                    r["handoff_share"].get<double>() * 100.0);
        }
        out.push_back(std::move(r));
    }
}

} // namespace isar::bench_rss
