// isar-bench --soak N: the churn soak (bench/README.md, "Churn soak").
//
// One dp::dataplane (one worker running dp::worker::run() on an EAL worker
// lcore) over a net_ring port; ctl::session_manager + ctl::commands on the
// main lcore, as isard has them. `base_sessions` long-lived two-leg sessions
// forward generated RTP the whole time; N two-leg sessions are created and
// deleted with JSON `session.create` / `session.delete` requests through
// commands::handle_line (the management socket's entry point), `window` in
// flight, about 256 alive at any moment; 1 in 4 has AES-CM SRTP keys, every
// other plain one gets a packet while it lives. After a warm-up churn the
// traffic is stopped, everything in flight accounted for, and the start is
// sampled; the same at the end. Verdict: mbufs in use equal, DPDK heap equal
// (allocation count and bytes), RSS within rss_slack_mib, sessions/legs and
// the flow table back to the long-lived ones.
#include "bench/load/soak.h"
#include "bench/load/bench_util.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <rte_bus_vdev.h>
#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
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

namespace isar::bench_soak {
namespace {

using namespace isar::bench_util;

using json = nlohmann::json;

constexpr uint32_t relay_ip = 0xc6120001;                 // 198.18.0.1
constexpr uint32_t remote_ip(unsigned j) { return 0xc612000a + j; } // 198.18.0.10+j
rte_ether_addr remote_mac(unsigned j)
{
    return rte_ether_addr{{0x02, 0x00, 0x00, 0x00, 0x02, static_cast<uint8_t>(j)}};
}

std::string key_spec(uint64_t seed)
{
    const crypto::suite s = crypto::suite::aes_cm_128_hmac_sha1_80;
    std::vector<uint8_t> b(crypto::suite_key_len(s) + crypto::suite_salt_len(s));
    for (size_t i = 0; i < b.size(); i++)
        b[i] = static_cast<uint8_t>(splitmix(seed * 64 + i) >> 8);
    return std::string(crypto::suite_name(s)) + ":" + base64(b.data(), b.size());
}

std::string ip_str(uint32_t ip)
{
    char b[20];
    snprintf(b, sizeof(b), "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
    return b;
}

// j = 0/1: leg a/b; remotes 198.18.0.(10+rbase+j):port
std::string create_line(const std::string& id, unsigned rbase, uint16_t port, bool keys,
                        uint64_t seed)
{
    json legs = json::array();
    for (unsigned j = 0; j < 2; j++) {
        json l{{"name", j == 0 ? "a" : "b"},
               {"remote", ip_str(remote_ip(rbase + j)) + ":" + std::to_string(port)},
               {"interface", 0}};
        if (keys) {
            l["in"] = key_spec(seed * 4 + j * 2);
            l["out"] = key_spec(seed * 4 + j * 2 + 1);
        }
        legs.push_back(l);
    }
    return json{{"cmd", "session.create"}, {"session", id}, {"legs", legs}}.dump();
}

struct sender {
    uint16_t dst_port; // relay port of the sending leg
    uint16_t src_port; // remote port
    uint32_t src_ip;
    uint32_t ssrc;
    uint16_t seq = 0;
    uint8_t leg = 0;
};

struct sample {
    unsigned mbufs = 0;
    size_t heap_bytes = 0, heap_allocs = 0;
    size_t rss = 0;
    size_t sessions = 0, legs = 0;
    uint32_t flows = 0;
    size_t ports_free = 0;
};

size_t rss_bytes()
{
    std::ifstream f("/proc/self/statm");
    size_t size = 0, res = 0;
    f >> size >> res;
    return res * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

struct soak {
    const options& o;
    uint64_t hz = rte_get_tsc_hz();
    rte_ring* rx = nullptr;
    rte_ring* tx[2] = {nullptr, nullptr};
    int port = -1;
    std::string vdev;
    unsigned lcore = 0;
    bool running = false;
    ctl::config cfg;
    std::unique_ptr<dp::dataplane> dp;
    std::unique_ptr<ctl::session_manager> sm;
    std::unique_ptr<ctl::neighbor_manager> nm;
    std::unique_ptr<ctl::commands> cmds;
    std::vector<sender> senders;
    uint64_t rng = 88172645463325252ull;
    uint64_t sent = 0, received = 0, gen_fail = 0;
    std::string error;
    uint8_t payload[160];

    explicit soak(const options& opt) : o(opt)
    {
        for (unsigned i = 0; i < sizeof(payload); i++)
            payload[i] = static_cast<uint8_t>(i * 7 + 1);
    }
    ~soak()
    {
        stop();
        cmds.reset();
        nm.reset();
        sm.reset();
        drain_rings();
        dp.reset();
        if (port >= 0)
            rte_vdev_uninit(vdev.c_str());
        drain_rings();
        rte_ring_free(rx);
        rte_ring_free(tx[0]);
        rte_ring_free(tx[1]);
    }
    void drain_rings()
    {
        void* b[64];
        unsigned k;
        for (rte_ring* r : {rx, tx[0], tx[1]})
            while (r && (k = rte_ring_dequeue_burst(r, b, 64, nullptr)) > 0)
                rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(b), k);
    }

    dp::worker& wk() { return dp->wk(0); }
    static int wk_main(void* a)
    {
        crypto::prepare_thread();
        return static_cast<dp::worker*>(a)->run();
    }
    void start()
    {
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

    bool setup()
    {
        RTE_LCORE_FOREACH_WORKER(lcore) break;
        const int sock = static_cast<int>(rte_socket_id());
        const unsigned f = RING_F_SP_ENQ | RING_F_SC_DEQ;
        rx = rte_ring_create("soakr", 1u << 14, sock, f);
        tx[0] = rte_ring_create("soakt0", 1u << 14, sock, f);
        tx[1] = rte_ring_create("soakt1", 1u << 14, sock, f);
        if (!rx || !tx[0] || !tx[1]) {
            error = "cannot create rings";
            return false;
        }
        port = rte_eth_from_rings("soak", &rx, 1, tx, 2, sock);
        vdev = "net_ring_soak";
        if (port < 0) {
            error = "cannot create the ring port";
            return false;
        }
        dp::dp_config dc;
        dc.mbufs = 65535;
        dc.max_legs = 2 * (o.base_sessions + 4 * o.window + 512) + 64;
        dc.ring_size = 4096;
        dc.rx_desc = 512;
        dc.tx_desc = 512;
        dc.ifaces.push_back(
                {static_cast<uint16_t>(port), {{4, rte_cpu_to_be_32(relay_ip), {}, 24}}, 0});
        cfg.port_min = 1024;
        cfg.port_max = 65535;
        cfg.max_legs = dc.max_legs;
        cfg.mbufs = dc.mbufs;
        ctl::interface_config ic;
        ic.port = static_cast<uint16_t>(port);
        ic.address = relay_ip;
        ic.prefix_len = 24;
        cfg.interfaces.push_back(ic);
        dp = std::make_unique<dp::dataplane>();
        if (dp->init(dc, 1, error) != 0)
            return false;
        sm = std::make_unique<ctl::session_manager>(*dp, cfg);
        nm = std::make_unique<ctl::neighbor_manager>(*dp);
        cmds = std::make_unique<ctl::commands>(*dp, *sm, *nm, cfg);
        for (unsigned j = 0; j < 4; j++)
            dp->ifc(0).neigh->update(rte_cpu_to_be_32(remote_ip(j)), remote_mac(j));
        start();
        return create_base();
    }

    static uint16_t local_port(const json& leg)
    {
        const std::string loc = leg.at("local").get<std::string>();
        return static_cast<uint16_t>(std::stoul(loc.substr(loc.rfind(':') + 1)));
    }

    // The long-lived sessions and their senders (both legs send).
    bool create_base()
    {
        unsigned done = 0;
        bool failed = false;
        for (unsigned s = 0; s < o.base_sessions; s++) {
            const uint16_t rport = static_cast<uint16_t>(1024 + s);
            cmds->handle_line(create_line("base" + std::to_string(s), 0, rport, false, s),
                              [&, s, rport](const json& r) {
                                  done++;
                                  if (r.contains("error")) {
                                      if (!failed)
                                          error = "base session.create: " + r.dump();
                                      failed = true;
                                      return;
                                  }
                                  unsigned j = 0;
                                  for (const auto& l : r.at("legs")) {
                                      sender x{};
                                      x.dst_port = local_port(l);
                                      x.src_port = rport;
                                      x.src_ip = remote_ip(j);
                                      x.ssrc = static_cast<uint32_t>(splitmix(s * 2 + j));
                                      x.leg = static_cast<uint8_t>(j++);
                                      senders.push_back(x);
                                  }
                              });
            while (done + o.window <= s)
                sm->poll();
        }
        while (done < o.base_sessions)
            sm->poll();
        return !failed;
    }

    // ---- generator and sink ------------------------------------------------
    bool build(rte_mbuf* mb, sender& x)
    {
        const unsigned rtp_len = 12 + sizeof(payload);
        auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(mb, static_cast<uint16_t>(42 + rtp_len)));
        if (p == nullptr)
            return false;
        auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
        eth->dst_addr = dp->ifc(0).mac;
        eth->src_addr = remote_mac(x.leg);
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
        uint8_t* rtp = p + 42;
        x.seq++;
        rtp[0] = 0x80;
        rtp[1] = 0;
        rtp[2] = static_cast<uint8_t>(x.seq >> 8);
        rtp[3] = static_cast<uint8_t>(x.seq);
        const uint32_t ts = rte_cpu_to_be_32(static_cast<uint32_t>(x.seq) * 160u);
        const uint32_t ssrc = rte_cpu_to_be_32(x.ssrc);
        memcpy(rtp + 4, &ts, 4);
        memcpy(rtp + 8, &ssrc, 4);
        memcpy(rtp + 12, payload, sizeof(payload));
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p + 14);
        ip->version_ihl = 0x45;
        ip->type_of_service = 0xb8;
        ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(28 + rtp_len));
        ip->packet_id = 0;
        ip->fragment_offset = rte_cpu_to_be_16(0x4000);
        ip->time_to_live = 64;
        ip->next_proto_id = IPPROTO_UDP;
        ip->src_addr = rte_cpu_to_be_32(x.src_ip);
        ip->dst_addr = rte_cpu_to_be_32(relay_ip);
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        auto* udp = reinterpret_cast<rte_udp_hdr*>(p + 34);
        udp->src_port = rte_cpu_to_be_16(x.src_port);
        udp->dst_port = rte_cpu_to_be_16(x.dst_port);
        udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(8 + rtp_len));
        udp->dgram_cksum = 0;
        udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
        mb->port = static_cast<uint16_t>(port);
        return true;
    }
    uint64_t next_rand()
    {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
    }
    // Background traffic for the long-lived sessions, paced at o.rate_pps
    // (catching up in at most 16 bursts of 32 per call: the requests must go
    // on too); RX backlog capped like a NIC ring's.
    uint64_t gen_t0 = 0, gen_sent = 0;
    void gen()
    {
        if (gen_t0 == 0)
            gen_t0 = rte_rdtsc();
        double due = static_cast<double>(rte_rdtsc() - gen_t0) * o.rate_pps /
                             static_cast<double>(hz) - static_cast<double>(gen_sent);
        if (due > 4096) { // the main lcore was busy: forgive the debt
            gen_sent += static_cast<uint64_t>(due) - 512;
            due = 512;
        }
        for (int k = 0; k < 16 && due >= 32; k++, due -= 32)
            gen_burst();
    }
    void gen_burst()
    {
        gen_sent += 32;
        if (senders.empty() || rte_ring_count(rx) >= 4096)
            return;
        rte_mbuf* b[32];
        if (rte_pktmbuf_alloc_bulk(dp->pool(), b, 32) != 0)
            return;
        for (auto* m : b)
            if (!build(m, senders[next_rand() % senders.size()]))
                gen_fail++;
        const unsigned k = rte_ring_sp_enqueue_burst(rx, reinterpret_cast<void**>(b), 32, nullptr);
        if (k < 32)
            rte_pktmbuf_free_bulk(b + k, 32 - k);
        sent += k;
    }
    void send_one(sender x)
    {
        rte_mbuf* m = rte_pktmbuf_alloc(dp->pool());
        if (m == nullptr)
            return;
        if (!build(m, x) || rte_ring_sp_enqueue(rx, m) != 0) {
            rte_pktmbuf_free(m);
            return;
        }
        sent++;
    }
    unsigned sink()
    {
        unsigned n = 0;
        void* b[64];
        for (rte_ring* r : tx) {
            unsigned k;
            for (int i = 0; i < 64 && (k = rte_ring_sc_dequeue_burst(r, b, 64, nullptr)) > 0; i++) {
                rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(b), k);
                n += k;
            }
        }
        received += n;
        return n;
    }
    uint64_t drops() const
    {
        uint64_t d = 0;
        for (unsigned i = 0; i < dp::n_drops; i++)
            d += dp::read(dp->wk(0).stats.drops[i]);
        return d;
    }
    std::string drops_str() const
    {
        std::string s;
        for (unsigned i = 0; i < dp::n_drops; i++)
            if (uint64_t v = dp::read(dp->wk(0).stats.drops[i]))
                s += std::string(s.empty() ? "" : ",") + dp::drop_name(static_cast<dp::drop>(i)) +
                     "=" + std::to_string(v);
        return s.empty() ? "none" : s;
    }
    uint64_t exceptions() const { return dp::read(dp->wk(0).stats.exception_pkts); }
    void poll_ctl()
    {
        sm->poll();
        nm->poll();
    }
    // No traffic any more: wait until every packet sent is received, dropped
    // or handed to control, and the worker has been idle for a while.
    void settle()
    {
        gen_t0 = 0;
        gen_sent = 0;
        const uint64_t lim = rte_rdtsc() + 2 * hz;
        while (rte_rdtsc() < lim && received + drops() + exceptions() < sent) {
            sink();
            poll_ctl();
        }
        const uint64_t end = rte_rdtsc() + hz / 10;
        while (rte_rdtsc() < end) {
            sink();
            poll_ctl();
        }
    }

    sample take()
    {
        sample s;
        s.mbufs = dp->mbufs_in_use();
        rte_malloc_socket_stats st{};
        for (int k = 0; k < RTE_MAX_NUMA_NODES; k++)
            if (rte_malloc_get_socket_stats(k, &st) == 0) {
                s.heap_bytes += st.heap_allocsz_bytes;
                s.heap_allocs += st.alloc_count;
            }
        s.rss = rss_bytes();
        s.sessions = sm->sessions().size();
        s.legs = sm->leg_count();
        s.flows = wk().flows.size();
        s.ports_free = sm->pool(0).free_total();
        return s;
    }

    // ---- churn -------------------------------------------------------------
    uint64_t seq = 0; // churn session number (ids never repeat)
    uint64_t created = 0, deleted = 0, failed = 0, keyed = 0, probes = 0;
    uint64_t max_in_use = 0;

    // Creates and deletes `n` sessions (stops early at `deadline_tsc`),
    // generating background traffic throughout; ends with nothing in flight
    // and no churn session left.
    uint64_t churn(uint64_t n, uint64_t deadline_tsc)
    {
        std::deque<uint64_t> alive; // created, not yet deleted
        unsigned inflight = 0;
        uint64_t issued = 0, it = 0;
        const size_t keep = 256;
        bool stop_creating = false;
        while (true) {
            if (!stop_creating && (issued >= n || rte_rdtsc() >= deadline_tsc))
                stop_creating = true;
            // Deletes: the oldest beyond `keep` (all of them at the end).
            // At most 32 of each per turn, so that traffic and acknowledgements
            // interleave with the requests.
            for (unsigned d = 0; d < 32 && inflight < o.window && !alive.empty() &&
                                 (alive.size() > keep || stop_creating);
                 d++) {
                const uint64_t s = alive.front();
                alive.pop_front();
                inflight++;
                cmds->handle_line(
                        json{{"cmd", "session.delete"}, {"session", "c" + std::to_string(s)}}.dump(),
                        [&](const json& r) {
                            inflight--;
                            if (r.contains("error")) {
                                if (failed++ == 0)
                                    error = "session.delete: " + r.dump();
                            } else {
                                deleted++;
                            }
                        });
            }
            // Creates.
            for (unsigned c = 0; c < 32 && !stop_creating && inflight < o.window && issued < n &&
                                 alive.size() + inflight < keep + o.window;
                 c++) {
                const uint64_t s = seq++;
                const bool keys = s % 4 == 3;
                keyed += keys;
                issued++;
                inflight++;
                const uint16_t rport = static_cast<uint16_t>(1024 + s % 60000);
                cmds->handle_line(
                        create_line("c" + std::to_string(s), 2, rport, keys, s + 1000000),
                        [&, s, keys, rport](const json& r) {
                            inflight--;
                            if (r.contains("error")) {
                                if (failed++ == 0)
                                    error = "session.create: " + r.dump();
                                return;
                            }
                            created++;
                            alive.push_back(s);
                            // A packet through every other plain session
                            // while it lives (a -> b).
                            if (!keys && s % 2 == 0) {
                                sender x{};
                                x.dst_port = local_port(r.at("legs").at(0));
                                x.src_port = rport;
                                x.src_ip = remote_ip(2);
                                x.ssrc = static_cast<uint32_t>(splitmix(s));
                                x.leg = 2;
                                send_one(x);
                                probes++;
                            }
                        });
            }
            if (stop_creating && alive.empty() && inflight == 0)
                break;
            poll_ctl();
            gen();
            sink();
            if ((++it & 15) == 0)
                max_in_use = std::max<uint64_t>(max_in_use, dp->mbufs_in_use());
        }
        return issued;
    }
};

