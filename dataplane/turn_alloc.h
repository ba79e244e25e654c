// What the dataplane knows of a TURN allocation (RFC 8656): the client's
// 5-tuple, the relayed address, the permissions and the channels.
//
// Ownership is that of a leg (leg.h): control allocates a turn_alloc, hands
// it to its owning worker with cmd_op::add_alloc, and frees it only after the
// worker acknowledged cmd_op::del_alloc. Permissions and channels are changed
// only by cmd_op::set_alloc_peers (the worker copies a whole turn_peer_table),
// so the worker is the only writer once it is installed; control reads the
// counters with relaxed atomics.
//
// A client's packets arrive on the shared listener port, so they are found by
// the client's 5-tuple (turn_client_table); a peer's arrive on the relayed
// port, found in the flow table like a leg's. Both land on the same worker:
// the owner is chosen from the client's address (owner_of_client) and the
// relayed port is taken from that worker's share of the pool.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "dataplane/classify.h"
#include "dataplane/iface.h"
#include "dataplane/leg.h"
#include "dataplane/stats.h"

struct rte_hash;

namespace isar::dp {

// Permissions and channels an allocation may hold (RFC 8656 sets no limit;
// a browser needs one per remote candidate address). More are refused with
// 508 by control.
constexpr unsigned max_turn_perms = 16;
constexpr unsigned max_turn_channels = 16;

struct turn_perm {
    uint32_t ip_be = 0;      // peer IPv4 address
    uint32_t pad = 0;
    uint64_t expiry_tsc = 0; // valid while now < expiry_tsc
};
// A permission for an IPv6 peer address (an IPv6 relayed address's peers).
struct turn_perm6 {
    ip6_addr ip{};
    uint64_t expiry_tsc = 0; // valid while now < expiry_tsc
};
struct turn_channel {
    packed_ep peer = 0;      // peer address and port (pack_ep, or pack_ep6 + peer6)
    uint64_t expiry_tsc = 0;
    uint16_t number = 0;     // 0x4000-0x4fff, host order; 0 = unused
    ip6_addr peer6{};        // an IPv6 peer's address (ep_is_v6(peer))
};

// The whole permission and channel state, as control sends it.
struct turn_peer_table {
    turn_perm perms[max_turn_perms];
    turn_perm6 perms6[max_turn_perms];
    turn_channel chans[max_turn_channels];
    uint8_t nperms = 0;
    uint8_t nperms6 = 0;
    uint8_t nchans = 0;
};

struct turn_counters {
    counter c2p_pkts{0}; // client -> peer (ChannelData or Send), sent
    counter c2p_bytes{0};
    counter p2c_pkts{0}; // peer -> client (ChannelData or Data), sent
    counter p2c_bytes{0};
    counter c2p_drops{0};
    counter p2c_drops{0};
};

// Laid out like a leg (leg.h): the common packet of an allocation - one
// peer, one channel (or none), IPv4 - reads line 0 and writes line 1 (its
// counters), both prefetched by process_burst's act pass; never the
// permission and channel tables. Line 0 holds a copy of the first
// permission's address and the first channel (hot_*, written by set_peers
// only), valid while now < hot_until_tsc (the earlier of their expiries);
// every other case walks the tables as before, with the same result.
struct alignas(64) turn_alloc {
    // ---- line 0: what every packet of the allocation reads ----------------
    packed_ep client = 0;        // client address and port (network order)
    packed_ep hot_chan_peer = 0; // chans[0].peer (IPv4 only, else 0)
    uint64_t hot_until_tsc = 0;  // the hot_* copies hold while now < this
    uint64_t last_seen_tsc = 0;  // last packet either way (written by the worker)
    uint32_t listen_ip_be = 0;   // the listener address the client talks to
    uint32_t relay_ip_be = 0;    // relayed transport address
    uint32_t hot_perm_ip = 0;    // perms[0].ip_be (0 = none)
    uint32_t stream = 0;         // TCP/TLS client: its connection's token (stream_ring.h);
                                 // 0 = UDP client (found by its 5-tuple)
    uint16_t listen_port_be = 0;
    uint16_t relay_port_be = 0;
    uint16_t iface = 0;          // interface of both the listener and the relay
    // The relayed address's slot (local_addr), which keys its flow-table
    // entry; no_laddr = the interface's first IPv4 slot (iface::laddr4).
    uint16_t relay_laddr = no_laddr;
    // The slot of the listener address the client talks to (either family;
    // no_laddr = the interface's IPv4 slot, listen_ip_be).
    uint16_t listen_laddr = no_laddr;
    uint16_t hot_chan_number = 0; // chans[0].number (0 = none)
    uint8_t nperms = 0;
    uint8_t nchans = 0;

