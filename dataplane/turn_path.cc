// The TURN fast path (RFC 8656) of a worker: ChannelData and Send
// indications from clients go out as UDP from the relayed address; UDP from
// peers goes to the client as ChannelData (channel bound) or a Data
// indication. Same rules as worker.cc: no allocation, lock, system call,
// exception or log per packet; every packet is sent, handed off or counted.
#include <cstring>

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include "dataplane/rewrite6.h"
#include "dataplane/worker.h"
#include "turn/stun.h"

namespace isar::dp {

namespace {
inline uint32_t header_len(const pkt_meta& meta) noexcept
{
    return meta.l4_off + static_cast<uint32_t>(sizeof(rte_udp_hdr));
}

inline uint8_t* payload(rte_mbuf* m, const pkt_meta& meta) noexcept
{
    return rte_pktmbuf_mtod_offset(m, uint8_t*, header_len(meta));
}

inline uint32_t payload_len(const rte_mbuf* m, const pkt_meta& meta) noexcept
{
    return rte_pktmbuf_pkt_len(m) - header_len(meta);
}

// What a framing change did to the bytes the UDP checksum covers: sums (in
// memory order, as rte_raw_cksum gives them) of what came and what left,
// lengths included (the UDP length counts twice: header and pseudo-header).
struct cksum_delta {
    uint64_t add = 0;
    uint64_t sub = 0;
};

// The sum of n bytes that start `pos` bytes into the UDP payload (an even
// offset in the datagram): bytes at odd positions count as the other half
// of their 16-bit word.
inline uint32_t sum_at(const uint8_t* p, uint32_t n, uint32_t pos) noexcept
{
    const uint16_t s = rte_raw_cksum(p, n);
    return (pos & 1) ? static_cast<uint16_t>((s << 8) | (s >> 8)) : s;
}

inline uint16_t udp_len_field(const rte_mbuf* m, const pkt_meta& meta) noexcept
{
    return rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, meta.l4_off)->dgram_len;
}

// Keeps only payload bytes [off, off + len): the headers move up to just
// before them (a 42-byte move instead of moving the data).
inline void keep_payload(rte_mbuf* m, const pkt_meta& meta, uint32_t off, uint32_t len,
                         cksum_delta& d) noexcept
{
    const uint32_t hl = header_len(meta);
    const uint32_t plen = payload_len(m, meta);
    const uint8_t* p = payload(m, meta);
    d.sub += rte_raw_cksum(p, off) + sum_at(p + off + len, plen - off - len, off + len) +
             2u * udp_len_field(m, meta);
    if (off != 0) {
        uint8_t* base = rte_pktmbuf_mtod(m, uint8_t*);
        std::memmove(base + off, base, hl);
        rte_pktmbuf_adj(m, static_cast<uint16_t>(off));
    }
    const uint32_t have = rte_pktmbuf_pkt_len(m) - hl;
    if (have > len)
        rte_pktmbuf_trim(m, static_cast<uint16_t>(have - len));
    set_udp_len(m, meta, len);
    d.add += 2u * udp_len_field(m, meta);
}

// Makes room for `front` bytes before the payload and `back` zero bytes
// after it; returns where the front bytes go (the caller adds their sum to
// `d` once it wrote them), nullptr without room.
inline uint8_t* grow_payload(rte_mbuf* m, const pkt_meta& meta, uint32_t front, uint32_t back,
                             cksum_delta& d) noexcept
{
    if (rte_pktmbuf_headroom(m) < front || rte_pktmbuf_tailroom(m) < back)
        return nullptr;
    const uint32_t hl = header_len(meta);
    const uint32_t plen = payload_len(m, meta);
    d.sub += 2u * udp_len_field(m, meta);
    auto* base = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, static_cast<uint16_t>(front)));
    std::memmove(base, base + front, hl);
    if (back != 0)
        std::memset(rte_pktmbuf_append(m, static_cast<uint16_t>(back)), 0, back);
    set_udp_len(m, meta, plen + front + back);
    d.add += 2u * udp_len_field(m, meta);
    return base + hl;
}