void row(const char* name, double a, double b, const char* unit = "")
{
    printf("  %-22s %16.0f %16.0f %+14.0f %s\n", name, a, b, b - a, unit);
}

// The soak's running totals: taken at the start and at the end of the timed
// churn, whose report is their difference.
struct tally {
    uint64_t sent, received, drops, exceptions, created, deleted, keyed, probes;
};

tally tally_of(const soak& sk)
{
    return tally{sk.sent,    sk.received, sk.drops(), sk.exceptions(),
                 sk.created, sk.deleted,  sk.keyed,   sk.probes};
}

tally operator-(const tally& b, const tally& a)
{
    return tally{b.sent - a.sent,       b.received - a.received,
                 b.drops - a.drops,     b.exceptions - a.exceptions,
                 b.created - a.created, b.deleted - a.deleted,
                 b.keyed - a.keyed,     b.probes - a.probes};
}

// --inject-leak proves the verdict: one mbuf, one DPDK allocation and 4 MiB
// of heap never given back.
void inject_leak(soak& sk)
{
    (void)rte_pktmbuf_alloc(sk.dp->pool());
    (void)rte_malloc("soak_leak", 64, 0);
    auto* p = static_cast<char*>(malloc(4u << 20));
    memset(p, 1, 4u << 20);
}

