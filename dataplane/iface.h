// One dataplane interface: a DPDK port with 1..8 local addresses (slots) of
// either family.
#pragma once

#include <cstdint>

#include <rte_ether.h>

#include "dataplane/ip6.h"
#include "dataplane/neighbor.h"

namespace isar::dp {

constexpr unsigned max_laddrs_per_iface = 8;
constexpr uint16_t no_laddr = 0xffff;

// One local address: a *slot*. Slots are numbered over all interfaces in
// config order (interface 0's first); a relay port is keyed by its slot
// (flow_key). A slot's family is fixed.
struct local_addr {
    uint8_t family = 4;      // 4 or 6
    uint8_t prefix_len = 24;
    uint16_t iface = 0;      // interface index
    uint32_t ip4_be = 0;     // family 4
    uint32_t mask4_be = 0;   // family 4
    ip6_addr ip6{};          // family 6
};
static_assert(sizeof(local_addr) == 32);

struct iface {
    uint16_t index = 0;      // position in the dataplane's interface list
    uint16_t port_id = 0;
    // The interface's first IPv4 address (0 when it has none): the kernel
    // interface, gratuitous ARP and the IPv4 fast path of classify use it.
    uint32_t ip_be = 0;
    uint32_t mask_be = 0;
    uint32_t gateway_be = 0; // 0 = none
    // Its slots: laddr_first .. laddr_first + nladdr - 1; laddr4 is the slot
    // of ip_be (no_laddr when it has no IPv4 address).
    uint16_t laddr_first = 0;
    uint16_t nladdr = 0;
    uint16_t laddr4 = no_laddr;
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
    // The IPv6 default gateway (cold: only IPv6 output to an off-link
    // destination reads it).
    bool has_gateway6 = false;
    ip6_addr gateway6{};

    // Its other IPv4 slots' addresses and masks (the first is ip_be/mask_be),
    // for on_link and for recognising ARP to any of them. Empty on the usual
    // single-address interface, which then costs one compare.
    uint8_t nmore4 = 0;
    uint32_t more4_ip_be[max_laddrs_per_iface - 1] = {};
    uint32_t more4_mask_be[max_laddrs_per_iface - 1] = {};

    // Is dst in the prefix of one of the interface's IPv4 addresses?
    bool on_link(uint32_t dst_be) const noexcept
    {
        if (((dst_be ^ ip_be) & mask_be) == 0)
            return true;
        for (unsigned i = 0; i < nmore4; i++)
            if (((dst_be ^ more4_ip_be[i]) & more4_mask_be[i]) == 0)
                return true;
        return false;
    }
    // Is ip one of the interface's IPv4 addresses?
    bool is_local4(uint32_t a_be) const noexcept
    {
        if (a_be == ip_be && ip_be != 0)
            return true;
        for (unsigned i = 0; i < nmore4; i++)
            if (a_be == more4_ip_be[i])
                return true;
        return false;
    }
    // Next hop for a destination, 0 when there is none.
    uint32_t next_hop(uint32_t dst_be) const noexcept
    {
        return on_link(dst_be) ? dst_be : gateway_be;
    }
};

} // namespace isar::dp
