#include "dataplane/dataplane.h"

#include "crypto/srtp_context.h"
#include "dataplane/kernel_iface.h"
#include "dataplane/turn_alloc.h"

#include <rte_cycles.h>

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string_view>

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_thread.h>

namespace isar::dp {

namespace {
std::atomic<unsigned> next_instance{0};

std::string name_of(unsigned id, const char* what, unsigned a = 0, unsigned b = 0)
{
    // Never truncated: a name too long for DPDK fails its create (ENAMETOOLONG)
    // instead of colliding with another.
    char buf[64];
    snprintf(buf, sizeof(buf), "isar%u_%s%u_%u", id, what, a, b);
    return buf;
}

// Virtual devices whose queue count is fixed by their arguments: every RX
// queue they have must be polled or its packets are lost.
bool fixed_queue_driver(std::string_view drv)
{
    return drv == "net_af_packet" || drv == "net_ring" || drv == "net_pcap" ||
           drv == "net_memif" || drv == "net_null";
}

// Virtual devices whose RX and TX queues come in pairs: net_tap refuses
// unequal counts, and each pair is one kernel queue of the tap that the
// kernel may deliver any flow to, so every one of them must be polled.
bool paired_queue_driver(std::string_view drv)
{
    return drv == "net_tap";
}

// The RX queues of `port` (`nrxq`) for `nworkers` workers, and whether the
// port has the `ntxq` TX queues it needs: 0, or a negative errno with `err`.
int queue_counts(uint16_t port, const rte_eth_dev_info& info, const std::string& drv,
                 unsigned nworkers, uint16_t ntxq, uint16_t& nrxq, std::string& err)
{
    if (info.max_tx_queues < ntxq) {
        err = "port " + std::to_string(port) + " (" + drv + ") has " +
              std::to_string(info.max_tx_queues) + " TX queue(s); Isar needs one per worker plus " +
              "one for the control lcore = " + std::to_string(ntxq);
        if (drv == "net_af_packet")
            err += " (add qpairs=" + std::to_string(ntxq) + " to the vdev arguments)";
        return -EINVAL;
    }
    nrxq = fixed_queue_driver(drv)    ? info.max_rx_queues
           : paired_queue_driver(drv) ? ntxq
                                      : std::min<uint16_t>(info.max_rx_queues, nworkers);
    if (nrxq > info.max_rx_queues) {
        err = "port " + std::to_string(port) + " (" + drv + ") has " +
              std::to_string(info.max_rx_queues) + " RX queue(s); it needs as many as TX " +
              "queues = " + std::to_string(nrxq);
        return -EINVAL;
    }
    if (nrxq == 0) {
        err = "port " + std::to_string(port) + " (" + drv + ") has no RX queue";
        return -EINVAL;
    }
    if (nrxq > nworkers * max_rxq_per_worker) {
        err = "port " + std::to_string(port) + " has too many RX queues for the workers";
        return -EINVAL;
    }
    return 0;
}

// The RX queues (mbufs from `pool`) and TX queues of a configured port, with
// the descriptor counts the device adjusts `rx_desc` and `tx_desc` to.
int setup_queues(uint16_t port, uint16_t nrxq, uint16_t ntxq, uint16_t rx_desc, uint16_t tx_desc,
                 rte_mempool* pool, std::string& err)
{
    uint16_t nrxd = rx_desc, ntxd = tx_desc;
    rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrxd, &ntxd);
    const int socket = rte_eth_dev_socket_id(port);
    for (uint16_t q = 0; q < nrxq; q++) {
        int rc = rte_eth_rx_queue_setup(port, q, nrxd, socket, nullptr, pool);
        if (rc != 0) {
            err = "port " + std::to_string(port) + ": RX queue " + std::to_string(q) +
                  " setup failed: " + strerror(-rc);
            return rc;
        }
    }
    for (uint16_t q = 0; q < ntxq; q++) {
        int rc = rte_eth_tx_queue_setup(port, q, ntxd, socket, nullptr);
        if (rc != 0) {
            err = "port " + std::to_string(port) + ": TX queue " + std::to_string(q) +
                  " setup failed: " + strerror(-rc);
            return rc;
        }
    }
    return 0;
}

// The port's line in the start-up log (dataplane::port_desc): driver,
// queues and what its checksum offloads do.
std::string port_text(uint16_t port, const std::string& drv, uint16_t nrxq, uint16_t ntxq,
                      const iface& ifc, const rte_eth_conf& conf)
{
    constexpr uint64_t rx_cksum = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
    std::string desc = "port " + std::to_string(port) + " (" + drv + "), " + std::to_string(nrxq) +
                       " RX/" + std::to_string(ntxq) + " TX queues: TX checksum offload " +
                       (ifc.tx_cksum_offload ? "on" : "off") + ", RX checksum verification " +
                       ((conf.rxmode.offloads & rx_cksum) == rx_cksum ? "on" : "off");
    if (ifc.rx_partial_cksum)
        desc += ", RX checksums may be partial";
    return desc;
}

// A policer for `pps` packets per second over all workers: each worker
// polices its share, with bursts of max(16, share / 10) but never more than
// half the ring they go to holds (a burst the ring cannot take would be lost
// as exception_full before the policer counted it). 0 = unpoliced.
gcra make_policer(uint32_t pps, unsigned nworkers, uint32_t ring_size)
{
    gcra g;
    if (pps == 0)
        return g;
    const uint64_t per_worker = std::max<uint64_t>(1, pps / nworkers);
    g.interval_tsc = std::max<uint64_t>(1, rte_get_tsc_hz() / per_worker);
    g.burst_tsc = g.interval_tsc * std::min<uint64_t>(std::max<uint64_t>(16, per_worker / 10),
                                                      std::max<uint32_t>(16, ring_size / 2));
    return g;
}

void set_policers(worker& w, const dp_config& cfg, unsigned nworkers)
{
    auto set = [&](exc_policer p, uint32_t pps) {
        w.exc_police[static_cast<unsigned>(p)] = make_policer(pps, nworkers, cfg.ring_size);
    };
    set(exc_policer::arp_reply, cfg.arp_reply_pps);
    set(exc_policer::arp_request, cfg.arp_request_pps);
    set(exc_policer::arp_other, cfg.arp_other_pps);
    set(exc_policer::icmp, cfg.icmp_pps);
    set(exc_policer::stun, cfg.stun_pps);
    set(exc_policer::dtls, cfg.dtls_pps);
    set(exc_policer::nd, cfg.nd_pps);
}

int worker_main(void* arg)
{
    auto* w = static_cast<worker*>(arg);
    char name[16];
    snprintf(name, sizeof(name), "isar-wk-%u", w->index);
    rte_thread_setname(pthread_self(), name);
    // Per-thread crypto engine state (intel-ipsec-mb managers): init, not per
    // packet. On failure ipsec_mb contexts drop (counted) on this worker.
    crypto::prepare_thread();
    return w->run();
}
} // namespace