// The timed churn: o.sessions sessions (fewer if o.seconds run out), with
// progress on stderr every ~10 % (in chunks; each chunk ends with no churn
// session left, which costs nothing measurable). Returns the seconds taken.
double timed_churn(soak& sk, const options& o, uint64_t recv0)
{
    const uint64_t hz = sk.hz;
    const uint64_t t0 = rte_rdtsc();
    const uint64_t deadline = t0 + static_cast<uint64_t>(o.seconds * static_cast<double>(hz));
    const uint64_t chunk = std::max<uint64_t>(10000, o.sessions / 10);
    uint64_t done = 0;
    while (done < o.sessions && rte_rdtsc() < deadline) {
        done += sk.churn(std::min(chunk, o.sessions - done), deadline);
        const double el = static_cast<double>(rte_rdtsc() - t0) / static_cast<double>(hz);
        fprintf(stderr,
                "soak: %lu/%lu sessions created+deleted in %.1f s (%.0f sessions/s), forwarded %lu, "
                "mbufs in use now %u, RSS %.1f MiB\n",
                static_cast<unsigned long>(done), static_cast<unsigned long>(o.sessions), el,
                static_cast<double>(done) / el,
                static_cast<unsigned long>(sk.received - recv0), sk.dp->mbufs_in_use(),
                static_cast<double>(rss_bytes()) / 1048576.0);
    }
    return static_cast<double>(rte_rdtsc() - t0) / static_cast<double>(hz);
}

