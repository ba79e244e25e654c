// Classification of one received frame: L2-L4 checks, RFC 7983 demux, the
// flow key and the owning worker. Pure function of the packet bytes and the
// interface table; unit-tested on its own (tests/unit/test_classify.cc).
#pragma once

#include <cstdint>

#include <rte_mbuf.h>

#include "dataplane/stats.h"

namespace isar::dp {

struct iface;

enum class verdict : uint8_t {
    drop,      // meta.reason says why
    exception, // to the control lcore; meta.exc says what
    lookup,    // UDP RTP/RTCP to a relay port: look up meta.key
};

enum class exc_kind : uint8_t {
    arp = 1,
    icmp,
    stun,
    dtls,
    hold, // rewritten packet waiting for its next hop's MAC; m->port = TX port
};

struct pkt_meta {
    verdict v = verdict::drop;
    drop reason = drop::bad_l2;
    exc_kind exc = exc_kind::arp;
    uint8_t l3_off = 0;   // from the start of the frame
    uint8_t l4_off = 0;
    uint16_t owner = 0;   // worker owning the relay port
    uint16_t iface = 0;   // receiving interface
    uint32_t key = 0;     // flow key: see flow_key()
};

// The flow-table slot of a relay port: interface index << 16 | port (host
// order). See flow_table.h.
constexpr uint32_t flow_key(uint16_t iface_index, uint16_t relay_port) noexcept
{
    return (static_cast<uint32_t>(iface_index) << 16) | relay_port;
}

struct classify_ctx {
    const iface* ifaces = nullptr;
    const int16_t* iface_of_port = nullptr; // indexed by DPDK port id, -1 = none
    uint16_t nports = 0;                   // size of iface_of_port
    uint16_t nworkers = 1;
};

// Classifies `m` (received on m->port) and, for packets that go on, trims the
// frame to the IPv4 total length (drops Ethernet padding).
void classify_one(const classify_ctx& ctx, rte_mbuf* m, pkt_meta& meta) noexcept;

} // namespace isar::dp
