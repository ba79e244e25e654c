// isar-bench TURN modes: see turn_load.h and bench/README.md ("TURN").
#include "bench/load/turn_load.h"
#include "bench/load/turn_rig.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <netinet/in.h>

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

#include "dataplane/dataplane.h"
#include "dataplane/turn_alloc.h"
#include "turn/stun.h"
#include "turn/auth.h"
#include "control/config.h"
#include "control/session_manager.h"
#include "control/turn_manager.h"
#include <ctime>
#include <fstream>
#include <unistd.h>
#include <sys/stat.h>

using json = nlohmann::json;

#include "bench/load/load_common.h" // perf_ctl, fwd_rig

namespace isar::bench_turn {

unsigned seq_no = 0;

namespace {

struct xs {
    uint64_t s = 0x9e3779b97f4a7c15ull;
    uint64_t next()
    {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
};



struct bench : worker_rig {
    const options& o;
    bool chan = true; // turn-channeldata (else turn-indication)
    unsigned nallocs = 0, nifaces = 1, payload = 160;
    std::vector<dp::turn_alloc*> allocs;
    std::vector<dp::turn_peer_table> tables;
    xs rng;
    std::string error;
    uint64_t sent = 0, received = 0, checked = 0, check_fail = 0, out_bytes = 0;
    std::string first_fail;
    uint8_t pattern[2048];
    // The forwarder run after each drain repetition (run_mode), and its
    // packets a repetition.
    bench_load::fwd_rig* fwd = nullptr;
    unsigned fwd_pkts = 0;

    explicit bench(const options& op) : o(op)
    {
        for (unsigned i = 0; i < sizeof(pattern); i++)
            pattern[i] = static_cast<uint8_t>(i * 13 + 5);
    }
    ~bench()
    {
        stop();
        for (auto& p : ports) {
            p->disable_completion();
            p->drain();
        }
        dp.reset(); // stops the ports; allocations are no longer referenced
        for (auto* a : allocs)
            rte_free(a); // trivially destructible
        ports.clear();
    }

    bool setup(unsigned n, unsigned mbufs)
    {
        nallocs = n;
        nifaces = std::max(1u, (n + relays_per_iface - 1) / relays_per_iface);
        unsigned l = 0;
        RTE_LCORE_FOREACH_WORKER(l)
        {
            lcore = l;
            break;
        }
        dp::dp_config dc = turn_dp_config(mbufs, std::max(64u, n + n / 8 + 64), n);
        for (unsigned i = 0; i < nifaces; i++) {
            // TX rings hold a whole drain: a main-lcore stall must not show as tx_full
            auto p = std::make_unique<tport>("tl" + std::to_string(seq_no++), 2, 1u << 17, 1u << 18);
            if (p->port < 0) {
                error = "cannot create ring port";
                return false;
            }
            dc.ifaces.push_back({static_cast<uint16_t>(p->port),
                                 {{4, rte_cpu_to_be_32(iface_ip(i)), {}, 24}}, 0, true});
            ports.push_back(std::move(p));
        }
        dp = std::make_unique<dp::dataplane>();
        if (dp->init(dc, 1, error) != 0)
            return false;
        if (o.tx_free_worker)
            for (auto& p : ports)
                if (!p->enable_completion()) {
                    error = std::string("cannot set up transmit completion: ") + rte_strerror(rte_errno);
                    return false;
                }
        for (unsigned i = 0; i < nifaces; i++)
            for (unsigned j = 0; j < 16; j++) {
                dp->ifc(i).neigh->update(rte_cpu_to_be_32(client_ip(i, j)), host_mac(client_ip(i, j)));
                dp->ifc(i).neigh->update(rte_cpu_to_be_32(peer_ip(i, j)), host_mac(peer_ip(i, j)));
            }
        start();
        return install();
    }

