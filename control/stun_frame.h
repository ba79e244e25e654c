// STUN over the dataplane's ports, on the control lcore: where a request
// came from (taken from the frame the worker handed over) and the frame that
// carries the answer back (Ethernet/IPv4/UDP around a STUN message, sent on
// the control lcore's own TX queue).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "dataplane/dataplane.h"
#include "turn/stun.h"

namespace isar::ctl {

// The 5-tuple of a request and the way back to its sender. An IPv4 client
// has its addresses in client_ip_be/local_ip_be, an IPv6 one (family 6) in
// client6/local6 (client_ip_be/local_ip_be are then 0). TCP/TLS clients are
// IPv4 only (the kernel interface is IPv4 only).
struct stun_origin {
    unsigned iface = 0;
    rte_ether_addr peer_mac{};  // the frame's source: the client or its router
    uint8_t family = 4;         // of the client and the listener address
    uint16_t laddr = dp::no_laddr; // the listener address's slot (UDP clients)
    uint32_t client_ip_be = 0;
    uint16_t client_port_be = 0;
    uint32_t local_ip_be = 0;   // the listener address and port it was sent to
    uint16_t local_port_be = 0;
    dp::ip6_addr client6{};
    dp::ip6_addr local6{};
    uint32_t stream = 0;        // TCP/TLS: the connection's token (stream_hub.h); 0 = UDP
    bool tls = false;

    const char* transport() const noexcept { return stream == 0 ? "udp" : tls ? "tls" : "tcp"; }

    turn::transport_addr client() const noexcept;
    // "198.18.0.2:4000" or "[2001:2::2]:4000" (logs, isarctl).
    std::string client_text() const;
    std::string listener_text() const;
};

// The UDP payload of a frame a worker classified (Ethernet/IPv4/UDP or
// Ethernet/IPv6/UDP, checked by classify; IPv6 extension headers are walked
// again, bounded); false when `m` is not that.
bool stun_payload(const rte_mbuf* m, const dp::dataplane& dp, stun_origin& from,
                  const uint8_t*& payload, size_t& len) noexcept;

// Sends msg[0..len) to `to` (back to where the request came from). False
// when no mbuf could be had or the port did not take it.
bool send_stun(dp::dataplane& dp, const stun_origin& to, const uint8_t* msg, size_t len) noexcept;

class stream_hub;

// Where answers go: a UDP client's through the dataplane (send_stun), a TCP
// or TLS client's to its stream thread.
struct stun_out {
    dp::dataplane& dp;
    stream_hub* hub = nullptr;

    bool send(const stun_origin& to, const uint8_t* msg, size_t len) const;
};

} // namespace isar::ctl