// How the UDP checksum of a reframed packet is brought up to date: where the
// incoming sum can be trusted (choose_udp_cksum's rules) it is updated for
// what the framing added and removed (RFC 1624: a few words instead of a
// pass over the payload; rewrite_udp4 then updates it for the addresses and
// ports), else it is computed or offloaded; a sender's "none" stays none.
inline udp_cksum framed_cksum(rte_mbuf* m, const pkt_meta& meta, const iface& in,
                              const iface& out, const cksum_delta& d) noexcept
{
    auto* udp = rte_pktmbuf_mtod_offset(m, rte_udp_hdr*, meta.l4_off);
    const udp_cksum ck = choose_udp_cksum(m, udp, false, in.rx_partial_cksum, out.tx_cksum_offload);
    if (ck != udp_cksum::update)
        return ck;
    const uint64_t s = uint64_t{static_cast<uint16_t>(~udp->dgram_cksum)} + d.add +
                       static_cast<uint16_t>(~fold64(d.sub));
    const uint16_t c = static_cast<uint16_t>(~fold64(s));
    udp->dgram_cksum = c == 0 ? 0xffff : c;
    return udp_cksum::update;
}

inline packed_ep peer_ep(const turn::transport_addr& a, ip6_addr& a6) noexcept
{
    if (a.family == 6) {
        std::memcpy(a6.b, a.ip, 16);
        return pack_ep6(a6, rte_cpu_to_be_16(a.port));
    }
    return pack_ep(a.ip4_be(), rte_cpu_to_be_16(a.port));
}

// The slot holding local address (ep, a6) (IPv4: ep_ip(ep)), no_laddr when
// it is none of ours.
inline uint16_t slot_of(const local_addr* laddrs, unsigned n, packed_ep ep,
                        const ip6_addr& a6) noexcept
{
    const bool v6 = ep_is_v6(ep);
    for (unsigned i = 0; i < n; i++) {
        const local_addr& la = laddrs[i];
        if (v6 ? la.family == 6 && la.ip6 == a6 : la.family == 4 && la.ip4_be == ep_ip(ep))
            return static_cast<uint16_t>(i);
    }
    return no_laddr;
}

} // namespace

// For an allocation's packet (line 0 and the counters already on their way;
// process_burst's act pass): the frame line it writes or reads beyond the
// first, and the permission and channel tables when line 0 may not answer -
// several peers or channels, an expired copy, IPv6.
void worker::prefetch_alloc_more(const rte_mbuf* m, const pkt_meta& meta,
                                 const turn_alloc* a) const noexcept
{
    if (meta.v == verdict::lookup) // peer -> client: the framing moves
        __builtin_prefetch(rte_pktmbuf_mtod_offset(m, const char*, -1), 1, 3); // the headers back
    else if (!meta.channel_data) // a Send indication's attributes
        rte_prefetch0(rte_pktmbuf_mtod_offset(m, const char*, 64));
    if (a->nperms > 1 || a->nchans > 1 || !a->hot(now_tsc_) || ep_is_v6(a->client))
        a->prefetch_tables();
}

void worker::turn_request(rte_mbuf* m) noexcept
{
    // A flood of requests costs the control lcore at most its policed rate,
    // and never fills the ring that ARP and held packets take.
    if (!turn_police.allow(now_tsc_)) {
        drop_pkt(m, drop::turn_policed);
        return;
    }
    m->hash.usr = static_cast<uint32_t>(exc_kind::turn);
    if (rte_ring_sp_enqueue(turn_ring, m) != 0) {
        drop_pkt(m, drop::exception_full);
        return;
    }
    bump(stats.turn_requests);
}

// Where a client's ChannelData or Send indication (p[0..plen)) goes: the
// peer, and the data's place in the frame; drop::count when it may be
// relayed, else the reason it is dropped.
drop worker::turn_c2p_target(const turn_alloc* a, const uint8_t* p, uint32_t plen, bool channel,
                             packed_ep& peer, ip6_addr& peer6, uint32_t& off,
                             uint32_t& len) const noexcept
{
    if (channel) {
        uint16_t ch = 0, dlen = 0;
        if (!turn::parse_channel_data(p, plen, ch, dlen))
            return drop::turn_malformed;
        if (ch == a->hot_chan_number && a->hot(now_tsc_)) {
            peer = a->hot_chan_peer; // line 0: an IPv4 peer
        } else {
            const turn_channel* c = a->channel_by_number(ch, now_tsc_);
            if (c == nullptr)
                return drop::turn_bad_channel;
            peer = c->peer;
            peer6 = c->peer6;
        }
        off = 4;
        len = dlen;
    } else {
        turn::send_view sv;
        if (!turn::parse_send_indication(p, plen, sv) ||
            (sv.peer.family != 4 && sv.peer.family != 6))
            return drop::turn_malformed;
        peer = peer_ep(sv.peer, peer6);
        off = sv.data_off;
        len = sv.data_len;
    }
    bool own;
    if (ep_is_v6(peer)) {
        if (!a->permitted6(peer6, now_tsc_))
            return drop::turn_no_permission;
        own = own_slot6(peer6) != no_laddr;
    } else {
        if (!a->hot_permitted(ep_ip(peer), now_tsc_) && !a->permitted(ep_ip(peer), now_tsc_))
            return drop::turn_no_permission;
        own = is_own_address(ep_ip(peer));
    }
    // A permission is per IP address: of the relay's own addresses only the
    // relayed ports are peers, never its listener or anything else.
    if (own && (rte_be_to_cpu_16(ep_port(peer)) < cctx.relay_min ||
                rte_be_to_cpu_16(ep_port(peer)) > cctx.relay_max))
        return drop::turn_no_permission;
    return drop::count;
}