dataplane::dataplane()
{
    for (auto& i : iface_of_port_)
        i = -1;
}

dataplane::~dataplane()
{
    stop();
    for (auto& w : workers_) {
        for (unsigned j = 0; j < max_workers; j++)
            rte_ring_free(w->handoff_out[j]);
        rte_ring_free(w->cmd_ring);
        rte_ring_free(w->done_ring);
        rte_ring_free(w->exc_ring);
        rte_ring_free(w->prio_ring);
        rte_ring_free(w->turn_ring);
        for (unsigned t = 0; t < w->nstreams; t++) {
            rte_ring_free(w->stream_in[t]);
            rte_ring_free(w->stream_out[t]);
        }
        w->flows.release();
        w->turn_clients.release();
    }
    workers_.clear();
    for (port_owner_map* m : maps_)
        rte_free(m);
    maps_.clear();
    owner_ptrs_.clear();
    // The taps hold mbufs in their RX rings: removed before the pool.
    for (uint16_t p : kernel_ports_)
        kernel_tap_remove(p);
    kernel_ports_.clear();
    if (pool_ != nullptr)
        rte_mempool_free(pool_);
}

int dataplane::setup_port(iface& ifc, const iface_config& ic, std::string& err)
{
    const uint16_t port = ic.port_id;
    if (!rte_eth_dev_is_valid_port(port)) {
        err = "interface port " + std::to_string(port) + " does not exist: EAL found " +
              std::to_string(rte_eth_dev_count_avail()) +
              " port(s); add a --vdev (e.g. net_af_packet0,iface=IF) or bind a NIC to vfio-pci";
        return -ENODEV;
    }
    rte_eth_dev_info info;
    int rc = rte_eth_dev_info_get(port, &info);
    if (rc != 0) {
        err = "port " + std::to_string(port) + ": cannot read device info: " + strerror(-rc);
        return rc;
    }
    const std::string drv = info.driver_name ? info.driver_name : "?";
    const uint16_t ntxq = static_cast<uint16_t>(nworkers_ + 1);
    uint16_t nrxq = 0;
    rc = queue_counts(port, info, drv, nworkers_, ntxq, nrxq, err);
    if (rc != 0)
        return rc;

    rte_eth_conf conf{};
    // Checksums: verified by the NIC on receive where it can (the flags feed
    // classify and rewrite_udp4), computed by it on transmit where it can.
    conf.rxmode.offloads = info.rx_offload_capa &
                           (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM);
    constexpr uint64_t tx_cksum = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
    if (ic.tx_cksum_offload && (info.tx_offload_capa & tx_cksum) == tx_cksum) {
        conf.txmode.offloads = tx_cksum;
        ifc.tx_cksum_offload = true;
    }
    ifc.rx_partial_cksum = drv == "net_af_packet";
    const bool rss_dst = setup_rss(ifc.index, info, nrxq, conf);
    if (!rss_dst && nrxq > 1 && info.flow_type_rss_offloads != 0) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf =
                (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    }
    rc = rte_eth_dev_configure(port, nrxq, ntxq, &conf);
    if (rc != 0) {
        err = "port " + std::to_string(port) + " (" + drv + "): configure failed: " +
              strerror(-rc);
        return rc;
    }
    rc = setup_queues(port, nrxq, ntxq, cfg_.rx_desc, cfg_.tx_desc, pool_, err);
    if (rc != 0)
        return rc;
    // No RX flush after start: a pcap or ring port may already hold the
    // packets the operator wants relayed.
    rc = rte_eth_dev_start(port);
    if (rc != 0) {
        err = "port " + std::to_string(port) + " (" + drv + "): start failed: " + strerror(-rc);
        return rc;
    }
    start_rss(ifc.index, port, info, nrxq, rss_dst);
    rte_eth_macaddr_get(port, &ifc.mac);
    uint16_t mtu = 0;
    if (rte_eth_dev_get_mtu(port, &mtu) == 0 && mtu != 0)
        ifc.mtu = mtu;
    nrxq_.push_back(nrxq);
    port_desc_.push_back(port_text(port, drv, nrxq, ntxq, ifc, conf));
    return 0;
}

