// THE configuration of isard: defaults in one place, parsed once from TOML,
// validated, then immutable. Every key is documented here and in README.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "control/addr.h"

namespace isar::ctl {

// At most this many addresses on one interface (dp: a slot per address).
inline constexpr unsigned max_iface_addrs = 8;

struct interface_config {
    uint16_t port = 0;      // DPDK port id                      [[interface]] port
    // Every address of the interface, of either family, in config order:
    // each is an address slot (laddr) with its own relay port pool.
    //   [[interface]] address = "A/P" or ["A/P", "X::Y/P", ...] (1..8)
    std::vector<ip_prefix> addrs;
    // The first IPv4 address of addrs (0 and 0 when there is none): what the
    // kernel interface and gratuitous ARP use, as before.
    uint32_t address = 0;   // IPv4, host order
    uint8_t prefix_len = 0; //                                   (the /P part)
    // [[interface]] gateway = "G" or ["G4", "G6"] (at most one per family)
    uint32_t gateway = 0;   // IPv4, 0 = none (on-link peers only)
    std::optional<ip_addr> gateway6; // IPv6 next hop (may be link-local)
    // [[interface]] public_address = ["203.0.113.7", "2001:2::7"]: the address
    // in front of 1:1 NAT reported instead of the interface's own (in a leg's
    // `local` and TURN's XOR-RELAYED-ADDRESS); at most one per family, and
    // only for a family the interface has exactly one address of.
    std::vector<ip_addr> public_addrs;
    bool tx_checksum_offload = true; // use the port's, if it has one  [[interface]] tx_checksum_offload
    // The kernel interface (a net_tap isard creates when TURN listens on TCP
    // or TLS) that carries this interface's address for the kernel's TCP:
    // "" = "isar<port>".                                        [[interface]] kernel_iface
    std::string kernel_iface;
    // What goes up to it: "turn" = TCP to turn.listen_tcp/listen_tls only;
    // "all" = also any other TCP to the address and UDP to ports that are
    // neither relay nor TURN ports (SSH, the box's own DNS, ...).
    //                                                           [[interface]] kernel_forward
    bool kernel_forward_all = false;
};

// [turn]: Isar as a TURN server (RFC 8656) with coturn's use-auth-secret
// (TURN REST API) authentication. Off while listen_udp, listen_tcp and
// listen_tls are all empty.
struct turn_config {
    std::vector<uint16_t> listen_udp;   // UDP ports on every interface address; [] = off
    std::vector<uint16_t> listen_tcp;   // TURN over TCP (RFC 8656 framing), e.g. [3478]
    std::vector<uint16_t> listen_tls;   // TURN over TLS (TURNS), e.g. [443, 5349]
    std::string tls_cert;               // PEM certificate chain (required with listen_tls)
    std::string tls_key;                // PEM private key, not readable by others
    uint32_t max_connections = 10000;   // TCP and TLS connections in all; closed at once beyond
    uint32_t stream_threads = 2;        // threads (each with its own io_uring) serving them
    uint32_t stream_send_buffer = 65536; // bytes queued per connection; the excess is dropped
    uint32_t stream_timeout_s = 30;     // a connection without an allocation this long after
                                        // opening, stalled mid-message or not reading is closed
    std::string realm;                  // REALM (required when on)
    std::string auth_secret_file;       // one secret per line, not readable by others
    std::vector<std::string> allowed_peer; // CIDRs; a match is permitted (checked first)
    std::vector<std::string> denied_peer;  // CIDRs; default: turn::peer_policy::default_denied()
    uint32_t max_allocations = 100000;  // allocations in all (508 beyond)
    uint32_t user_quota = 0;            // allocations per username, 0 = no limit (486)
    uint32_t allocate_rate = 20;        // Allocate requests per second per client IP (486), 0 = off
    uint32_t max_requests_per_s = 20000; // STUN/TURN requests the workers hand control, in all
    uint32_t default_lifetime_s = 600;  // allocation lifetime when the client asks for none
    uint32_t max_lifetime_s = 3600;     // the longest granted
    uint32_t nonce_lifetime_s = 600;    // a NONCE older than this gets 438 (stale)