bool worker::is_own_address(uint32_t ip_be) const noexcept
{
    for (unsigned i = 0; i < nifaces; i++)
        if (ifaces[i].is_local4(ip_be))
            return true;
    return false;
}

unsigned worker::own_slot6(const ip6_addr& a) const noexcept
{
    return slot_of(laddrs, nladdrs, pack_ep6(a, 0), a);
}

// Client -> peer: from the relayed address of the peer's family.
void worker::turn_c2p_send(rte_mbuf* m, const pkt_meta& meta, turn_alloc* a, packed_ep peer,
                           const ip6_addr& peer6, udp_cksum ck) noexcept
{
    const bool v6 = ep_is_v6(peer);
    if (!v6 && meta.family == 4 && a->relay_laddr == no_laddr) {
        emit(m, meta, a->iface, a->relay_ip_be, a->relay_port_be, peer, ck);
        return;
    }
    uint16_t port = 0;
    const uint16_t slot = relay_slot_for(*a, ifaces, v6, port);
    emit_ep(m, meta, slot, port, peer, &peer6, ck);
}

// Peer -> client: from the listener address the client talks to.
void worker::turn_p2c_send(rte_mbuf* m, const pkt_meta& meta, turn_alloc* a, udp_cksum ck) noexcept
{
    if (meta.family == 4 && a->listen_laddr == no_laddr && !ep_is_v6(a->client)) {
        emit(m, meta, a->iface, a->listen_ip_be, a->listen_port_be, a->client, ck);
        return;
    }
    const unsigned slot = a->listen_laddr != no_laddr ? a->listen_laddr : ifaces[a->iface].laddr4;
    emit_ep(m, meta, slot, a->listen_port_be, a->client, &a->client6, ck);
}

void worker::turn_relayed(turn_alloc* a, uint32_t len, bool channel) noexcept
{
    a->last_seen_tsc = now_tsc_;
    bump(a->ctr.c2p_pkts);
    bump(a->ctr.c2p_bytes, len);
    bump(stats.turn_c2p_pkts);
    bump(stats.turn_c2p_bytes, len);
    if (channel) // counted once it is relayed, like the peer direction
        bump(stats.turn_channel_data);
}

void worker::turn_from_client(rte_mbuf* m, const pkt_meta& meta, turn_alloc* a) noexcept
{
    // An IPv6 client's key holds only a digest of its address.
    if (a == nullptr || (meta.family == 6 && !(a->client6 == src6_of(m, meta)))) {
        drop_pkt(m, drop::turn_no_alloc);
        return;
    }
    packed_ep peer;
    ip6_addr peer6{};
    uint32_t off = 0, len = 0;
    const drop why = turn_c2p_target(a, payload(m, meta), payload_len(m, meta), meta.channel_data,
                                     peer, peer6, off, len);
    if (why != drop::count) {
        bump(a->ctr.c2p_drops);
        drop_pkt(m, why);
        return;
    }
    cksum_delta d;
    keep_payload(m, meta, off, len, d);
    turn_relayed(a, len, meta.channel_data);
    if (ep_is_v6(peer) ? own_slot6(peer6) != no_laddr : is_own_address(ep_ip(peer)))
        turn_hairpin(m, meta, a, peer, peer6);
    else
        turn_c2p_send(m, meta, a, peer, peer6,
                      framed_cksum(m, meta, ifaces[meta.iface], ifaces[a->iface], d));
}