// The churn and forwarding totals of the timed churn (`d`, over `el`
// seconds) and the start/end table.
void print_report(const soak& sk, const tally& d, double el, const sample& a, const sample& b)
{
    printf("churn soak: %lu sessions created and %lu deleted in %.1f s: %.0f sessions/s "
           "created+deleted (%.0f requests/s), %lu with SRTP keys\n",
           static_cast<unsigned long>(d.created), static_cast<unsigned long>(d.deleted), el,
           static_cast<double>(d.created) / el, static_cast<double>(d.created + d.deleted) / el,
           static_cast<unsigned long>(d.keyed));
    printf("forwarding: %lu packets sent, %lu forwarded (%.2f Mpps), %lu dropped (%s), %lu to "
           "control; %lu probe packets through churned sessions; peak mbufs in use %lu\n",
           static_cast<unsigned long>(d.sent), static_cast<unsigned long>(d.received),
           static_cast<double>(d.received) / el / 1e6, static_cast<unsigned long>(d.drops),
           sk.drops_str().c_str(), static_cast<unsigned long>(d.exceptions),
           static_cast<unsigned long>(d.probes), static_cast<unsigned long>(sk.max_in_use));
    printf("  %-22s %16s %16s %14s\n", "", "start", "end", "delta");
    row("mbufs in use", a.mbufs, b.mbufs);
    row("DPDK heap bytes", static_cast<double>(a.heap_bytes), static_cast<double>(b.heap_bytes), "B");
    row("DPDK heap allocations", static_cast<double>(a.heap_allocs), static_cast<double>(b.heap_allocs));
    row("RSS", static_cast<double>(a.rss) / 1024, static_cast<double>(b.rss) / 1024, "KiB");
    row("sessions", static_cast<double>(a.sessions), static_cast<double>(b.sessions));
    row("legs", static_cast<double>(a.legs), static_cast<double>(b.legs));
    row("flow table entries", a.flows, b.flows);
    row("free relay ports", static_cast<double>(a.ports_free), static_cast<double>(b.ports_free));
}