// The kernel interface of `ifc` (kernel_iface.h): a net_tap with the port's
// MAC and MTU and one queue pair per worker, configured before it starts.
int dataplane::setup_kernel(iface& ifc, const iface_config& ic, std::string& err)
{
    kernel_iface_spec ks;
    ks.name = ic.kernel_iface.empty() ? "isar" + std::to_string(ic.port_id) : ic.kernel_iface;
    ks.mac = ifc.mac;
    // The kernel interface is IPv4 only: the interface's first IPv4 address.
    if (ifc.laddr4 == no_laddr) {
        err = "interface " + std::to_string(ifc.index) +
              ": a kernel interface needs an IPv4 address (it is IPv4 only)";
        return -EINVAL;
    }
    ks.ip_be = ifc.ip_be;
    ks.prefix_len = laddrs_[ifc.laddr4].prefix_len;
    ks.gateway_be = ic.gateway_be;
    // What the kernel sends must fit one mbuf (the worker sends single
    // segments): with a jumbo port MTU the kernel's is lower, and its TCP
    // MSS follows.
    ks.mtu = std::min<uint32_t>(ifc.mtu, RTE_MBUF_DEFAULT_DATAROOM - RTE_ETHER_HDR_LEN);
    uint16_t port = 0;
    int rc = kernel_tap_create(ks, port, err);
    if (rc != 0)
        return rc;
    kernel_ports_.push_back(port);
    if ((rc = kernel_iface_configure(ks, err)) != 0)
        return rc;
    // No offloads: the kernel computes every checksum of what it sends (a
    // tap without TUNSETOFFLOAD has no checksum or TSO features) and checks
    // those of what it receives.
    const auto nq = static_cast<uint16_t>(nworkers_);
    rte_eth_conf conf{};
    rc = rte_eth_dev_configure(port, nq, nq, &conf);
    if (rc != 0) {
        err = "kernel interface " + ks.name + ": configure with " + std::to_string(nq) +
              " queue pair(s) failed: " + strerror(-rc);
        return rc;
    }
    // net_tap's RX "descriptors" are the mbufs one frame is read into (its
    // scatter list), held per queue: one frame of the MTU above needs one.
    uint16_t nrxd = 2, ntxd = 512;
    rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrxd, &ntxd);
    const int socket = rte_eth_dev_socket_id(port);
    for (uint16_t q = 0; q < nq && rc == 0; q++) {
        rc = rte_eth_rx_queue_setup(port, q, nrxd, socket, nullptr, pool_);
        if (rc == 0)
            rc = rte_eth_tx_queue_setup(port, q, ntxd, socket, nullptr);
    }
    if (rc == 0)
        rc = rte_eth_dev_start(port);
    if (rc != 0) {
        err = "kernel interface " + ks.name + ": queue setup or start failed: " + strerror(-rc);
        return rc;
    }
    if ((rc = kernel_iface_up(ks, err)) != 0)
        return rc;
    ifc.kernel = true;
    ifc.kernel_all = ic.kernel_all;
    ifc.kernel_port = port;
    char ip[INET_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET, &ks.ip_be, ip, sizeof(ip));
    port_desc_.back() += "; kernel interface " + ks.name + " (port " + std::to_string(port) +
                         ", net_tap, " + std::to_string(nq) + " queue pair(s), " + ip + "/" +
                         std::to_string(ks.prefix_len) + ", NOARP, forwards " +
                         (ic.kernel_all ? "all but the relay's" : "TURN TCP") + ")";
    return 0;
}

