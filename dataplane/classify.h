// Classification of one received frame: L2-L4 checks, RFC 7983 demux, the
// flow key and the owning worker. Pure function of the packet bytes and the
// interface table; unit-tested on its own (tests/unit/test_classify.cc).
#pragma once

#include <cstdint>

#include <rte_mbuf.h>
#include <rte_udp.h>

#include "dataplane/stats.h"

namespace isar::dp {

struct iface;
struct local_addr;

enum class verdict : uint8_t {
    drop,      // meta.reason says why
    exception, // to the control lcore; meta.exc says what
    lookup,    // UDP to a relay port: look up meta.key (meta.pclass: what it carries)
    turn_client, // ChannelData or a Send indication to a TURN listener port:
                 // look the allocation up by the client's 5-tuple (owner:
                 // owner_of_client)
    kernel,    // to the interface's kernel interface (TCP for TURN over
               // TCP/TLS and ICMP errors quoting TCP; with kernel_forward =
               // "all" also other TCP and UDP)
};

// What a UDP payload is by its first byte (RFC 7983). A leg forwards only
// RTP/RTCP; a TURN allocation relays whatever its peers send.
enum class payload_class : uint8_t {
    rtp,       // 128-191, at least 8 bytes
    rtp_short, // 128-191, shorter
    stun,      // 0-3
    dtls,      // 20-63
    other,     // anything else, or empty
};

enum class exc_kind : uint8_t {
    arp = 1,
    icmp,
    stun,
    dtls,
    hold, // rewritten packet waiting for its next hop's MAC; m->port = TX port
    turn, // STUN/TURN request to a TURN listener port (policed, own ring)
    nd,    // ICMPv6 Neighbor Discovery (133-137) for us: priority ring, like ARP
    icmp6, // any other ICMPv6 for us (echo request, errors): policed with ICMP
};

struct pkt_meta {
    verdict v = verdict::drop;
    drop reason = drop::bad_l2;
    exc_kind exc = exc_kind::arp;
    uint8_t l3_off = 0;   // from the start of the frame
    uint8_t family = 4;   // of the received packet: 4 or 6
    payload_class pclass = payload_class::other;
    bool channel_data = false; // turn_client: ChannelData (else a Send indication)
    uint16_t l4_off = 0;  // from the start of the frame (IPv6 extension headers
                          // may put it past 255)
    uint16_t owner = 0;   // worker owning the relay port (classify_ctx::port_owner)
    uint16_t iface = 0;   // receiving interface
    uint16_t laddr = 0;   // the destination address's slot (local_addr)
    uint32_t key = 0;     // flow key: see flow_key()
};

// The flow-table slot of a relay port: local address slot << 16 | port (host
// order). See flow_table.h.
constexpr uint32_t flow_key(uint16_t laddr, uint16_t relay_port) noexcept
{
    return (static_cast<uint32_t>(laddr) << 16) | relay_port;
}

struct local_addr;

struct classify_ctx {
    const iface* ifaces = nullptr;
    const local_addr* laddrs = nullptr; // every interface's slots (iface::laddr_first)
    uint16_t nladdrs = 0;
    const int16_t* iface_of_port = nullptr; // indexed by DPDK port id, -1 = none
    uint16_t nports = 0;                   // size of iface_of_port
    uint16_t nworkers = 1;
    // Per address slot (nladdrs of them): UDP port -> owning worker
    // (ownership.h: the pairs rule, or the NIC's Toeplitz map). nullptr, or
    // a nullptr entry: the pairs rule (owner_of_port).
    const uint8_t* const* port_owner = nullptr;
    // The relay port pool: UDP to these ports is looked up whatever it
    // carries (a TURN allocation relays anything).
    uint16_t relay_min = 0;
    uint16_t relay_max = 0;
    // TURN listener ports (host order); nturn_ports = 0: TURN is off.
    static constexpr unsigned max_turn_ports = 8;
    uint16_t turn_ports[max_turn_ports] = {};
    uint8_t nturn_ports = 0;

    // TURN over TCP/TLS listener ports (host order): TCP to them goes to the
    // kernel interface of an interface that has one (iface::kernel).
    static constexpr unsigned max_stream_ports = 16;
    uint16_t stream_ports[max_stream_ports] = {};
    uint8_t nstream_ports = 0;

    bool is_turn_port(uint16_t port) const noexcept
    {
        for (unsigned i = 0; i < nturn_ports; i++)
            if (turn_ports[i] == port)
                return true;
        return false;
    }
    bool is_stream_port(uint16_t port) const noexcept
    {
        for (unsigned i = 0; i < nstream_ports; i++)
            if (stream_ports[i] == port)
                return true;
        return false;
    }
};

inline void set_drop(pkt_meta& meta, drop d) noexcept
{
    meta.v = verdict::drop;
    meta.reason = d;
}
inline void set_exc(pkt_meta& meta, exc_kind k) noexcept
{
    meta.v = verdict::exception;
    meta.exc = k;
}

// The RFC 7983 class of a UDP payload, from its first byte.
inline payload_class payload_class_of(const uint8_t* p, uint32_t len) noexcept
{
    if (len == 0)
        return payload_class::other;
    const uint8_t b0 = p[0];
    // RFC 7983 demultiplexing by the first payload byte.
    if (b0 <= 3)
        return payload_class::stun;
    if (b0 >= 20 && b0 <= 63)
        return payload_class::dtls;
    if (b0 < 128 || b0 > 191)
        return payload_class::other;
    return len < 8 ? payload_class::rtp_short : payload_class::rtp;
}

// A payload a leg does not forward: STUN/DTLS -> exception, else a drop.
void classify_non_rtp(payload_class pc, pkt_meta& meta) noexcept;

// Classifies `m` (received on m->port) and, for packets that go on, trims the
// frame to the IPv4 total length (drops Ethernet padding).
void classify_one(const classify_ctx& ctx, rte_mbuf* m, pkt_meta& meta) noexcept;

// The parts classify.cc (IPv4) and classify6.cc (IPv6) share.
// A valid UDP datagram to slot meta.laddr, by its destination port;
// src_key: the client's IPv4 address (IPv6: the address's fold32) for
// owner_of_client.
void classify_udp_dst(const classify_ctx& ctx, const iface& ifc, uint32_t src_key,
                      const rte_udp_hdr* udp, const uint8_t* pl, uint32_t plen,
                      pkt_meta& meta) noexcept;
// An IPv6 frame (EtherType 0x86DD) received on `ifc`, `len` bytes.
void classify_ip6(const classify_ctx& ctx, const iface& ifc, rte_mbuf* m, uint32_t len,
                  pkt_meta& meta) noexcept;

} // namespace isar::dp