// A frame from a TCP or TLS client (stream_ring.h): the stream thread has
// cut it out of the byte stream; it leaves as UDP from the relayed address,
// with headers written here in front of the data.
void worker::turn_from_stream(rte_mbuf* m) noexcept
{
    constexpr uint32_t hl = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr);
    const uint32_t dlen = rte_pktmbuf_data_len(m);
    if (m->nb_segs != 1 || dlen < sizeof(stream_frame_hdr) + 4) {
        drop_pkt(m, drop::turn_malformed);
        return;
    }
    stream_frame_hdr h;
    std::memcpy(&h, rte_pktmbuf_mtod(m, const void*), sizeof(h));
    turn_alloc* a = h.iface < nifaces ? entry_alloc(flows.lookup_entry(flow_key(
                                                ifaces[h.iface].laddr4,
                                                rte_be_to_cpu_16(h.relay_port_be))))
                                      : nullptr;
    if (a == nullptr || a->stream != h.token) {
        drop_pkt(m, drop::turn_no_alloc);
        return;
    }
    const uint8_t* p = rte_pktmbuf_mtod_offset(m, const uint8_t*, sizeof(h));
    const uint32_t plen = dlen - static_cast<uint32_t>(sizeof(h));
    const bool channel = (p[0] & 0xc0) == 0x40;
    packed_ep peer;
    ip6_addr peer6{};
    uint32_t off = 0, len = 0;
    const drop why = turn_c2p_target(a, p, plen, channel, peer, peer6, off, len);
    if (why != drop::count) {
        bump(a->ctr.c2p_drops);
        drop_pkt(m, why);
        return;
    }
    // Keep just the data, then put Ethernet/IPv4/UDP in front of it.
    rte_pktmbuf_adj(m, static_cast<uint16_t>(sizeof(h) + off));
    rte_pktmbuf_trim(m, static_cast<uint16_t>(rte_pktmbuf_data_len(m) - len));
    auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_prepend(m, hl));
    if (eth == nullptr) {
        bump(a->ctr.c2p_drops);
        drop_pkt(m, drop::turn_no_room);
        return;
    }
    eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
    std::memset(ip, 0, sizeof(*ip));
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(sizeof(*ip) + 8 + len));
    ip->fragment_offset = RTE_BE16(RTE_IPV4_HDR_DF_FLAG);
    ip->next_proto_id = IPPROTO_UDP;
    auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
    udp->dgram_len = rte_cpu_to_be_16(static_cast<uint16_t>(8 + len));
    udp->dgram_cksum = 0;
    m->ol_flags = 0;
    pkt_meta meta{};
    meta.l3_off = sizeof(rte_ether_hdr);
    meta.l4_off = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr);
    meta.iface = a->iface;
    meta.family = 4;
    turn_relayed(a, len, channel);
    if (ep_is_v6(peer) ? own_slot6(peer6) != no_laddr : is_own_address(ep_ip(peer)))
        turn_hairpin(m, meta, a, peer, peer6);
    else
        turn_c2p_send(m, meta, a, peer, peer6,
                      ifaces[a->iface].tx_cksum_offload ? udp_cksum::offload : udp_cksum::compute);
}