int dataplane::init(const dp_config& cfg, unsigned nworkers, std::string& err)
{
    cfg_ = cfg;
    id_ = next_instance.fetch_add(1);
    if (nworkers == 0)
        nworkers = rte_lcore_count() > 1 ? rte_lcore_count() - 1 : 0;
    if (nworkers == 0) {
        err = "no worker lcore: give EAL at least two lcores (e.g. -l 0-1); the first runs "
              "the control plane, the others forward packets";
        return -EINVAL;
    }
    if (nworkers > max_workers) {
        err = "too many worker lcores: " + std::to_string(nworkers) + " > " +
              std::to_string(max_workers) + " (meson option max_workers)";
        return -EINVAL;
    }
    if (cfg.ifaces.empty() || cfg.ifaces.size() > max_ifaces) {
        err = "between 1 and " + std::to_string(max_ifaces) + " interfaces are needed";
        return -EINVAL;
    }
    nworkers_ = nworkers;

    const unsigned cache = 256;
    worker_sockets();
    // NUMA: the packet buffers where the first port DMAs them (one pool:
    // ports on several sockets share it).
    int pool_sock = rte_eth_dev_is_valid_port(cfg.ifaces.empty() ? 0 : cfg.ifaces[0].port_id)
                            ? rte_eth_dev_socket_id(cfg.ifaces[0].port_id)
                            : -1;
    if (pool_sock < 0)
        pool_sock = static_cast<int>(rte_socket_id());
    pool_ = rte_pktmbuf_pool_create(name_of(id_, "pool").c_str(), cfg.mbufs, cache, 0,
                                    RTE_MBUF_DEFAULT_BUF_SIZE, pool_sock);
    if (pool_ == nullptr) {
        err = std::string("cannot create the mbuf pool (") + std::to_string(cfg.mbufs) +
              " mbufs): " + rte_strerror(rte_errno) +
              "; reserve hugepages or give EAL more memory (-m) with --no-huge";
        return -ENOMEM;
    }

    ifaces_.resize(cfg.ifaces.size());
    own_.assign(cfg.ifaces.size(), own_mode::single);
    own_desc_.assign(cfg.ifaces.size(), std::string());
    rss_.assign(cfg.ifaces.size(), rss_layout{});
    for (unsigned i = 0; i < cfg.ifaces.size(); i++) {
        const iface_config& ic = cfg.ifaces[i];
        iface& f = ifaces_[i];
        f.index = static_cast<uint16_t>(i);
        f.port_id = ic.port_id;
        f.gateway_be = ic.gateway_be;
        f.has_gateway6 = ic.has_gateway6;
        f.gateway6 = ic.gateway6;
        if (const int rc = setup_addrs(f, ic, err); rc != 0)
            return rc;
        if (ic.port_id >= RTE_MAX_ETHPORTS || iface_of_port_[ic.port_id] >= 0) {
            err = "interface " + std::to_string(i) + ": port " + std::to_string(ic.port_id) +
                  " is invalid or used twice";
            return -EINVAL;
        }
        neigh_.push_back(std::make_unique<neighbor_table>(cfg.neighbors));
        f.neigh = neigh_.back().get();
        int rc = setup_port(f, ic, err);
        if (rc == 0 && ic.kernel)
            rc = setup_kernel(f, ic, err);
        if (rc != 0)
            return rc;
        iface_of_port_[ic.port_id] = static_cast<int16_t>(i);
    }
    ports_started_ = true;

    for (unsigned w = 0; w < nworkers_; w++) {
        const int rc = make_worker(w, cfg, err);
        if (rc != 0)
            return rc;
    }
    int rc = make_rings(cfg, err);
    if (rc == 0)
        rc = deal_queues(err);
    return rc != 0 ? rc : build_owner_maps(err);
}

