// One dataplane interface: a DPDK port with one IPv4 address.
#pragma once

#include <cstdint>

#include <rte_ether.h>

#include "dataplane/neighbor.h"

namespace isar::dp {

struct iface {
    uint16_t index = 0;      // position in the dataplane's interface list
    uint16_t port_id = 0;
    uint32_t ip_be = 0;
    uint32_t mask_be = 0;
    uint32_t gateway_be = 0; // 0 = none
    rte_ether_addr mac{};
    neighbor_table* neigh = nullptr;
    // Checksum handling (see rewrite_udp4):
    // the port computes IPv4 and UDP checksums on transmit;
    bool tx_cksum_offload = false;
    // frames may arrive with only the pseudo-header sum in the UDP checksum
    // field (a local kernel's CHECKSUM_PARTIAL, as net_af_packet hands them
    // over), so an incoming checksum cannot be updated, only recomputed.
    bool rx_partial_cksum = false;
    // Largest IP packet the port sends (rte_eth_dev_get_mtu at init); bigger
    // ones are dropped as mtu_exceeded. 0 = no check.
    uint32_t mtu = 1500;
    // The kernel interface (kernel_iface.h) carrying this interface's
    // address: a net_tap port with one queue pair per worker. TCP to the
    // TURN stream ports goes up; with kernel_all also any other TCP and UDP
    // to ports that are neither relay nor TURN ports.
    bool kernel = false;
    bool kernel_all = false;
    uint16_t kernel_port = 0;

    bool on_link(uint32_t ip_be_) const noexcept { return ((ip_be_ ^ ip_be) & mask_be) == 0; }
    // Next hop for a destination, 0 when there is none.
    uint32_t next_hop(uint32_t dst_be) const noexcept
    {
        return on_link(dst_be) ? dst_be : gateway_be;
    }
};

} // namespace isar::dp