// The peer is a relayed address of this box (two participants who both use
// Isar as their TURN server): the packet goes straight to that allocation as
// if it had come from our relayed address, never out of the port and back.
void worker::turn_hairpin(rte_mbuf* m, const pkt_meta& meta, turn_alloc* a, packed_ep peer,
                          const ip6_addr& peer6) noexcept
{
    const uint16_t port = rte_be_to_cpu_16(ep_port(peer));
    const bool v6 = ep_is_v6(peer);
    uint16_t src_port_be = 0;
    const uint16_t from = relay_slot_for(*a, ifaces, v6, src_port_be);
    const uint16_t to_slot = slot_of(laddrs, nladdrs, peer, peer6);
    // Between allocations of the peer's family only (control refuses a
    // permission for a peer of a family the allocation has no address of).
    if (from >= nladdrs || to_slot == no_laddr || laddrs[from].family != (v6 ? 6 : 4)) {
        bump(a->ctr.c2p_drops);
        drop_pkt(m, drop::turn_no_permission);
        return;
    }
    bump(stats.turn_hairpin);
    pkt_meta pm = meta;
    // Checksums in software: the owner classifies the packet again.
    if (!v6 && meta.family == 4) {
        rewrite_to to{};
        to.src_ip_be = laddrs[from].ip4_be;
        to.dst_ip_be = ep_ip(peer);
        to.src_port_be = src_port_be;
        to.dst_port_be = ep_port(peer);
        rewrite_udp4(m, meta.l3_off, meta.l4_off, to, udp_cksum::compute);
    } else {
        rewrite6_to to{};
        to.family = v6 ? 6 : 4;
        to.src_mac = ifaces[laddrs[to_slot].iface].mac;
        to.dst_mac = to.src_mac;
        to.src_ip_be = laddrs[from].ip4_be;
        to.dst_ip_be = ep_ip(peer);
        to.src6 = laddrs[from].ip6;
        to.dst6 = peer6;
        to.src_port_be = src_port_be;
        to.dst_port_be = ep_port(peer);
        if (!rewrite_udp6(m, pm, to, udp_cksum::compute)) {
            drop_pkt(m, drop::no_mbuf);
            return;
        }
        pm.family = to.family;
    }
    pm.v = verdict::lookup;
    pm.pclass = payload_class::other;
    pm.laddr = to_slot;
    pm.key = flow_key(to_slot, port);
    pm.owner = static_cast<uint16_t>(owner_of_port(port, nworkers));
    if (pm.owner != index) {
        handoff(m, pm.owner, hairpin_mark);
        return;
    }
    turn_alloc* b = entry_alloc(flows.lookup_entry(pm.key));
    if (b == nullptr) {
        drop_pkt(m, drop::turn_no_alloc);
        return;
    }
    turn_from_peer(m, pm, b, false);
}

void worker::turn_from_peer(rte_mbuf* m, const pkt_meta& meta, turn_alloc* a,
                            bool from_wire) noexcept
{
    const auto* udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr*, meta.l4_off);
    const bool v6 = meta.family == 6;
    ip6_addr src6{};
    uint32_t src4 = 0;
    packed_ep src;
    drop why = drop::count;
    if (!v6) {
        src4 = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, meta.l3_off)->src_addr;
        src = pack_ep(src4, udp->src_port);
        if (from_wire && ifaces[meta.iface].is_local4(src4))
            why = drop::turn_spoofed;
        else if (!a->hot_permitted(src4, now_tsc_) && !a->permitted(src4, now_tsc_))
            why = drop::turn_no_permission;
    } else {
        src6 = src6_of(m, meta);
        src = pack_ep6(src6, udp->src_port);
        if (from_wire && own_slot6(src6) != no_laddr)
            why = drop::turn_spoofed;
        else if (!a->permitted6(src6, now_tsc_))
            why = drop::turn_no_permission;
    }
    if (why != drop::count) {
        bump(a->ctr.p2c_drops);
        drop_pkt(m, why);
        return;
    }
    const uint32_t dlen = payload_len(m, meta);
    // The channel bound to the peer (0: none), from line 0 when it is the
    // first one.
    uint16_t number = 0;
    if (!v6 && src == a->hot_chan_peer && a->hot(now_tsc_)) {
        number = a->hot_chan_number;
    } else {
        const turn_channel* c =
                v6 ? a->channel_by_peer6(src, src6, now_tsc_) : a->channel_by_peer(src, now_tsc_);
        number = c != nullptr ? c->number : 0;
    }
    cksum_delta d;
    if (number != 0) {
        // Over TCP a ChannelData message is padded to 4 bytes (RFC 8656 §12.5).
        uint8_t* h = grow_payload(m, meta, 4, a->stream != 0 ? turn::pad4(dlen) : 0, d);
        if (h == nullptr || dlen > 0xffff) {
            bump(a->ctr.p2c_drops);
            drop_pkt(m, drop::turn_no_room);
            return;
        }
        h[0] = static_cast<uint8_t>(number >> 8);
        h[1] = static_cast<uint8_t>(number);
        h[2] = static_cast<uint8_t>(dlen >> 8);
        h[3] = static_cast<uint8_t>(dlen);
        d.add += rte_raw_cksum(h, 4);
        bump(stats.turn_channel_data);
    } else {
        const uint32_t front = turn::data_indication_overhead(v6 ? 6 : 4);
        const uint16_t sport = rte_be_to_cpu_16(udp->src_port);
        const turn::transport_addr pa = v6 ? turn::transport_addr::v6(src6.b, sport)
                                           : turn::transport_addr::v4(src4, sport);
        uint8_t* h = dlen + front + 3 <= 0xffff
                             ? grow_payload(m, meta, front, turn::pad4(dlen), d)
                             : nullptr;
        if (h == nullptr) {
            bump(a->ctr.p2c_drops);
            drop_pkt(m, drop::turn_no_room);
            return;
        }
        turn::write_data_indication_header(h, pa, static_cast<uint16_t>(dlen), a->txid);
        // A fresh transaction id per indication: random per allocation, then
        // counted in its last four bytes.
        uint32_t seq;
        std::memcpy(&seq, a->txid + 8, sizeof(seq));
        seq++;
        std::memcpy(a->txid + 8, &seq, sizeof(seq));
        d.add += rte_raw_cksum(h, front);
    }
    a->last_seen_tsc = now_tsc_;
    bump(a->ctr.p2c_pkts);
    bump(a->ctr.p2c_bytes, dlen);
    bump(stats.turn_p2c_pkts);
    bump(stats.turn_p2c_bytes, dlen);
    if (a->stream != 0) {
        to_stream(m, header_len(meta), a->stream);
        return;
    }
    turn_p2c_send(m, meta, a, framed_cksum(m, meta, ifaces[meta.iface], ifaces[a->iface], d));
}

