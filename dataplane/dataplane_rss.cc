// The dataplane's port ownership (ownership.h): which RSS each port gets,
// the per-slot port -> worker maps classify reads, and the NUMA socket of
// each worker. Init path only.
#include "dataplane/dataplane.h"

#include <cstring>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

namespace isar::dp {

// The socket of each worker's lcore, and the first CPU it runs on (whose
// cache sizes the worker's prefetch schedule reads), in the order launch()
// gives them the EAL worker lcores.
void dataplane::worker_sockets()
{
    wsock_.assign(nworkers_, static_cast<int>(rte_socket_id()));
    wcpu_.assign(nworkers_, 0);
    unsigned w = 0;
    unsigned lcore;
    RTE_LCORE_FOREACH_WORKER(lcore)
    {
        if (w == nworkers_)
            break;
        const rte_cpuset_t set = rte_lcore_cpuset(lcore);
        for (unsigned cpu = 0; cpu < CPU_SETSIZE; cpu++)
            if (CPU_ISSET(cpu, &set)) {
                wcpu_[w] = cpu;
                break;
            }
        wsock_[w++] = static_cast<int>(rte_lcore_to_socket_id(lcore));
    }
}

// Before configure: RSS on UDP destination address and port where the port
// can hash so and several workers poll it.
bool dataplane::setup_rss(unsigned i, const rte_eth_dev_info& info, uint16_t nrxq,
                          rte_eth_conf& conf)
{
    if (!cfg_.rss_ownership || nrxq < 2 || nworkers_ < 2 || !rss_dst_capable(info))
        return false;
    rss_dst_conf(conf, info, rss_key_buf_);
    rss_dst_families(info, rss_[i]);
    return true;
}

// After start: the RETA (or rte_flow rules), the mode, and its log line.
void dataplane::start_rss(unsigned i, uint16_t port, const rte_eth_dev_info& info,
                          uint16_t nrxq, bool dst)
{
    rss_layout& l = rss_[i];
    l.nworkers = nworkers_;
    const std::string p = "port " + std::to_string(port) + ": ";
    const std::string q = std::to_string(nrxq) + " RX queues";
    if (nrxq < 2 || nworkers_ < 2) {
        own_[i] = own_mode::single;
        own_desc_[i] = p + (nworkers_ < 2 ? "one worker" : "one RX queue") +
                       ": every packet is its worker's, no handoff";
        return;
    }
    if (cfg_.soft_rss_reta != 0 && cfg_.rss_ownership) {
        l.reta = paired_reta(cfg_.soft_rss_reta, nrxq, rss_key);
        l.v4 = l.v6 = true;
        own_[i] = own_mode::dst_port;
        own_desc_[i] = p + "software RSS on UDP destination port (isar-bench), " + q +
                       ": relay ports owned per Toeplitz";
        return;
    }
    if (dst) {
        const int rc = rss_program_reta(port, info.reta_size, nrxq, l);
        if (rc == 0) {
            own_[i] = own_mode::dst_port;
            own_desc_[i] = p + "RSS on UDP destination port (and address), " + q + ", RETA " +
                           std::to_string(info.reta_size) +
                           ": relay ports owned per Toeplitz, no handoff (TURN listener "
                           "clients: handoff by owner_of_client)";
            return;
        }
        l = rss_layout{};
        l.nworkers = nworkers_;
        own_[i] = own_mode::pairs;
        own_desc_[i] = p + "RSS on UDP destination configured but the RETA update failed (" +
                       strerror(-rc) + "): packets cross workers by handoff (counted)";
        return;
    }
    std::string why = "ownership by port pairs configured ([dataplane] port_ownership)";
    if (cfg_.rss_ownership) {
        const int rc = rss_flow_rules(port, nrxq, l, why);
        if (rc == 0) {
            own_[i] = own_mode::flow_rule;
            own_desc_[i] = p + "rte_flow RSS on UDP destination port (and address), " + q +
                           ": relay ports owned per Toeplitz" + (l.v6 ? "" : " (IPv4 only)") +
                           ", no handoff";
            return;
        }
    }
    own_[i] = own_mode::pairs;
    own_desc_[i] = p + (info.flow_type_rss_offloads != 0 ? "RSS by 4-tuple (no L4_DST_ONLY"
                                                         : "spread by the driver's own hash (no RSS") +
                   "; no rte_flow: " + why + "), " + q +
                   ": packets cross workers by handoff (counted: isarctl stats handoff_share)";
}

// After deal_queues: each slot's port -> worker map, on its port's socket.
int dataplane::build_owner_maps(std::string& err)
{
    for (unsigned i = 0; i < ifaces_.size(); i++) {
        rss_layout& l = rss_[i];
        l.queue_worker.assign(nrxq_[i], 0);
        for (unsigned w = 0; w < nworkers_; w++)
            for (unsigned k = 0; k < workers_[w]->nrxq; k++) {
                const auto& rx = workers_[w]->rxqs[k];
                if (rx.port == ifaces_[i].port_id && rx.kernel_ifc < 0 && rx.queue < nrxq_[i])
                    l.queue_worker[rx.queue] = static_cast<uint8_t>(w);
            }
    }
    // A map only where the NIC's hash decides (Toeplitz): elsewhere nullptr,
    // and classify and the port pools compute the pairs rule (no memory
    // read per packet).
    bool any = false;
    for (unsigned s = 0; s < laddrs_.size(); s++) {
        const local_addr& a = laddrs_[s];
        const own_mode md = own_[a.iface];
        if (md != own_mode::dst_port && md != own_mode::flow_rule) {
            owner_ptrs_.push_back(nullptr);
            continue;
        }
        int sock = rte_eth_dev_socket_id(ifaces_[a.iface].port_id);
        if (sock < 0)
            sock = SOCKET_ID_ANY;
        auto* m = static_cast<port_owner_map*>(
                rte_malloc_socket("isar_owner", sizeof(port_owner_map), 64, sock));
        if (m == nullptr) {
            err = "cannot allocate the port ownership maps (64 KiB per address): " +
                  std::string(rte_strerror(rte_errno));
            return -ENOMEM;
        }
        maps_.push_back(m);
        fill_toeplitz(*m, a, rss_[a.iface], rss_key);
        owner_ptrs_.push_back(m->owner);
        any = true;
    }
    for (auto& w : workers_)
        w->cctx.port_owner = any ? owner_ptrs_.data() : nullptr;
    return 0;
}

} // namespace isar::dp