// Interface f's address slots, appended to laddrs_; ip_be/mask_be/laddr4
// are its first IPv4 address, more4_* its other IPv4 addresses.
int dataplane::setup_addrs(iface& f, const iface_config& ic, std::string& err)
{
    const std::string what = "interface " + std::to_string(f.index) + ": ";
    if (ic.addrs.empty() || ic.addrs.size() > max_laddrs_per_iface) {
        err = what + "between 1 and " + std::to_string(max_laddrs_per_iface) +
              " addresses are needed";
        return -EINVAL;
    }
    f.laddr_first = static_cast<uint16_t>(laddrs_.size());
    f.nladdr = static_cast<uint16_t>(ic.addrs.size());
    for (const addr_config& a : ic.addrs) {
        if ((a.family != 4 && a.family != 6) || a.prefix_len > (a.family == 4 ? 32 : 128)) {
            err = what + "bad address family or prefix length";
            return -EINVAL;
        }
        local_addr l;
        l.family = a.family;
        l.prefix_len = a.prefix_len;
        l.iface = f.index;
        if (a.family == 4) {
            l.ip4_be = a.ip_be;
            l.mask4_be = rte_cpu_to_be_32(a.prefix_len == 0 ? 0 : ~0u << (32 - a.prefix_len));
            if (f.laddr4 == no_laddr) {
                f.laddr4 = static_cast<uint16_t>(laddrs_.size());
                f.ip_be = l.ip4_be;
                f.mask_be = l.mask4_be;
            } else {
                f.more4_ip_be[f.nmore4] = l.ip4_be;
                f.more4_mask_be[f.nmore4] = l.mask4_be;
                f.nmore4++;
            }
        } else {
            l.ip6 = a.ip6;
        }
        laddrs_.push_back(l);
    }
    return 0;
}