    // Every allocation through the worker's command ring, as turn_manager
    // does: add_alloc, then set_alloc_peers with its permission (and channel).
    bool install()
    {
        allocs.resize(nallocs);
        tables.resize(nallocs);
        std::vector<std::unique_ptr<dp::flow_cmd>> cmds(2 * static_cast<size_t>(nallocs));
        const uint64_t forever = ~0ull >> 1;
        for (unsigned k = 0; k < nallocs; k++) {
            const unsigned i = k % nifaces, j = k / nifaces;
            // From the DPDK heap, as turn_requests.cc allocates them (the
            // worker's TLB reach, as in isard: hugepages, not malloc's 4 KiB).
            void* mem = rte_zmalloc_socket("bench_turn", sizeof(dp::turn_alloc), 64,
                                           static_cast<int>(rte_socket_id()));
            if (mem == nullptr) {
                error = "rte_zmalloc_socket: out of DPDK memory";
                return false;
            }
            auto* a = new (mem) dp::turn_alloc();
            a->client = dp::pack_ep(rte_cpu_to_be_32(client_ip(i, j)), rte_cpu_to_be_16(client_port(j)));
            a->listen_ip_be = rte_cpu_to_be_32(iface_ip(i));
            a->listen_port_be = rte_cpu_to_be_16(listen_port);
            a->iface = static_cast<uint16_t>(i);
            a->relay_ip_be = a->listen_ip_be;
            a->relay_port_be = rte_cpu_to_be_16(static_cast<uint16_t>(relay_base + j));
            a->owner = 0;
            a->id = k + 1;
            for (unsigned b = 0; b < 12; b++)
                a->txid[b] = static_cast<uint8_t>(k * 7 + b);
            allocs[k] = a;
            dp::turn_peer_table& t = tables[k];
            t.nperms = 1;
            t.perms[0].ip_be = rte_cpu_to_be_32(peer_ip(i, j));
            t.perms[0].expiry_tsc = forever;
            if (chan) {
                t.nchans = 1;
                t.chans[0].number = chan_of(j);
                t.chans[0].peer = dp::pack_ep(rte_cpu_to_be_32(peer_ip(i, j)),
                                              rte_cpu_to_be_16(peer_port(j)));
                t.chans[0].expiry_tsc = forever;
            }
        }
        size_t next = 0, done = 0;
        const size_t total = 2 * static_cast<size_t>(nallocs);
        const uint64_t lim = rte_rdtsc() + 60 * o.hz;
        dp::flow_cmd* got[64];
        while (done < total && rte_rdtsc() < lim) {
            while (next < total && next - done < 2048) {
                const unsigned k = static_cast<unsigned>(next / 2);
                auto c = std::make_unique<dp::flow_cmd>();
                c->seq = next;
                c->op = next % 2 == 0 ? dp::cmd_op::add_alloc : dp::cmd_op::set_alloc_peers;
                c->alloc = allocs[k];
                c->peers = &tables[k];
                if (dp->submit(c.get()) != 0)
                    break;
                cmds[next++] = std::move(c);
            }
            const unsigned k = dp->poll_done(got, 64);
            for (unsigned x = 0; x < k; x++) {
                if (got[x]->status != 0 && error.empty())
                    error = "command " + std::to_string(got[x]->seq) + " failed: " +
                            std::to_string(got[x]->status);
                done++;
            }
        }
        if (done < total && error.empty())
            error = "worker did not acknowledge the allocations";
        return error.empty();
    }