    bool streams() const { return !listen_tcp.empty() || !listen_tls.empty(); }
    bool enabled() const { return !listen_udp.empty() || streams(); }
};

struct config {
    // [eal]
    std::vector<std::string> eal_args;        // args: passed to rte_eal_init as given
    // [[interface]]
    std::vector<interface_config> interfaces; // at least one
    // [relay]
    uint16_t port_min = 30000;      // relay UDP port pool, inclusive
    uint16_t port_max = 39999;
    uint32_t idle_timeout_s = 60;   // a session with no packet for this long is deleted
    bool strict_source = true;      // drop packets from anything but the latched remote
    uint32_t latch_window_s = 0;    // a leg without a remote latches only this long after it
                                    // was created or cleared (0 = no limit)
    uint32_t max_legs = 65536;      // flow table size of each worker
    // srtp_compact_keys: AES-GCM key schedules in intel-ipsec-mb's compact
    // (AVX2) form where its AVX-512/VAES form is the fastest: ~1.2 KB less
    // per SRTP leg for ~20 % more cycles per GCM packet (crypto/README.md).
    bool srtp_compact_keys = false;
    // [control]
    std::string socket = "/run/isar/isard.sock"; // management socket (Unix stream)
    uint32_t socket_mode = 0660;    // its permissions, as an octal string "0660"
    uint32_t max_clients = 64;      // concurrent management connections
    uint32_t drain_timeout_s = 30;  // drain (command or SIGTERM): exit after this at the latest
                                    // (0 = SIGTERM stops at once, no drain)
    std::string socket_group;       // group owning the socket (name or gid); "" = isard's own
    uint32_t socket_gid = UINT32_MAX; // resolved from socket_group at load time (UINT32_MAX = none)
    uint32_t idle_timeout_mgmt_s = 300; // [control] idle_timeout_s: a silent client is closed
    uint32_t max_inflight = 1024;   // requests being handled at once (all clients); "busy" beyond
    // [metrics]
    std::string metrics_listen = "127.0.0.1:9477"; // HTTP /metrics, /healthz; "" = off
    uint32_t metrics_ip = 0x7f000001;              // parsed from metrics_listen (host order)
    uint16_t metrics_port = 9477;
    // [debug]
    bool allow_wedge = false;       // enables the debug.wedge_worker command (watchdog tests)
    // [dataplane]
    uint32_t mbufs = 16383;         // packet buffers
    uint32_t idle_sleep_us = 0;     // workers sleep this long when idle (0 = always poll)
    uint32_t hold_per_next_hop = 64; // packets held per next hop while ARP resolves it
    uint32_t hold_total = 4096;     // packets held in all
    uint32_t neighbors = 4096;      // neighbour (ARP/ND) entries per family and interface
    // port_ownership = "auto": relay ports owned as the NIC's RSS spreads
    // packets where it can hash on the UDP destination (or an rte_flow rule
    // can); "pairs": ports dealt in pairs, packets handed off between workers.
    bool rss_ownership = true;
    // [exception]: packets per second (all workers together) each kind may
    // take to the control lcore; the excess is dropped as policed_*. 0 = unpoliced.
    uint32_t arp_reply_pps = 20000; // ARP replies to our address
    uint32_t arp_request_pps = 2000; // ARP requests for our address
    uint32_t arp_other_pps = 500;   // any other ARP (requests for others, gratuitous)
    uint32_t icmp_pps = 1000;
    uint32_t stun_pps = 5000;       // STUN to leg ports
    uint32_t dtls_pps = 5000;       // DTLS to leg ports
    uint32_t kernel_pps = 200000;   // frames to the kernel interface (TURN over TCP/TLS)
    uint32_t nd_pps = 5000;         // Neighbor Discovery (ICMPv6 133-137) to us
    // [log]
    std::string log_level = "info"; // error, warning, notice, info, debug
    // [turn]
    turn_config turn;
};

// One address slot (laddr): slots are numbered over all interfaces in config
// order, interface 0's addresses first.
struct addr_slot {
    unsigned iface = 0;
    ip_prefix addr;
    std::optional<ip_addr> public_addr; // the interface's public_address of this family
};
std::vector<addr_slot> address_slots(const config& c);

// Parses and validates. On error returns nullopt and `err` names the key and
// says what is wrong.
std::optional<config> parse_config(const std::string& toml_text, std::string& err);
std::optional<config> load_config(const std::string& path, std::string& err);

// The effective configuration as TOML (isard --print-config).
std::string dump_config(const config& c);

} // namespace isar::ctl