    // ---- line 1: counters (written per packet), the Data indications' id --
    alignas(64) turn_counters ctr;
    uint8_t txid[12] = {};       // transaction id of the Data indications we send
    uint32_t owner = 0;          // worker index

    // ---- cold: control's id, the permission and channel tables ------------
    uint32_t id = 0;             // control's allocation id
    turn_perm perms[max_turn_perms];
    turn_channel chans[max_turn_channels];

    // ---- IPv6 (cold: read only for IPv6 clients and peers) ---------------
    // An IPv6 client: client is pack_ep6(client6, port) and client6 its
    // address (listen_laddr, line 0, the slot it talks to).
    ip6_addr client6{};
    // A dual allocation (RFC 8656 ADDITIONAL-ADDRESS-FAMILY): its second,
    // IPv6, relayed address (slot and port; no_laddr = none). relay_laddr is
    // then the IPv4 one. A peer's family picks the relayed address that
    // sends to it; both flow entries point to this allocation.
    uint16_t relay2_laddr = no_laddr;
    uint16_t relay2_port_be = 0;
    uint8_t nperms6 = 0;
    turn_perm6 perms6[max_turn_perms];

    // The common packet's questions, from line 0 alone: true with the
    // answer, false when the tables must say (the hot copy does not apply).
    bool hot(uint64_t now) const noexcept { return now < hot_until_tsc; }
    // Whether IPv4 `ip_be` is permitted (the first permission's address).
    bool hot_permitted(uint32_t ip_be, uint64_t now) const noexcept
    {
        return ip_be == hot_perm_ip && hot_perm_ip != 0 && hot(now);
    }

