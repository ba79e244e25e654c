// Who owns a packet: the worker of each UDP port of each local address slot.
//
// A relay port belongs to one worker: its legs and TURN allocations live in
// that worker's flow table, and a packet that arrives on another worker is
// handed off to it (worker::handoff, counted as handoff_out/handoff_in). So
// that packets arrive where they belong, the owner of a port is what the NIC
// makes of it:
// - RSS on the UDP destination (address and port) alone, where the port can
//   (dev_info.flow_type_rss_offloads has L3_DST_ONLY and L4_DST_ONLY): the
//   dataplane programs a known Toeplitz key and RETA, and the owner of port
//   p of slot s is the worker polling the queue RETA[toeplitz(s, p) % size]
//   (rte_softrss). No handoff for relay ports.
// - otherwise the pairs rule (dp::owner_of_port: 2k and 2k+1 on one worker),
//   and packets that the NIC's hash puts on another worker are handed off.
// The maps are built on the init path and read per packet by classify.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/iface.h"

struct rte_eth_conf;
struct rte_eth_dev_info;

namespace isar::dp {

inline constexpr unsigned port_space = 65536;

// The Toeplitz key the dataplane programs (the RSS specification's default
// key, as most NICs ship it). Longer device keys repeat it.
inline constexpr unsigned rss_key_size = 40;
extern const uint8_t rss_key[rss_key_size];

// How the ports of one interface are owned (logged at start, reported by
// `isarctl stats` as "ownership").
enum class own_mode : uint8_t {
    single,     // one RX queue (or one worker): nothing to spread
    pairs,      // the NIC spreads by its own hash (4-tuple or none): pairs rule + handoff
    dst_port,   // RSS on UDP destination address and port: Toeplitz map, no handoff
    flow_rule,  // the same hash by an rte_flow RSS action (no L4_DST_ONLY in rss_hf)
};
const char* own_mode_name(own_mode m) noexcept;

// Toeplitz hash of what an L3_DST_ONLY | L4_DST_ONLY RSS hashes: the
// destination address and port, packed (address bytes, then the port),
// with `key` (at least 28 bytes for IPv6, 12 for IPv4).
uint32_t rss_hash_dst(const local_addr& a, uint16_t port, const uint8_t* key) noexcept;
// Toeplitz hash of an IPv4 UDP 4-tuple (what a NIC without L4_DST_ONLY
// hashes for NONFRAG_IPV4_UDP): source, destination, source port,
// destination port. Addresses big-endian, ports host order.
uint32_t rss_hash_4tuple(uint32_t src_be, uint32_t dst_be, uint16_t sport, uint16_t dport,
                         const uint8_t* key) noexcept;

// The RSS indirection of one port: RETA entry -> RX queue, queue -> worker.
struct rss_layout {
    std::vector<uint16_t> reta;         // size: the device's reta_size
    std::vector<uint8_t> queue_worker;  // index: RX queue
    unsigned nworkers = 1;
    bool v4 = false, v6 = false;        // UDP of that family hashed on destination
    unsigned worker_of_hash(uint32_t h) const noexcept
    {
        return queue_worker[reta[h % reta.size()]];
    }
};

// The RETA Isar programs: `size` entries over `nrxq` queues, balanced, such
// that ports 2k and 2k+1 of any address land on one queue. Toeplitz is
// linear: the hashes of 2k and 2k+1 differ by one constant per family (the
// key window at the port's last bit), so with a plain "entry i -> queue
// i % nrxq" RETA and 2 queues every pair would be split. Entries that differ
// by those constants (IPv4 and IPv6) share a queue. A size that is not a
// power of two gets i % nrxq (pairs then kept by port_pool::alloc_even).
std::vector<uint16_t> paired_reta(unsigned size, unsigned nrxq, const uint8_t* key);

// One slot's port -> worker map.
struct port_owner_map {
    uint8_t owner[port_space];
};
// The pairs rule (dp::owner_of_port).
void fill_pairs(port_owner_map& m, unsigned nworkers) noexcept;
// The Toeplitz rule for slot `a` under `l` (the pairs rule for a family
// that `l` does not hash on the destination).
void fill_toeplitz(port_owner_map& m, const local_addr& a, const rss_layout& l,
                   const uint8_t* key) noexcept;

// Ports `p` and `p + 1` have one owner in `m` (nullptr: the pairs rule,
// always).
inline bool same_owner(const uint8_t* m, uint16_t p) noexcept
{
    return m == nullptr || p == 65535 || m[p] == m[p + 1];
}

// ---- port set-up (init path) ----------------------------------------------
// The device hashes IPv4 UDP on destination address and port alone.
bool rss_dst_capable(const rte_eth_dev_info& info) noexcept;
// conf's RSS part for that, with rss_key (repeated to the device's key size
// in `key`, which must outlive the configure).
void rss_dst_conf(rte_eth_conf& conf, const rte_eth_dev_info& info, std::vector<uint8_t>& key);
// The families rss_dst_conf hashes on the destination (l.v4, l.v6).
void rss_dst_families(const rte_eth_dev_info& info, rss_layout& l) noexcept;
// After start: the RETA of paired_reta() (l.reta). 0 or -errno.
int rss_program_reta(uint16_t port, uint16_t reta_size, uint16_t nrxq, rss_layout& l);
// Where rss_hf cannot: rte_flow rules (IPv4 and IPv6 UDP) with an RSS
// action on destination address and port over queues 0..nrxq-1 (nrxq a
// power of two, so that the queue is hash % nrxq whichever way the PMD
// indexes its list). 0 and l.reta, or -errno and `why`.
int rss_flow_rules(uint16_t port, uint16_t nrxq, rss_layout& l, std::string& why);

} // namespace isar::dp