// Worker `w`: its classification context, policers, rings and tables.
int dataplane::make_worker(unsigned w, const dp_config& cfg, std::string& err)
{
    auto wk = std::make_unique<worker>();
    wk->index = w;
    wk->nworkers = nworkers_;
    wk->txq = static_cast<uint16_t>(w);
    wk->pool = pool_;
    wk->ifaces = ifaces_.data();
    wk->nifaces = nifaces();
    wk->laddrs = laddrs_.data();
    wk->nladdrs = nladdrs();
    wk->strict_source = cfg.strict_source;
    wk->idle_sleep_us = cfg.idle_sleep_us;
    wk->spread_min_flows = flows_in_cpu_cache(2, nworkers_, wcpu_[w]);
    wk->spread_max_flows = flows_in_cpu_cache(3, nworkers_, wcpu_[w]);
    wk->init_rtp_clocks(rte_get_tsc_hz());
    wk->cctx.ifaces = ifaces_.data();
    wk->cctx.laddrs = laddrs_.data();
    wk->cctx.nladdrs = static_cast<uint16_t>(nladdrs());
    wk->cctx.iface_of_port = iface_of_port_;
    wk->cctx.nports = RTE_MAX_ETHPORTS;
    wk->cctx.nworkers = static_cast<uint16_t>(nworkers_);
    wk->cctx.relay_min = cfg.relay_min;
    wk->cctx.relay_max = cfg.relay_max;
    for (uint16_t p : cfg.turn_ports)
        if (wk->cctx.nturn_ports < classify_ctx::max_turn_ports)
            wk->cctx.turn_ports[wk->cctx.nturn_ports++] = p;
    for (uint16_t p : cfg.stream_ports)
        if (wk->cctx.nstream_ports < classify_ctx::max_stream_ports)
            wk->cctx.stream_ports[wk->cctx.nstream_ports++] = p;
    wk->kernel_police = make_policer(cfg.kernel_pps, nworkers_, cfg.ring_size);
    wk->turn_police = make_policer(cfg.turn_requests_per_s, nworkers_, cfg.ring_size);
    set_policers(*wk, cfg, nworkers_);
    // NUMA: what the worker reads on its lcore's socket.
    const int sock = wsock_[w];
    const unsigned spsc = RING_F_SP_ENQ | RING_F_SC_DEQ;
    wk->cmd_ring = rte_ring_create(name_of(id_, "cmd", w).c_str(), cfg.ring_size, sock, spsc);
    wk->done_ring =
            rte_ring_create(name_of(id_, "done", w).c_str(), cfg.ring_size, sock, spsc);
    wk->exc_ring = rte_ring_create(name_of(id_, "exc", w).c_str(), cfg.ring_size, sock, spsc);
    wk->prio_ring =
            rte_ring_create(name_of(id_, "prio", w).c_str(), cfg.ring_size, sock, spsc);
    wk->turn_ring =
            rte_ring_create(name_of(id_, "turn", w).c_str(), cfg.ring_size, sock, spsc);
    // Allocations take relay ports too: the flow table holds both.
    const int ft = wk->flows.init(
            nladdrs(), std::max<uint32_t>(cfg.max_legs + cfg.max_allocations, 64), sock);
    const int ct = cfg.turn_ports.empty()
                           ? 0
                           : wk->turn_clients.init(name_of(id_, "tcl", w).c_str(),
                                                   std::max<uint32_t>(cfg.max_allocations, 64),
                                                   sock);
    if (!wk->cmd_ring || !wk->done_ring || !wk->exc_ring || !wk->prio_ring || !wk->turn_ring ||
        ft != 0 ||
        ct != 0) {
        err = std::string("cannot create worker rings or flow table: ") +
              rte_strerror(rte_errno) + " (max_legs=" + std::to_string(cfg.max_legs) +
              ", turn max_allocations=" + std::to_string(cfg.max_allocations) + ")";
        workers_.push_back(std::move(wk));
        return -ENOMEM;
    }
    workers_.push_back(std::move(wk));
    return 0;
}