    // The permission for `ip_be`, if any and unexpired.
    bool permitted(uint32_t ip_be, uint64_t now) const noexcept
    {
        for (unsigned i = 0; i < nperms; i++)
            if (perms[i].ip_be == ip_be && now < perms[i].expiry_tsc)
                return true;
        return false;
    }
    const turn_channel* channel_by_number(uint16_t n, uint64_t now) const noexcept
    {
        for (unsigned i = 0; i < nchans; i++)
            if (chans[i].number == n && now < chans[i].expiry_tsc)
                return &chans[i];
        return nullptr;
    }
    const turn_channel* channel_by_peer(packed_ep p, uint64_t now) const noexcept
    {
        for (unsigned i = 0; i < nchans; i++)
            if (chans[i].peer == p && now < chans[i].expiry_tsc)
                return &chans[i];
        return nullptr;
    }
    // An IPv6 peer: p = pack_ep6(a, port); the whole address is compared too
    // (packed values of different addresses may be equal: fold32).
    const turn_channel* channel_by_peer6(packed_ep p, const ip6_addr& a,
                                         uint64_t now) const noexcept
    {
        for (unsigned i = 0; i < nchans; i++)
            if (chans[i].peer == p && chans[i].peer6 == a && now < chans[i].expiry_tsc)
                return &chans[i];
        return nullptr;
    }
    // The permission for IPv6 address `a`, if any and unexpired.
    bool permitted6(const ip6_addr& a, uint64_t now) const noexcept
    {
        for (unsigned i = 0; i < nperms6; i++)
            if (perms6[i].ip == a && now < perms6[i].expiry_tsc)
                return true;
        return false;
    }
    // Starts loading what a packet reads: line 0 and the counters' line,
    // and, when the hot copies do not apply, the first permission and
    // channel. Needs no load of `this`.
    void prefetch() const noexcept
    {
        __builtin_prefetch(this, 1, 3);
        __builtin_prefetch(&ctr, 1, 3);
    }
    void prefetch_tables() const noexcept
    {
        __builtin_prefetch(&perms[0], 0, 3);
        __builtin_prefetch(&chans[0].number, 0, 3);
    }
    void set_peers(const turn_peer_table& t) noexcept
    {
        nperms = t.nperms <= max_turn_perms ? t.nperms : max_turn_perms;
        nchans = t.nchans <= max_turn_channels ? t.nchans : max_turn_channels;
        for (unsigned i = 0; i < nperms; i++)
            perms[i] = t.perms[i];
        for (unsigned i = 0; i < nchans; i++)
            chans[i] = t.chans[i];
        nperms6 = t.nperms6 <= max_turn_perms ? t.nperms6 : max_turn_perms;
        for (unsigned i = 0; i < nperms6; i++)
            perms6[i] = t.perms6[i];
        set_hot();
    }
    // The line-0 copies of perms[0] and chans[0] (an IPv4 channel only),
    // valid until the earlier of their expiries.
    void set_hot() noexcept
    {
        uint64_t until = ~0ull;
        hot_perm_ip = 0;
        hot_chan_peer = 0;
        hot_chan_number = 0;
        if (nperms != 0) {
            hot_perm_ip = perms[0].ip_be;
            until = perms[0].expiry_tsc;
        }
        if (nchans != 0 && !ep_is_v6(chans[0].peer)) {
            hot_chan_peer = chans[0].peer;
            hot_chan_number = chans[0].number;
            until = chans[0].expiry_tsc < until ? chans[0].expiry_tsc : until;
        }
        hot_until_tsc = nperms != 0 || hot_chan_number != 0 ? until : 0;
    }
};

static_assert(offsetof(turn_alloc, nchans) < 64, "line 0 holds what packets read");
static_assert(offsetof(turn_alloc, owner) + 4 <= 128, "line 1: counters and txid");

// The worker that owns an allocation: a function of the client's address, so
// that the worker receiving a client packet knows the owner without a table.
// Control deals the relayed port from that worker's share of the pool.
inline unsigned owner_of_client(uint32_t ip_be, uint16_t port_be, unsigned nworkers) noexcept
{
    if (nworkers <= 1)
        return 0;
    uint32_t h = ip_be ^ (uint32_t{port_be} * 0x9e3779b1u);
    h ^= h >> 16;
    return owner_of_port(static_cast<uint16_t>(h ^ (h >> 8)), nworkers);
}

// The client 5-tuple, as the key of a worker's client table. The listener
// port is part of it (a client may hold one allocation per listener port).
// An IPv6 client's key holds the fold32 of its address and family6 = 6 (an
// IPv4 client's is 0), so it never equals an IPv4 client's; two IPv6
// clients whose addresses fold alike share a key, and the caller compares
// the allocation's client6 after the lookup.
// 16 bytes, 8-aligned, no implicit padding: rte_hash_crc reads the key in
// 8-byte words, and every byte of it is hashed and compared.
struct alignas(8) turn_client_key {
    uint32_t ip_be = 0;
    uint16_t port_be = 0;
    uint16_t listen_port_be = 0;
    uint16_t iface = 0;
    uint16_t family6 = 0; // 6: an IPv6 client (ip_be = fold32), else 0
    uint32_t pad2 = 0;
};
static_assert(sizeof(turn_client_key) == 16);

// A worker's client table: 5-tuple -> allocation. Only its worker reads and
// writes it (commands arrive on its ring), so rte_hash runs without its
// concurrency flags. Sized from [turn] max_allocations.
class turn_client_table {
public:
    turn_client_table() = default;
    turn_client_table(const turn_client_table&) = delete;            // lint: control-only
    turn_client_table& operator=(const turn_client_table&) = delete; // lint: control-only
    ~turn_client_table() { release(); }