// The verdict's reasons: what the end sample `b` leaked or lost against the
// start `a`, and what went wrong in between. None = OK.
std::vector<std::string> leak_reasons(const options& o, const soak& sk, const tally& d,
                                      const sample& a, const sample& b)
{
    std::vector<std::string> why;
    if (b.mbufs != a.mbufs)
        why.push_back("mbufs in use " + std::to_string(a.mbufs) + " -> " + std::to_string(b.mbufs));
    if (b.heap_allocs != a.heap_allocs || b.heap_bytes != a.heap_bytes)
        why.push_back("DPDK heap " + std::to_string(a.heap_allocs) + " allocs/" +
                      std::to_string(a.heap_bytes) + " B -> " + std::to_string(b.heap_allocs) +
                      "/" + std::to_string(b.heap_bytes));
    const double rss_d = (static_cast<double>(b.rss) - static_cast<double>(a.rss)) / 1048576.0;
    if (rss_d > o.rss_slack_mib) {
        char t[80];
        snprintf(t, sizeof(t), "RSS +%.2f MiB (> %.1f)", rss_d, o.rss_slack_mib);
        why.push_back(t);
    }
    if (b.sessions != a.sessions || b.legs != a.legs || b.flows != a.flows ||
        b.ports_free != a.ports_free || a.sessions != o.base_sessions)
        why.push_back("sessions/legs/flows/ports not back to the long-lived ones");
    if (sk.failed)
        why.push_back(std::to_string(sk.failed) + " requests failed: " + sk.error);
    if (d.created != d.deleted)
        why.push_back("created != deleted");
    if (d.received == 0)
        why.push_back("nothing forwarded");
    if (d.sent != d.received + d.drops + d.exceptions)
        why.push_back("packets unaccounted for: sent " + std::to_string(d.sent) +
                      " != forwarded + " + "dropped + to control");
    if (sk.gen_fail)
        why.push_back("generator failed");
    return why;
}

} // namespace