// The handoff rings between every two workers, and the stream rings between
// every stream thread and every worker.
int dataplane::make_rings(const dp_config& cfg, std::string& err)
{
    for (unsigned a = 0; a < nworkers_; a++) {
        for (unsigned b = 0; b < nworkers_; b++) {
            if (a == b)
                continue;
            // On the socket of the worker that dequeues (and owns the packets).
            rte_ring* r = rte_ring_create(name_of(id_, "ho", a, b).c_str(), cfg.ring_size,
                                          wsock_[b],
                                          RING_F_SP_ENQ | RING_F_SC_DEQ);
            if (r == nullptr) {
                err = std::string("cannot create handoff ring: ") + rte_strerror(rte_errno);
                return -ENOMEM;
            }
            workers_[a]->handoff_out[b] = r;
            workers_[b]->handoff_in[a] = r;
        }
    }
    // TURN over TCP/TLS: a ring each way between every stream thread and
    // every worker (stream_ring.h).
    for (unsigned t = 0; t < cfg.stream_threads && t < max_stream_threads; t++) {
        for (unsigned w = 0; w < nworkers_; w++) {
            const unsigned spsc = RING_F_SP_ENQ | RING_F_SC_DEQ;
            const int sock = wsock_[w];
            rte_ring* in = rte_ring_create(name_of(id_, "si", t, w).c_str(), cfg.ring_size, sock,
                                           spsc);
            rte_ring* out = rte_ring_create(name_of(id_, "so", w, t).c_str(), cfg.ring_size, sock,
                                            spsc);
            workers_[w]->stream_in[t] = in;
            workers_[w]->stream_out[t] = out;
            workers_[w]->nstreams = t + 1;
            if (in == nullptr || out == nullptr) {
                err = std::string("cannot create stream rings: ") + rte_strerror(rte_errno);
                return -ENOMEM;
            }
        }
    }
    return 0;
}

// Deals the ports' RX queues round-robin over the workers, and queue w of
// each kernel interface to worker w.
int dataplane::deal_queues(std::string& err)
{
    // Deal RX queues round-robin over the workers.
    unsigned next = 0;
    for (unsigned i = 0; i < ifaces_.size(); i++) {
        for (uint16_t q = 0; q < nrxq_[i]; q++) {
            worker& w = *workers_[next++ % nworkers_];
            if (w.nrxq == max_rxq_per_worker) {
                err = "too many RX queues: a worker polls at most " +
                      std::to_string(max_rxq_per_worker) + " (interfaces x queues / workers)";
                return -EINVAL;
            }
            w.rxqs[w.nrxq++] = {ifaces_[i].port_id, q};
        }
        // What the kernel sends: worker w polls queue w of the tap (and
        // sends to the kernel on its queue w).
        for (unsigned k = 0; ifaces_[i].kernel && k < nworkers_; k++) {
            worker& w = *workers_[k];
            if (w.nrxq == max_rxq_per_worker) {
                err = "too many RX queues: a worker polls at most " +
                      std::to_string(max_rxq_per_worker);
                return -EINVAL;
            }
            w.rxqs[w.nrxq++] = {ifaces_[i].kernel_port, static_cast<uint16_t>(k),
                                static_cast<int16_t>(i)};
        }
    }
    return 0;
}

int dataplane::launch(std::string& err)
{
    unsigned w = 0;
    unsigned lcore;
    RTE_LCORE_FOREACH_WORKER(lcore)
    {
        if (w == nworkers_)
            break;
        int rc = rte_eal_remote_launch(worker_main, workers_[w].get(), lcore);
        if (rc != 0) {
            err = "cannot launch worker " + std::to_string(w) + " on lcore " +
                  std::to_string(lcore) + ": " + strerror(-rc);
            stop();
            return rc;
        }
        lcores_.push_back(lcore);
        w++;
    }
    if (w < nworkers_) {
        err = "not enough EAL worker lcores for " + std::to_string(nworkers_) + " workers";
        stop();
        return -EINVAL;
    }
    launched_ = true;
    return 0;
}