    // ---- generator ----------------------------------------------------------
    // Data payload: [alloc k (4)][direction (1)][pattern...]
    void fill_data(uint8_t* d, unsigned k, uint8_t dir)
    {
        memcpy(d, pattern, payload);
        memcpy(d, &k, 4);
        d[4] = dir;
    }
    bool build(rte_mbuf* mb, unsigned k, bool c2p)
    {
        const unsigned i = k % nifaces, j = k / nifaces;
        unsigned ulen; // UDP payload length
        if (!c2p)
            ulen = payload;
        else if (chan)
            ulen = 4 + payload;
        else
            ulen = 20 + 12 + 4 + payload + turn::pad4(payload);
        auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(mb, static_cast<uint16_t>(42 + ulen)));
        if (p == nullptr)
            return false;
        auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
        eth->dst_addr = dp->ifc(i).mac;
        const uint32_t src = c2p ? client_ip(i, j) : peer_ip(i, j);
        eth->src_addr = host_mac(src);
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
        uint8_t* u = p + 42;
        if (!c2p) {
            fill_data(u, k, 1);
        } else if (chan) {
            const uint16_t ch = chan_of(j);
            u[0] = static_cast<uint8_t>(ch >> 8);
            u[1] = static_cast<uint8_t>(ch);
            u[2] = static_cast<uint8_t>(payload >> 8);
            u[3] = static_cast<uint8_t>(payload);
            fill_data(u + 4, k, 0);
        } else {
            uint8_t txid[12];
            const uint64_t r = rng.next();
            memcpy(txid, &r, 8);
            memcpy(txid + 8, &k, 4);
            turn::builder b(u, ulen, turn::send_indication_type, txid);
            b.add_xor_address(turn::attr::xor_peer_address,
                              turn::transport_addr::v4(rte_cpu_to_be_32(peer_ip(i, j)), peer_port(j)));
            uint8_t d[2048];
            fill_data(d, k, 0);
            b.add(turn::attr::data, d, payload);
            if (!b.ok() || b.size() != ulen)
                return false;
        }
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p + 14);
        ip->version_ihl = 0x45;
        ip->type_of_service = 0;
        ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(28 + ulen));
        ip->packet_id = 0;
        ip->fragment_offset = rte_cpu_to_be_16(0x4000);
        ip->time_to_live = 64;
        ip->next_proto_id = IPPROTO_UDP;
        ip->src_addr = rte_cpu_to_be_32(src);
        ip->dst_addr = rte_cpu_to_be_32(iface_ip(i));
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        auto* udp = reinterpret_cast<rte_udp_hdr*>(p + 34);
        udp->src_port = rte_cpu_to_be_16(c2p ? client_port(j) : peer_port(j));
        udp->dst_port = rte_cpu_to_be_16(c2p ? listen_port : static_cast<uint16_t>(relay_base + j));
        udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(8 + ulen));
        udp->dgram_cksum = 0;
        udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
        mb->port = static_cast<uint16_t>(ports[i]->port);
        return true;
    }
    unsigned gen(unsigned ifc, unsigned n)
    {
        rte_mbuf* b[32];
        if (rte_pktmbuf_alloc_bulk(dp->pool(), b, n) != 0)
            return 0;
        for (unsigned x = 0; x < n; x++) {
            // a random allocation of this interface, either direction
            const uint64_t r = rng.next();
            const unsigned per = (nallocs - ifc + nifaces - 1) / nifaces;
            const unsigned k = static_cast<unsigned>((r >> 1) % per) * nifaces + ifc;
            if (!build(b[x], k, (r & 1) != 0) && error.empty())
                error = "generator could not build a packet";
        }
        const unsigned k = rte_ring_sp_enqueue_burst(ports[ifc]->rx, reinterpret_cast<void**>(b), n, nullptr);
        if (k < n)
            rte_pktmbuf_free_bulk(b + k, n - k);
        sent += k;
        return k;
    }

    // ---- sink ------------------------------------------------------------------
    void fail(const std::string& why)
    {
        check_fail++;
        if (first_fail.empty())
            first_fail = why;
    }
    bool check_data(const uint8_t* d, unsigned len, unsigned k, uint8_t dir)
    {
        uint8_t want[2048];
        memcpy(want, pattern, payload);
        memcpy(want, &k, 4);
        want[4] = dir;
        return len == payload && memcmp(d, want, payload) == 0;
    }
    void check(rte_mbuf* m, unsigned ifc)
    {
        checked++;
        const auto* p = rte_pktmbuf_mtod(m, const uint8_t*);
        const unsigned len = rte_pktmbuf_data_len(m);
        if (len < 42 + 5 || m->nb_segs != 1)
            return fail("short packet");
        const auto* eth = reinterpret_cast<const rte_ether_hdr*>(p);
        const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(p + 14);
        const auto* udp = reinterpret_cast<const rte_udp_hdr*>(p + 34);
        const uint8_t* u = p + 42;
        const unsigned ulen = rte_be_to_cpu_16(udp->dgram_len) - 8u;
        if (rte_be_to_cpu_16(ip->total_length) != len - 14 || ulen + 42 != len)
            return fail("IP/UDP length does not match the frame");
        {
            rte_ipv4_hdr h = *ip;
            const uint16_t got = h.hdr_checksum;
            h.hdr_checksum = 0;
            if (rte_ipv4_cksum(&h) != got)
                return fail("IPv4 header checksum wrong");
        }
        {
            // the UDP checksum recomputed from scratch must equal the one sent
            auto* uh = const_cast<rte_udp_hdr*>(udp);
            const uint16_t got = uh->dgram_cksum;
            uh->dgram_cksum = 0;
            const uint16_t want = rte_ipv4_udptcp_cksum(ip, uh);
            uh->dgram_cksum = got;
            if (got != want)
                return fail("UDP checksum wrong");
        }
        if (rte_be_to_cpu_32(ip->src_addr) != iface_ip(ifc) ||
            !rte_is_same_ether_addr(&eth->src_addr, &dp->ifc(ifc).mac))
            return fail("source is not the interface");
        // which allocation and direction: from the relayed port or the listener
        const uint16_t sport = rte_be_to_cpu_16(udp->src_port);
        const uint32_t dip = rte_be_to_cpu_32(ip->dst_addr);
        const rte_ether_addr dmac = host_mac(dip);
        if (!rte_is_same_ether_addr(&eth->dst_addr, &dmac))
            return fail("destination MAC is not the destination's");
        if (sport != listen_port) { // client -> peer: plain UDP from the relayed address
            const unsigned j = sport - relay_base, k = j * nifaces + ifc;
            if (sport < relay_base || k >= nallocs)
                return fail("unknown relayed port");
            if (dip != peer_ip(ifc, j) || rte_be_to_cpu_16(udp->dst_port) != peer_port(j))
                return fail("client->peer: wrong peer address");
            if (!check_data(u, ulen, k, 0))
                return fail("client->peer: payload is not the client's data");
            return;
        }
        // peer -> client: ChannelData or Data indication to the client
        if (ulen < 4)
            return fail("peer->client: too short");
        unsigned k;
        memcpy(&k, chan ? u + 4 : u + 36, 4);
        if (k >= nallocs || k % nifaces != ifc)
            return fail("peer->client: unknown allocation in the data");
        const unsigned j = k / nifaces;
        if (dip != client_ip(ifc, j) || rte_be_to_cpu_16(udp->dst_port) != client_port(j))
            return fail("peer->client: wrong client address");
        if (chan) {
            if (((u[0] << 8) | u[1]) != chan_of(j) || ((u[2] << 8) | u[3]) != static_cast<int>(payload))
                return fail("peer->client: wrong ChannelData header");
            if (!check_data(u + 4, ulen - 4, k, 1))
                return fail("peer->client: ChannelData payload wrong");
            return;
        }
        // Data indication: header, XOR-PEER-ADDRESS, DATA (padded)
        const unsigned want_len = 20 + 12 + 4 + payload + turn::pad4(payload);
        if (ulen != want_len)
            return fail("peer->client: Data indication length " + std::to_string(ulen));
        const uint16_t type = static_cast<uint16_t>((u[0] << 8) | u[1]);
        const unsigned mlen = static_cast<unsigned>((u[2] << 8) | u[3]);
        uint32_t cookie;
        memcpy(&cookie, u + 4, 4);
        if (type != turn::data_indication_type || mlen != ulen - 20 ||
            rte_be_to_cpu_32(cookie) != turn::magic_cookie || memcmp(u + 8, allocs[k]->txid, 8) != 0)
            return fail("peer->client: bad Data indication header");
        const uint8_t* a = u + 20;
        if (((a[0] << 8) | a[1]) != turn::attr::xor_peer_address || ((a[2] << 8) | a[3]) != 8 || a[5] != 1)
            return fail("peer->client: bad XOR-PEER-ADDRESS");
        const uint16_t xport = static_cast<uint16_t>(((a[6] << 8) | a[7]) ^ (turn::magic_cookie >> 16));
        uint32_t xip;
        memcpy(&xip, a + 8, 4);
        if (xport != peer_port(j) || (rte_be_to_cpu_32(xip) ^ turn::magic_cookie) != peer_ip(ifc, j))
            return fail("peer->client: XOR-PEER-ADDRESS is not the peer");
        const uint8_t* d = a + 12;
        if (((d[0] << 8) | d[1]) != turn::attr::data || ((d[2] << 8) | d[3]) != static_cast<int>(payload))
            return fail("peer->client: bad DATA attribute");
        if (!check_data(d + 4, payload, k, 1))
            return fail("peer->client: DATA is not the peer's payload");
        for (unsigned x = 0; x < turn::pad4(payload); x++)
            if (d[4 + payload + x] != 0)
                return fail("peer->client: DATA padding not zero");
    }
    unsigned sink()
    {
        unsigned n = 0;
        rte_mbuf* b[64];
        for (unsigned i = 0; i < nifaces; i++)
            for (unsigned q = 0; q < ports[i]->tx.size(); q++) {
                rte_ring* r = ports[i]->tx[q];
                const unsigned k = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(b), 64, nullptr);
                for (unsigned x = 0; x < k; x++) {
                    out_bytes += rte_pktmbuf_pkt_len(b[x]);
                    if (received + x < 64 || ((received + x) & 255) == 0)
                        check(b[x], i);
                }
                if (k)
                    ports[i]->complete(q, b, k); // freed by the worker (ring_port.h)
                received += k;
                n += k;
            }
        return n;
    }
    uint64_t drops_total()
    {
        uint64_t d = 0;
        for (unsigned i = 0; i < dp::n_drops; i++)
            d += dp::read(wk().stats.drops[i]);
        return d;
    }
    std::string drops_str()
    {
        std::string s;
        for (unsigned i = 0; i < dp::n_drops; i++)
            if (uint64_t v = dp::read(wk().stats.drops[i]))
                s += std::string(s.empty() ? "" : ",") + dp::drop_name(static_cast<dp::drop>(i)) + "=" +
                     std::to_string(v);
        return s;
    }

    // Capacity, as isar-bench's drain phase: RX rings filled with the worker
    // stopped, then it runs and the sink drains; median repetition.
    json drain_phase()
    {
        struct rep {
            double cpp, mpps, gbps;
        };
        std::vector<rep> reps;
        std::vector<double> fwd_v, ratio_v; // the forwarder alongside (fwd)
        uint64_t end = rte_rdtsc() + static_cast<uint64_t>(o.phase_s * static_cast<double>(o.hz));
        do {
            stop();
            unsigned filled = 0;
            for (unsigned round = 0; filled < o.drain_pkts; round++) {
                const unsigned k = gen(round % nifaces, std::min(32u, o.drain_pkts - filled));
                if (k == 0)
                    break;
                filled += k;
            }
            auto& s = wk().stats;
            const uint64_t busy0 = dp::read(s.busy_tsc), tx0 = dp::read(s.tx_pkts);
            const uint64_t d0 = drops_total(), r0 = received, b0 = out_bytes;
            bench_load::perf_ctl("enable\n");
            const uint64_t t0 = rte_rdtsc();
            start();
            uint64_t tl = t0;
            const uint64_t lim = t0 + o.hz;
            while (received - r0 + drops_total() - d0 < filled && rte_rdtsc() < lim)
                if (sink())
                    tl = rte_rdtsc();
            bench_load::perf_ctl("disable\n");
            const uint64_t out = dp::read(s.tx_pkts) - tx0;
            if (out > 0 && tl > t0) {
                const double sec = secs(tl - t0, o.hz);
                reps.push_back({static_cast<double>(dp::read(s.busy_tsc) - busy0) / static_cast<double>(out),
                                static_cast<double>(received - r0) / sec / 1e6,
                                static_cast<double>(out_bytes - b0) * 8 / sec / 1e9});
                if (fwd != nullptr) { // as bench_load's drain phase; not this phase's time
                    stop();
                    const uint64_t f0 = rte_rdtsc();
                    const double f = fwd->rep(fwd_pkts);
                    if (f > 0) {
                        fwd_v.push_back(f);
                        ratio_v.push_back(f / reps.back().cpp);
                    }
                    start();
                    end += rte_rdtsc() - f0;
                }
            }
        } while (rte_rdtsc() < end && reps.size() < 64);
        // settle
        const uint64_t lim = rte_rdtsc() + o.hz / 2;
        while (received + drops_total() < sent && rte_rdtsc() < lim)
            sink();
        json j;
        if (reps.empty())
            return j;
        std::sort(reps.begin(), reps.end(), [](const rep& a, const rep& b) { return a.cpp < b.cpp; });
        const rep& med = reps[reps.size() / 2];
        j["mpps_per_core"] = med.mpps;
        j["cycles_per_packet"] = med.cpp;
        j["cycles_per_packet_best"] = reps.front().cpp;
        j["capacity_mpps"] = static_cast<double>(o.hz) / med.cpp / 1e6;
        j["gbps"] = med.gbps;
        j["repetitions"] = reps.size();
        if (!ratio_v.empty()) {
            std::sort(fwd_v.begin(), fwd_v.end());
            std::sort(ratio_v.begin(), ratio_v.end());
            j["fwd_alongside_cycles"] = fwd_v[fwd_v.size() / 2];
            j["fwd_alongside_ratio"] = ratio_v[ratio_v.size() / 2];
        }
        return j;
    }
};

} // namespace