// The client is a TCP or TLS connection: the frame alone goes to its stream
// thread (stream_ring.h).
void worker::to_stream(rte_mbuf* m, uint32_t headers, uint32_t token) noexcept
{
    const unsigned t = stream_thread_of(token);
    rte_pktmbuf_adj(m, static_cast<uint16_t>(headers));
    m->hash.usr = token;
    m->ol_flags = 0;
    if (t >= nstreams || rte_ring_sp_enqueue(stream_out[t], m) != 0) {
        drop_pkt(m, drop::turn_stream_full);
        return;
    }
    bump(stats.turn_stream_out);
}

void worker::apply_alloc(flow_cmd* c) noexcept
{
    turn_alloc* a = c->alloc;
    const uint32_t key = flow_key(relay_slot(*a, ifaces), rte_be_to_cpu_16(a->relay_port_be));
    // A dual allocation's IPv6 relayed address: a second entry, same allocation.
    const bool dual = a->relay2_laddr != no_laddr;
    const uint32_t key2 = dual ? flow_key(a->relay2_laddr, rte_be_to_cpu_16(a->relay2_port_be)) : 0;
    c->status = 0;
    switch (c->op) {
    case cmd_op::add_alloc: {
        int rc = flows.insert(key, a);
        if (rc == 0 && dual) {
            rc = flows.insert(key2, a);
            if (rc != 0)
                flows.erase(key, a);
        }
        if (rc == 0 && a->stream == 0) {
            rc = turn_clients.insert(client_key_of(*a), a);
            if (rc != 0) {
                flows.erase(key, a);
                if (dual)
                    flows.erase(key2, a);
            }
        } else if (rc == 0) {
            stream_allocs_++;
        }
        c->status = rc;
        break;
    }
    case cmd_op::del_alloc:
        flows.erase(key, a);
        if (dual)
            flows.erase(key2, a);
        if (a->stream == 0)
            turn_clients.erase(client_key_of(*a), a);
        else if (stream_allocs_ > 0)
            stream_allocs_--;
        break;
    case cmd_op::set_alloc_peers:
        if (c->peers != nullptr)
            a->set_peers(*c->peers);
        else
            c->status = -EINVAL;
        break;
    default:
        c->status = -EINVAL;
        break;
    }
}

// Before process_burst's act pass, for packets from TURN clients: found by
// their 5-tuple, one bulk lookup for the burst so that the hash buckets'
// misses overlap. allocs[i] = the allocation, or nullptr.
void worker::lookup_turn_clients(rte_mbuf* const* pkts, const pkt_meta* meta, unsigned n,
                                 turn_alloc** allocs) noexcept
{
    turn_client_key ckeys[max_burst];
    const turn_client_key* ckp[max_burst];
    unsigned cidx[max_burst], nc = 0;
    for (unsigned i = 0; i < n; i++) {
        allocs[i] = nullptr;
        if (meta[i].v == verdict::turn_client && meta[i].owner == index) {
            ckeys[nc] = client_key(pkts[i], meta[i]);
            ckp[nc] = &ckeys[nc];
            cidx[nc++] = i;
        }
    }
    if (nc != 0) {
        turn_alloc* found[max_burst];
        turn_clients.lookup_bulk(ckp, nc, found);
        for (unsigned k = 0; k < nc; k++)
            allocs[cidx[k]] = found[k];
    }
}

} // namespace isar::dp