    // Init path: 0 or -ENOMEM. `name` must be unique in the process.
    int init(const char* name, uint32_t capacity, int socket) noexcept;
    void release() noexcept;

    turn_alloc* lookup(const turn_client_key& k) const noexcept;
    // Up to max_bulk keys at once (rte_hash pipelines the bucket loads of
    // the whole burst): out[i] = the allocation of *keys[i] or nullptr.
    static constexpr unsigned max_bulk = 32;
    void lookup_bulk(const turn_client_key** keys, unsigned n, turn_alloc** out) const noexcept;
    int insert(const turn_client_key& k, turn_alloc* a) noexcept; // 0, -EEXIST, -ENOSPC
    bool erase(const turn_client_key& k, const turn_alloc* a) noexcept;
    uint32_t size() const noexcept { return size_; }
    uint32_t capacity() const noexcept { return capacity_; }

private:
    rte_hash* h_ = nullptr;
    uint32_t size_ = 0;
    uint32_t capacity_ = 0;
};

// The source address of a classified IPv6 packet.
inline ip6_addr src6_of(const rte_mbuf* m, const pkt_meta& meta) noexcept
{
    ip6_addr a;
    std::memcpy(a.b, rte_pktmbuf_mtod_offset(m, const uint8_t*, meta.l3_off + 8), 16);
    return a;
}

// The client key of a classified packet to a TURN listener port.
inline turn_client_key client_key(const rte_mbuf* m, const pkt_meta& meta) noexcept
{
    const auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, meta.l4_off);
    turn_client_key k;
    if (meta.family == 4) {
        k.ip_be = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, meta.l3_off)->src_addr;
    } else {
        k.ip_be = src6_of(m, meta).fold32();
        k.family6 = 6;
    }
    k.port_be = udp->src_port;
    k.listen_port_be = udp->dst_port;
    k.iface = meta.iface;
    return k;
}

// m->hash.usr of a packet one worker hands another as a hairpin (a client of
// one allocation sending to the relayed address of another): the only way a
// packet with the relay's own source address is accepted from a peer.
constexpr uint32_t hairpin_mark = 0x48504e31; // "HPN1"

// The slot of an allocation's relayed address (its flow key's upper half).
inline uint16_t relay_slot(const turn_alloc& a, const iface* ifaces) noexcept
{
    return a.relay_laddr != no_laddr ? a.relay_laddr : ifaces[a.iface].laddr4;
}

// The relayed address (slot, port) that sends to a peer of family 6 (v6) or
// 4: a dual allocation's second one for IPv6 peers, else its only one.
inline uint16_t relay_slot_for(const turn_alloc& a, const iface* ifaces, bool v6,
                               uint16_t& port_be) noexcept
{
    if (v6 && a.relay2_laddr != no_laddr) {
        port_be = a.relay2_port_be;
        return a.relay2_laddr;
    }
    port_be = a.relay_port_be;
    return relay_slot(a, ifaces);
}

inline turn_client_key client_key_of(const turn_alloc& a) noexcept
{
    turn_client_key k;
    if (ep_is_v6(a.client)) {
        k.ip_be = a.client6.fold32();
        k.family6 = 6;
    } else {
        k.ip_be = ep_ip(a.client);
    }
    k.port_be = ep_port(a.client);
    k.listen_port_be = a.listen_port_be;
    k.iface = a.iface;
    return k;
}

} // namespace isar::dp
