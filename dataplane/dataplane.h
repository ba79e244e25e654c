// The dataplane as the control plane sees it: ports, mempool, workers and the
// rings between them. Built on the init path (may allocate, returns errors
// with a message that says what to do); the per-packet work is in worker.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/iface.h"
#include "dataplane/leg.h"
#include "dataplane/ownership.h"
#include "dataplane/worker.h"

struct rte_mempool;
struct rte_eth_conf;
struct rte_eth_dev_info;

namespace isar::dp {

// One local address of an interface (a slot, see local_addr).
struct addr_config {
    uint8_t family = 4;    // 4 or 6
    uint32_t ip_be = 0;    // family 4
    ip6_addr ip6{};        // family 6
    uint8_t prefix_len = 24;
};

struct iface_config {
    uint16_t port_id = 0;
    std::vector<addr_config> addrs; // 1..max_laddrs_per_iface, either family
    uint32_t gateway_be = 0; // IPv4 gateway, 0 = none
    // Use the port's TX checksum offload when it has one. Some NICs' PMDs
    // leave their vector TX path for every packet once any TX offload is on,
    // which costs plain RTP more than it saves SRTP.
    bool tx_cksum_offload = true;
    // A kernel interface (kernel_iface.h) for this interface: its netdev
    // name, and whether it takes everything the relay does not serve
    // (kernel_forward = "all") or only TCP to the stream ports ("turn").
    bool kernel = false;
    std::string kernel_iface;
    bool kernel_all = false;
    ip6_addr gateway6{}; // IPv6 gateway, when has_gateway6
    bool has_gateway6 = false;
};

struct dp_config {
    std::vector<iface_config> ifaces;
    uint32_t max_legs = 65536;   // flow table size of each worker
    uint32_t mbufs = 16383;      // packet buffers in the mempool
    uint32_t idle_sleep_us = 0;  // 0 = pure polling
    bool strict_source = true;
    uint16_t rx_desc = 1024;
    uint16_t tx_desc = 1024;
    uint32_t ring_size = 1024;   // command, completion, exception, handoff rings
    uint16_t relay_min = 30000;  // relay port pool (classify looks these up whatever
    uint16_t relay_max = 39999;  // they carry: TURN allocations relay anything)
    // TURN: listener ports (empty = off), allocations per worker, and the
    // rate of STUN/TURN requests the workers hand control (all workers
    // together; 0 = unpoliced).
    std::vector<uint16_t> turn_ports;
    uint32_t max_allocations = 0;
    uint32_t turn_requests_per_s = 0;
    // TURN over TCP/TLS: stream threads outside the dataplane, each with a
    // ring to and from every worker (stream_ring.h); 0 = none.
    uint32_t stream_threads = 0;
    // Their listener ports (TCP and TLS): TCP to them goes to the kernel
    // interface, of the interfaces that have one (iface_config::kernel).
    std::vector<uint16_t> stream_ports;
    uint32_t kernel_pps = 0;      // frames to the kernel interfaces, all workers together
    // Exception path: packets per second each kind may take to the control
    // lcore, all workers together (0 = unpoliced). See exc_policer.
    uint32_t arp_reply_pps = 0;   // ARP replies to our address
    uint32_t arp_request_pps = 0; // ARP requests for our address
    uint32_t arp_other_pps = 0;   // any other ARP
    uint32_t icmp_pps = 0;
    uint32_t stun_pps = 0;        // STUN to leg ports
    uint32_t dtls_pps = 0;        // DTLS to leg ports
    uint32_t nd_pps = 5000;       // ICMPv6 Neighbor Discovery for our addresses
    // Control's queues of packets waiting for their next hop's MAC.
    uint32_t hold_per_next_hop = 64;
    uint32_t hold_total = 4096;
    // Neighbour table entries per interface and family ([dataplane] neighbors).
    uint32_t neighbors = 4096;
    // Relay ports owned as the NIC's RSS spreads them where it can
    // (ownership.h); false = the pairs rule everywhere ([dataplane]
    // port_ownership = "pairs").
    bool rss_ownership = true;
    // isar-bench's software RSS (bench/load/rss_modes.h): ports without RSS
    // (net_ring) are owned as if they hashed on the UDP destination with
    // rss_key and a RETA of this many entries (paired_reta), which is how
    // the generator spreads packets over their RX rings. 0 = off.
    uint16_t soft_rss_reta = 0;
};

class dataplane {
public:
    dataplane();
    ~dataplane();
    dataplane(const dataplane&) = delete;
    dataplane& operator=(const dataplane&) = delete;

    // After rte_eal_init(). Sets up `nworkers` workers (0 = one per EAL
    // worker lcore). Returns 0, or -errno with `err` saying what to fix.
    int init(const dp_config& cfg, unsigned nworkers, std::string& err);
    // Runs every worker on its own EAL worker lcore.
    int launch(std::string& err);
    // Stops and joins the workers, then stops the ports. Idempotent.
    void stop();