int run(const options& o)
{
    soak sk(o);
    if (!sk.setup()) {
        fprintf(stderr, "soak: setup failed: %s\n", sk.error.c_str());
        printf("soak: LEAK (setup failed: %s)\n", sk.error.c_str());
        return 1;
    }
    fprintf(stderr,
            "soak: %u long-lived sessions forwarding (aimed at %.2f Mpps); warm-up churn of %u "
            "sessions, then %lu (limit %.0f s), %u requests in flight, 1 in 4 with "
            "AES_CM_128_HMAC_SHA1_80 keys\n",
            o.base_sessions, o.rate_pps / 1e6, o.warmup, static_cast<unsigned long>(o.sessions),
            o.seconds, o.window);
    sk.churn(o.warmup, ~0ull);
    sk.settle();
    const sample a = sk.take();
    const tally start = tally_of(sk);
    sk.max_in_use = 0;
    if (o.inject_leak)
        inject_leak(sk);
    const double el = timed_churn(sk, o, start.received);
    sk.settle();
    const sample b = sk.take();
    const tally d = tally_of(sk) - start;
    print_report(sk, d, el, a, b);

    const std::vector<std::string> why = leak_reasons(o, sk, d, a, b);
    if (why.empty()) {
        printf("soak: OK\n");
        return 0;
    }
    std::string s;
    for (auto& w : why)
        s += (s.empty() ? "" : "; ") + w;
    printf("soak: LEAK (%s)\n", s.c_str());
    return 1;
}

} // namespace isar::bench_soak