void run_mode(const options& o, const std::string& mode, unsigned nallocs, const json& baselines,
              json& out, std::vector<std::string>& errors)
{
    auto b = std::make_unique<bench>(o);
    if (mode == "turn-channeldata")
        b->chan = true;
    else if (mode == "turn-indication")
        b->chan = false;
    else {
        errors.push_back("unknown mode " + mode);
        return;
    }
    fprintf(stderr, "isar-bench: %s, %u allocations: installing...\n", mode.c_str(), nallocs);
    const uint64_t t0 = rte_rdtsc();
    const bool ok = b->setup(nallocs, std::max(65535u, o.drain_pkts * 2 + 65535));
    const double setup_s = secs(rte_rdtsc() - t0, o.hz);
    for (unsigned payload : o.payloads) {
        json rec{{"mode", mode}, {"payload", payload}, {"allocations", nallocs},
                 {"interfaces", b->nifaces}, {"mix", "50% client->peer, 50% peer->client"}};
        std::string err = ok ? "" : b->error;
        if (ok) {
            b->payload = payload;
            b->checked = b->check_fail = 0;
            b->first_fail.clear();
            const uint64_t sent0 = b->sent, recv0 = b->received, d0 = b->drops_total();
            std::unique_ptr<bench_load::fwd_rig> rig;
            if (o.fwd_alongside) {
                bench_load::options lo;
                lo.tx_free_worker = o.tx_free_worker;
                lo.drain_pkts = o.drain_pkts;
                b->fwd_pkts = bench_load::fwd_alongside_pkts(lo);
                rig = std::make_unique<bench_load::fwd_rig>(lo, payload, b->fwd_pkts);
                b->fwd = rig->ok() ? rig.get() : nullptr;
            }
            json cap = b->drain_phase();
            b->fwd = nullptr;
            if (rig && !rig->ok()) {
                rec["fwd_alongside_error"] = "no room for the forwarder's port or pool";
                fprintf(stderr, "isar-bench:          forwarder alongside: no room for its port or pool\n");
            }
            const int64_t loss = static_cast<int64_t>(b->sent - sent0) -
                                 static_cast<int64_t>(b->received - recv0) -
                                 static_cast<int64_t>(b->drops_total() - d0);
            if (!b->error.empty())
                err = b->error;
            else if (cap.empty())
                err = "no output";
            else if (b->check_fail)
                err = "output check failed (" + std::to_string(b->check_fail) + "/" +
                      std::to_string(b->checked) + "): " + b->first_fail;
            else if (b->checked == 0)
                err = "no output to check";
            else if (loss != 0 || b->drops_total() != d0)
                err = "packets lost or dropped: loss=" + std::to_string(loss) + " drops=" + b->drops_str();
            if (err.empty()) {
                rec.update(cap);
                rec["checked"] = b->checked;
                rec["setup_s"] = setup_s;
                rec["allocs_installed_per_s"] = nallocs / setup_s;
                for (const auto& x : baselines)
                    if (x.value("name", "") == "dpdk-forwarder" && x.value("payload", 0u) == payload)
                        rec["fwd_ratio"] = cap["mpps_per_core"].get<double>() / x["mpps_per_core"].get<double>();
                fprintf(stderr,
                        "isar-bench:   %4u B  %6.2f Mpps (cap %6.2f) %6.1f cyc/pkt %6.2f Gbit/s  "
                        "/fwd %s  checked %lu\n",
                        payload, cap["mpps_per_core"].get<double>(), cap["capacity_mpps"].get<double>(),
                        cap["cycles_per_packet"].get<double>(), cap["gbps"].get<double>(),
                        rec.contains("fwd_ratio") ? std::to_string(rec["fwd_ratio"].get<double>()).c_str() : "-",
                        static_cast<unsigned long>(b->checked));
                if (cap.contains("fwd_alongside_ratio"))
                    fprintf(stderr, "isar-bench:          forwarder alongside %.1f cyc/pkt: %.2fx\n",
                            cap["fwd_alongside_cycles"].get<double>(),
                            cap["fwd_alongside_ratio"].get<double>());
            }
        }
        if (!err.empty()) {
            rec["error"] = err;
            errors.push_back(mode + "/" + std::to_string(nallocs) + "/" + std::to_string(payload) + ": " + err);
            fprintf(stderr, "isar-bench:   %4u B ERROR %s\n", payload, err.c_str());
        }
        out.push_back(rec);
    }
}

} // namespace isar::bench_turn
