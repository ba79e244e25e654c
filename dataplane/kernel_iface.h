// The kernel interface of a dataplane interface: a net_tap port whose kernel
// side carries the interface's address, so that the kernel's TCP stack
// terminates what the dataplane hands it (TURN over TCP/TLS, and with
// kernel_forward = "all" the box's own TCP and UDP). isard creates and
// configures it itself (rtnetlink, no `ip` subprocess). Init path only.
//
// The kernel side never speaks ARP: it is IFF_NOARP, so the kernel puts its
// own MAC as the destination of everything it sends and the worker rewrites
// it from the dataplane's neighbour table; the dataplane stays the only ARP
// speaker on the wire. IPv6 is disabled on it (no RS, MLD or ND).
#pragma once

#include <cstdint>
#include <string>

#include <rte_ether.h>

namespace isar::dp {

struct kernel_iface_spec {
    std::string name;        // the kernel netdev's name, e.g. "isar0"
    rte_ether_addr mac{};    // the DPDK port's MAC: the kernel's frames carry it
    uint32_t ip_be = 0;
    uint8_t prefix_len = 24;
    uint32_t gateway_be = 0; // 0 = none; else a default route through it (metric 1024)
    uint32_t mtu = 1500;     // the DPDK port's
};

// Creates the net_tap vdev ("net_tap_<name>", iface=<name>, mac=<mac>) and
// returns its port id. Fails when the name is taken or the process may not
// create taps (CAP_NET_ADMIN, /dev/net/tun).
int kernel_tap_create(const kernel_iface_spec& s, uint16_t& port_id, std::string& err);
// Before the port starts: IPv6 off, IFF_NOARP, MAC, MTU, the IPv4 address.
int kernel_iface_configure(const kernel_iface_spec& s, std::string& err);
// After the port started: link up, and the default route when there is a
// gateway (an existing one is left alone).
int kernel_iface_up(const kernel_iface_spec& s, std::string& err);
// Stops, closes and removes the tap (the kernel netdev goes with it).
void kernel_tap_remove(uint16_t port_id);

} // namespace isar::dp
