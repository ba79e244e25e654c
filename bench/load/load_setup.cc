// isar-bench scenario set-up (load_scenario.h): the worker lcore, the ring
// ports and the dataplane, sessions through the control plane (or flow
// commands for the IPv6 modes), and the generator's senders.
#include "bench/load/load_scenario.h"

#include <algorithm>
#include <cstdio>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_mempool.h>

namespace isar::bench_load {

int scenario::wk_main(void* a)
{
    crypto::prepare_thread();
    return static_cast<dp::worker*>(a)->run();
}
void scenario::start()
{
    if (running)
        return;
    wk().stop.store(false);
    rte_eal_remote_launch(wk_main, &wk(), lcore);
    running = true;
}
void scenario::stop()
{
    if (!running)
        return;
    wk().stop.store(true);
    rte_eal_wait_lcore(lcore);
    running = false;
}
void scenario::teardown()
{
    stop();
    cmds.reset();
    nm.reset();
    sm.reset();
    senders.clear();
    check_ctx.clear();
    for (auto& p : ports) {
        p->disable_completion();
        p->drain(); // the mbufs belong to dp's pool
    }
    dp.reset();
    direct.clear(); // the worker that referenced them is gone
    ports.clear();
}

bool scenario::setup(unsigned nlegs, unsigned mbufs)
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
        // TX rings hold two drains' worth (as turn_load's): a main-lcore
        // stall while the faster worker drains must not show as tx_full.
        auto p = std::make_unique<ring_port>("lb" + std::to_string(port_seq++), 2, rx_size,
                                             1u << 18);
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
    if (o.tx_free_worker)
        for (auto& p : ports)
            if (!p->enable_completion()) {
                error = std::string("cannot set up transmit completion: ") + rte_strerror(rte_errno);
                return false;
            }
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

std::string scenario::create_line(unsigned s, unsigned per_sess, unsigned ifc, unsigned k) const
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
bool scenario::install_direct()
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
bool scenario::create_sessions(unsigned per_sess)
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
bool scenario::make_senders()
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

} // namespace isar::bench_load