    unsigned nworkers() const noexcept { return nworkers_; }
    worker& wk(unsigned i) noexcept { return *workers_[i]; }
    const worker& wk(unsigned i) const noexcept { return *workers_[i]; }
    unsigned nifaces() const noexcept { return static_cast<unsigned>(ifaces_.size()); }
    const iface& ifc(unsigned i) const noexcept { return ifaces_[i]; }
    iface& ifc(unsigned i) noexcept { return ifaces_[i]; }
    // Local address slots of every interface, in config order (see
    // local_addr; interface i's are ifc(i).laddr_first ...).
    unsigned nladdrs() const noexcept { return static_cast<unsigned>(laddrs_.size()); }
    const local_addr& laddr(unsigned i) const noexcept { return laddrs_[i]; }
    // One line for the start-up log: port, driver, queues, checksum offloads
    // (and the kernel interface, if any).
    const std::string& port_desc(unsigned i) const noexcept { return port_desc_[i]; }
    rte_mempool* pool() const noexcept { return pool_; }
    // Slot `laddr`'s UDP port -> worker map (ownership.h), what classify
    // reads: the port pools deal by it. nullptr = the pairs rule
    // (owner_of_port).
    const uint8_t* owner_map(unsigned laddr) const noexcept { return owner_ptrs_[laddr]; }
    // How interface i's ports are owned, and one line saying it for the log.
    own_mode ownership(unsigned i) const noexcept { return own_[i]; }
    const std::string& ownership_desc(unsigned i) const noexcept { return own_desc_[i]; }
    // The NUMA socket of worker w's lcore (what its rings and tables use;
    // legs of its sessions belong there too).
    int worker_socket(unsigned w) const noexcept { return wsock_[w]; }
    unsigned mbufs_in_use() const noexcept;
    const dp_config& config() const noexcept { return cfg_; }
    bool launched() const noexcept { return launched_; }

    // ---- control lcore side ---------------------------------------------
    // Queues `c` to worker c->sess->owner. -EAGAIN when its ring is full.
    int submit(flow_cmd* c) noexcept;
    // Collects acknowledged commands from every worker.
    unsigned poll_done(flow_cmd** out, unsigned max) noexcept;
    // Collects exception-path packets from every worker: first every
    // worker's priority ring (ARP, held packets), then the others (ICMP,
    // STUN, DTLS).
    unsigned poll_exceptions(rte_mbuf** out, unsigned max) noexcept;
    // Next hops control should resolve now (ARP) before any packet needs
    // them: queued by the session manager, taken by the neighbour manager.
    // Control lcore only.
    void request_resolve(unsigned ifc, uint32_t ip_be) { resolve_.push_back({ifc, ip_be}); }
    std::vector<std::pair<unsigned, uint32_t>> take_resolve_requests()
    {
        return std::exchange(resolve_, {});
    }
    // Collects STUN/TURN requests (to the TURN listener ports) from every
    // worker, at most `max`, taking from each worker in turn.
    unsigned poll_turn(rte_mbuf** out, unsigned max) noexcept;
    // TURN over TCP/TLS (stream_ring.h): the ring stream thread `t` fills
    // for worker `w`, and the one worker `w` fills for thread `t`.
    rte_ring* stream_in(unsigned t, unsigned w) noexcept { return workers_[w]->stream_in[t]; }
    rte_ring* stream_out(unsigned w, unsigned t) noexcept { return workers_[w]->stream_out[t]; }
    // Sends on the control lcore's own TX queue of interface `ifc`; frees
    // what could not be sent and returns the number sent.
    uint16_t ctl_tx(unsigned ifc, rte_mbuf** pkts, uint16_t n) noexcept;

private:
    int setup_port(iface& ifc, const iface_config& ic, std::string& err);
    int make_worker(unsigned w, const dp_config& cfg, std::string& err);
    int make_rings(const dp_config& cfg, std::string& err);
    int deal_queues(std::string& err);
    int setup_kernel(iface& ifc, const iface_config& ic, std::string& err);
    int setup_addrs(iface& f, const iface_config& ic, std::string& err);
    // dataplane_rss.cc: how the ports' RSS makes the owner of a packet.
    bool setup_rss(unsigned i, const rte_eth_dev_info& info, uint16_t nrxq, rte_eth_conf& conf);
    void start_rss(unsigned i, uint16_t port, const rte_eth_dev_info& info, uint16_t nrxq,
                   bool dst);
    int build_owner_maps(std::string& err);
    void worker_sockets();

    dp_config cfg_;
    unsigned id_ = 0; // instance number: unique DPDK object names
    unsigned nworkers_ = 0;
    unsigned turn_rr_ = 0;
    rte_mempool* pool_ = nullptr;
    std::vector<iface> ifaces_;
    std::vector<local_addr> laddrs_;
    std::vector<std::unique_ptr<neighbor_table>> neigh_;
    std::vector<std::unique_ptr<worker>> workers_;
    std::vector<uint16_t> nrxq_; // per iface
    std::vector<uint16_t> kernel_ports_; // the kernel interfaces' taps (removed at the end)
    std::vector<std::string> port_desc_; // per iface
    std::vector<own_mode> own_;          // per iface
    std::vector<std::string> own_desc_;  // per iface
    std::vector<rss_layout> rss_;        // per iface
    std::vector<uint8_t> rss_key_buf_;   // the key being configured
    std::vector<port_owner_map*> maps_;  // Toeplitz slots', DPDK heap on the port's socket
    std::vector<const uint8_t*> owner_ptrs_; // per slot: its map, nullptr = pairs rule
    std::vector<int> wsock_;             // per worker
    std::vector<unsigned> wcpu_;         // per worker: the first CPU of its lcore
    int16_t iface_of_port_[RTE_MAX_ETHPORTS];
    std::vector<unsigned> lcores_;
    std::vector<std::pair<unsigned, uint32_t>> resolve_; // (iface, IPv4 big-endian)
    bool launched_ = false;
    bool ports_started_ = false;
};

} // namespace isar::dp