void dataplane::stop()
{
    for (auto& w : workers_)
        w->stop.store(true);
    for (unsigned lc : lcores_)
        rte_eal_wait_lcore(lc);
    lcores_.clear();
    launched_ = false;
    if (ports_started_) {
        // Free whatever is still queued towards the control lcore.
        rte_mbuf* m[64];
        unsigned n;
        while ((n = poll_exceptions(m, 64)) > 0)
            rte_pktmbuf_free_bulk(m, n);
        while ((n = poll_turn(m, 64)) > 0)
            rte_pktmbuf_free_bulk(m, n);
        for (auto& w : workers_) {
            for (unsigned j = 0; j < max_workers; j++) {
                if (w->handoff_out[j] == nullptr)
                    continue;
                while ((n = rte_ring_sc_dequeue_burst(w->handoff_out[j],
                                                      reinterpret_cast<void**>(m), 64,
                                                      nullptr)) > 0)
                    rte_pktmbuf_free_bulk(m, n);
            }
        }
        for (auto& f : ifaces_) {
            rte_eth_dev_stop(f.port_id);
            if (f.kernel)
                rte_eth_dev_stop(f.kernel_port);
        }
        ports_started_ = false;
    }
}

unsigned dataplane::mbufs_in_use() const noexcept
{
    return pool_ ? rte_mempool_in_use_count(pool_) : 0;
}

int dataplane::submit(flow_cmd* c) noexcept
{
    const unsigned owner = c->alloc != nullptr ? c->alloc->owner : c->sess->owner;
    if (owner >= nworkers_)
        return -EINVAL;
    return rte_ring_sp_enqueue(workers_[owner]->cmd_ring, c) == 0 ? 0 : -EAGAIN;
}

unsigned dataplane::poll_done(flow_cmd** out, unsigned max) noexcept
{
    unsigned n = 0;
    for (auto& w : workers_) {
        if (n == max)
            break;
        n += rte_ring_sc_dequeue_burst(w->done_ring, reinterpret_cast<void**>(out + n), max - n,
                                       nullptr);
    }
    return n;
}

unsigned dataplane::poll_exceptions(rte_mbuf** out, unsigned max) noexcept
{
    unsigned n = 0;
    for (auto& w : workers_) {
        if (n == max)
            break;
        n += rte_ring_sc_dequeue_burst(w->prio_ring, reinterpret_cast<void**>(out + n),
                                       max - n, nullptr);
    }
    for (auto& w : workers_) {
        if (n == max)
            break;
        n += rte_ring_sc_dequeue_burst(w->exc_ring, reinterpret_cast<void**>(out + n), max - n,
                                       nullptr);
    }
    return n;
}

unsigned dataplane::poll_turn(rte_mbuf** out, unsigned max) noexcept
{
    // Round-robin from where the last call stopped: one worker's flood does
    // not starve the others' clients.
    unsigned n = 0;
    for (unsigned k = 0; k < nworkers_ && n < max; k++) {
        worker& w = *workers_[(turn_rr_ + k) % nworkers_];
        n += rte_ring_sc_dequeue_burst(w.turn_ring, reinterpret_cast<void**>(out + n),
                                       std::min(max - n, 32u), nullptr);
    }
    turn_rr_ = (turn_rr_ + 1) % (nworkers_ == 0 ? 1 : nworkers_);
    return n;
}

uint16_t dataplane::ctl_tx(unsigned ifc, rte_mbuf** pkts, uint16_t n) noexcept
{
    uint16_t sent = rte_eth_tx_burst(ifaces_[ifc].port_id, static_cast<uint16_t>(nworkers_),
                                     pkts, n);
    if (sent < n)
        rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    return sent;
}

} // namespace isar::dp
