#include "control/config.h"

#include <grp.h>

#include <algorithm>
#include <fstream>
#include <vector>
#include <set>
#include <sstream>

#include <toml++/toml.h>

#include "control/addr.h"
#include "turn/peer_policy.h"

namespace isar::ctl {

namespace {

struct parse_error {
    std::string msg;
};

[[noreturn]] void fail(const std::string& key, const std::string& what)
{
    throw parse_error{key + ": " + what};
}

void check_keys(const toml::table& t, const std::string& where, const std::set<std::string>& known)
{
    for (auto&& [k, v] : t) {
        if (!known.count(std::string(k.str()))) {
            std::string list;
            for (auto& s : known)
                list += (list.empty() ? "" : ", ") + s;
            fail(where.empty() ? std::string(k.str()) : where + "." + std::string(k.str()),
                 "unknown key (known here: " + list + ")");
        }
    }
}

// [control] socket_group: a group name, or a numeric gid.
uint32_t resolve_group(const std::string& g)
{
    if (g.find_first_not_of("0123456789") == std::string::npos && g.size() <= 9)
        return static_cast<uint32_t>(std::stoul(g));
    std::vector<char> buf(16384);
    group gr{};
    group* res = nullptr;
    if (getgrnam_r(g.c_str(), &gr, buf.data(), buf.size(), &res) != 0 || res == nullptr)
        fail("control.socket_group", "no group \"" + g + "\" (a group name or a numeric gid)");
    return res->gr_gid;
}

const toml::table* section(const toml::table& root, const std::string& name)
{
    const toml::node* n = root.get(name);
    if (n == nullptr)
        return nullptr;
    if (!n->is_table())
        fail(name, "must be a table ([" + name + "])");
    return n->as_table();
}

template <typename T>
void get_uint(const toml::table& t, const std::string& sec, const std::string& key, T& out,
              uint64_t min, uint64_t max)
{
    const toml::node* n = t.get(key);
    if (n == nullptr)
        return;
    const std::string full = sec + "." + key;
    if (!n->is_integer())
        fail(full, "expected an integer from " + std::to_string(min) + " to " +
                           std::to_string(max));
    int64_t v = n->as_integer()->get();
    if (v < 0 || static_cast<uint64_t>(v) < min || static_cast<uint64_t>(v) > max)
        fail(full, "must be from " + std::to_string(min) + " to " + std::to_string(max) +
                           ", got " + std::to_string(v));
    out = static_cast<T>(v);
}

void get_bool(const toml::table& t, const std::string& sec, const std::string& key, bool& out)
{
    const toml::node* n = t.get(key);
    if (n == nullptr)
        return;
    if (!n->is_boolean())
        fail(sec + "." + key, "expected true or false");
    out = n->as_boolean()->get();
}

void get_string(const toml::table& t, const std::string& sec, const std::string& key,
                std::string& out)
{
    const toml::node* n = t.get(key);
    if (n == nullptr)
        return;
    if (!n->is_string())
        fail(sec + "." + key, "expected a string");
    out = n->as_string()->get();
}

void get_strings(const toml::table& t, const std::string& sec, const std::string& key,
                 std::vector<std::string>& out)
{
    const toml::node* n = t.get(key);
    if (n == nullptr)
        return;
    if (!n->is_array())
        fail(sec + "." + key, "expected an array of strings");
    out.clear();
    size_t i = 0;
    for (auto&& e : *n->as_array()) {
        if (!e.is_string())
            fail(sec + "." + key + "[" + std::to_string(i) + "]", "expected a string");
        out.push_back(e.as_string()->get());
        i++;
    }
}

// [turn] listen_udp/listen_tcp/listen_tls: up to 8 ports each, none in the
// relay pool, none twice (nor in `other`: TCP and TLS cannot share a port).
void parse_ports(const toml::table& t, const char* key, const config& c,
                 std::vector<uint16_t>& out, const std::vector<uint16_t>& other)
{
    const std::string k = std::string("turn.") + key;
    const toml::node* n = t.get(key);
    if (n == nullptr)
        return;
    if (!n->is_array())
        fail(k, "expected an array of ports, e.g. [3478]");
    size_t i = 0;
    for (auto&& e : *n->as_array()) {
        const std::string w = k + "[" + std::to_string(i++) + "]";
        if (!e.is_integer() || e.as_integer()->get() < 1 || e.as_integer()->get() > 65535)
            fail(w, "expected a port from 1 to 65535");
        const auto p = static_cast<uint16_t>(e.as_integer()->get());
        if (p >= c.port_min && p <= c.port_max)
            fail(w, std::to_string(p) + " lies in the relay port pool (relay.port_min.." +
                            "relay.port_max)");
        if (std::find(out.begin(), out.end(), p) != out.end())
            fail(w, std::to_string(p) + " is listed twice");
        if (std::find(other.begin(), other.end(), p) != other.end())
            fail(w, std::to_string(p) + " is also in turn.listen_tcp");
        out.push_back(p);
    }
    if (out.size() > 8)
        fail(k, "at most 8 ports");
}

// A string, or an array of strings (`key` is "address", "gateway", ...):
// the strings with the key each is to be named by in an error.
std::vector<std::pair<std::string, std::string>> string_or_list(const toml::table& t,
                                                                const std::string& where,
                                                                const std::string& key)
{
    std::vector<std::pair<std::string, std::string>> out;
    const toml::node* n = t.get(key);
    const std::string k = where + "." + key;
    if (n == nullptr)
        return out;
    if (n->is_string()) {
        out.emplace_back(k, n->as_string()->get());
        return out;
    }
    if (!n->is_array())
        fail(k, "expected a string or an array of strings");
    size_t i = 0;
    for (auto&& e : *n->as_array()) {
        const std::string ki = k + "[" + std::to_string(i++) + "]";
        if (!e.is_string())
            fail(ki, "expected a string");
        out.emplace_back(ki, e.as_string()->get());
    }
    return out;
}

const char* family_name(uint8_t f)
{
    return f == 6 ? "IPv6" : "IPv4";
}

// An IPv4 or IPv6 gateway: another host in one of the interface's prefixes of
// its family (an IPv6 gateway may also be link-local, as routers' usually are).
void parse_gateways(const toml::table& t, const std::string& where, interface_config& ic)
{
    bool seen[2] = {false, false};
    for (auto& [key, s] : string_or_list(t, where, "gateway")) {
        auto g = parse_ip(s);
        if (!g || !usable_unicast(*g))
            fail(key, "bad IP address \"" + s + "\"");
        bool& dup = seen[g->family == 6];
        if (dup)
            fail(key, std::string("a second ") + family_name(g->family) +
                              " gateway (at most one per family)");
        dup = true;
        const bool link_local = g->family == 6 && g->v6[0] == 0xfe && (g->v6[1] & 0xc0) == 0x80;
        bool on_link = false, has_family = false;
        for (const ip_prefix& a : ic.addrs) {
            if (a.addr.family != g->family)
                continue;
            has_family = true;
            if (a.addr == *g)
                fail(key, s + " is the interface's own address");
            on_link = on_link || same_prefix(a.addr, *g, a.len);
        }
        if (!has_family)
            fail(key, std::string("the interface has no ") + family_name(g->family) +
                              " address for gateway " + s);
        if (!on_link && !link_local)
            fail(key, s + " is not another host in " +
                              (g->family == 4 ? format_prefix({ip_addr::from_v4(ic.address),
                                                               ic.prefix_len})
                                              : std::string("any of the interface's IPv6 "
                                                            "prefixes")));
        if (g->family == 4)
            ic.gateway = g->v4;
        else
            ic.gateway6 = *g;
    }
}

// [[interface]] address (1..8, either family), gateway, public_address.
void parse_addresses(const toml::table& t, const std::string& where, interface_config& ic)
{
    const toml::node* n = t.get("address");
    if (n == nullptr || (n->is_string() && n->as_string()->get().empty()) ||
        (n->is_array() && n->as_array()->empty()))
        fail(where + ".address", "missing (e.g. \"198.18.0.1/24\" or [\"198.18.0.1/24\", "
                                 "\"2001:2::1/64\"])");
    for (auto& [key, s] : string_or_list(t, where, "address")) {
        std::string err;
        auto p = parse_ip_prefix(s, err);
        if (!p)
            fail(key, err);
        for (const ip_prefix& o : ic.addrs)
            if (o.addr == p->addr)
                fail(key, format_ip(p->addr) + " is listed twice");
        ic.addrs.push_back(*p);
        if (p->addr.family == 4 && ic.address == 0) {
            ic.address = p->addr.v4;
            ic.prefix_len = p->len;
        }
    }
    if (ic.addrs.size() > max_iface_addrs)
        fail(where + ".address", "at most " + std::to_string(max_iface_addrs) +
                                         " addresses per interface");
    parse_gateways(t, where, ic);
    for (auto& [key, s] : string_or_list(t, where, "public_address")) {
        auto a = parse_ip(s);
        if (!a || !usable_unicast(*a))
            fail(key, "bad IP address \"" + s + "\"");
        unsigned same_family = 0;
        for (const ip_prefix& p : ic.addrs)
            same_family += p.addr.family == a->family;
        if (same_family != 1)
            fail(key, std::string("a public ") + family_name(a->family) + " address needs " +
                              "exactly one " + family_name(a->family) +
                              " address on the interface (1:1 NAT), it has " +
                              std::to_string(same_family));
        for (const ip_addr& o : ic.public_addrs)
            if (o.family == a->family)
                fail(key, std::string("a second public ") + family_name(a->family) +
                                  " address (at most one per family)");
        ic.public_addrs.push_back(*a);
    }
}

// No address on two interfaces.
void check_unique_addresses(const config& c)
{
    for (size_t i = 0; i < c.interfaces.size(); i++)
        for (size_t j = 0; j < i; j++)
            for (const ip_prefix& a : c.interfaces[i].addrs)
                for (const ip_prefix& b : c.interfaces[j].addrs)
                    if (a.addr == b.addr)
                        fail("interface[" + std::to_string(i) + "].address",
                             format_ip(a.addr) + " is also an address of interface[" +
                                     std::to_string(j) + "]");
}

void parse_turn(const toml::table& t, config& c)
{
    turn_config& tc = c.turn;
    check_keys(t, "turn",
               {"listen_udp", "listen_tcp", "listen_tls", "tls_cert", "tls_key", "max_connections",
                "stream_threads", "stream_send_buffer", "stream_timeout_s", "realm",
                "auth_secret_file", "allowed_peer", "denied_peer",
                "max_allocations", "user_quota", "allocate_rate", "max_requests_per_s",
                "default_lifetime_s", "max_lifetime_s", "nonce_lifetime_s"});
    parse_ports(t, "listen_udp", c, tc.listen_udp, {});
    parse_ports(t, "listen_tcp", c, tc.listen_tcp, {});
    parse_ports(t, "listen_tls", c, tc.listen_tls, tc.listen_tcp);
    get_string(t, "turn", "tls_cert", tc.tls_cert);
    get_string(t, "turn", "tls_key", tc.tls_key);
    get_uint(t, "turn", "max_connections", tc.max_connections, 1, 1u << 20);
    get_uint(t, "turn", "stream_threads", tc.stream_threads, 1, 16);
    // At least one frame of the largest size a connection carries
    // (turn::stream_max_frame, 4096) plus a TLS record's overhead, with room
    // to spare for what is already queued: below that a connection could not
    // queue a largest frame even when idle.
    if (const toml::node* n = t.get("stream_send_buffer");
        n != nullptr && n->is_integer() && n->as_integer()->get() >= 0 &&
        n->as_integer()->get() < 8192)
        fail("turn.stream_send_buffer",
             "must be at least 8192: a connection must hold a largest frame (4096 bytes) "
             "plus TLS record overhead with room to spare, got " + std::to_string(n->as_integer()->get()));
    get_uint(t, "turn", "stream_send_buffer", tc.stream_send_buffer, 8192, 16u << 20);
    get_uint(t, "turn", "stream_timeout_s", tc.stream_timeout_s, 1, 3600);
    if (!tc.listen_tls.empty())
        for (const char* k : {"tls_cert", "tls_key"}) {
            const std::string& v = std::string(k) == "tls_cert" ? tc.tls_cert : tc.tls_key;
            if (v.empty() || v[0] != '/')
                fail("turn." + std::string(k), "missing or not an absolute path (PEM file; "
                                               "required with turn.listen_tls)");
        }
    get_string(t, "turn", "realm", tc.realm);
    get_string(t, "turn", "auth_secret_file", tc.auth_secret_file);
    get_strings(t, "turn", "allowed_peer", tc.allowed_peer);
    tc.denied_peer = turn::peer_policy::default_denied();
    get_strings(t, "turn", "denied_peer", tc.denied_peer);
    for (const char* key : {"allowed_peer", "denied_peer"}) {
        const auto& list = std::string(key) == "allowed_peer" ? tc.allowed_peer : tc.denied_peer;
        for (size_t i = 0; i < list.size(); i++)
            if (!turn::parse_cidr(list[i]))
                fail("turn." + std::string(key) + "[" + std::to_string(i) + "]",
                     "bad CIDR \"" + list[i] + "\" (expected e.g. \"198.18.0.0/24\")");
    }
    get_uint(t, "turn", "max_allocations", tc.max_allocations, 1, 16u << 20);
    get_uint(t, "turn", "user_quota", tc.user_quota, 0, 16u << 20);
    get_uint(t, "turn", "allocate_rate", tc.allocate_rate, 0, 1000000);
    get_uint(t, "turn", "max_requests_per_s", tc.max_requests_per_s, 0, 100000000);
    get_uint(t, "turn", "default_lifetime_s", tc.default_lifetime_s, 1, 86400);
    get_uint(t, "turn", "max_lifetime_s", tc.max_lifetime_s, 1, 86400);
    get_uint(t, "turn", "nonce_lifetime_s", tc.nonce_lifetime_s, 1, 86400);
    if (tc.default_lifetime_s > tc.max_lifetime_s)
        fail("turn.default_lifetime_s", "must not be above turn.max_lifetime_s");
    if (tc.enabled()) {
        if (tc.realm.empty())
            fail("turn.realm", "missing (e.g. \"meet.example.org\"): TURN needs a realm");
        if (tc.auth_secret_file.empty() || tc.auth_secret_file[0] != '/')
            fail("turn.auth_secret_file", "missing or not an absolute path (a file with one "
                                          "shared secret per line, mode 0600)");
    }
}

void parse_dataplane(const toml::table& root, config& c)
{
    if (auto* t = section(root, "dataplane")) {
        check_keys(*t, "dataplane",
                   {"mbufs", "idle_sleep_us", "hold_per_next_hop", "hold_total", "neighbors",
                    "port_ownership"});
        get_uint(*t, "dataplane", "mbufs", c.mbufs, 1023, 16u << 20);
        get_uint(*t, "dataplane", "idle_sleep_us", c.idle_sleep_us, 0, 100000);
        get_uint(*t, "dataplane", "hold_per_next_hop", c.hold_per_next_hop, 1, 65536);
        get_uint(*t, "dataplane", "hold_total", c.hold_total, 1, 1u << 20);
        get_uint(*t, "dataplane", "neighbors", c.neighbors, 16, 1u << 20);
        std::string own = c.rss_ownership ? "auto" : "pairs";
        get_string(*t, "dataplane", "port_ownership", own);
        if (own != "auto" && own != "pairs")
            fail("dataplane.port_ownership",
                 "expected \"auto\" (relay ports owned as the NIC's RSS spreads them, where "
                 "it can hash on the UDP destination) or \"pairs\" (ports dealt in pairs, "
                 "packets handed off between workers)");
        c.rss_ownership = own == "auto";
        if (c.hold_total < c.hold_per_next_hop)
            fail("dataplane.hold_total", "must be at least hold_per_next_hop (" +
                                                 std::to_string(c.hold_per_next_hop) + ")");
    }
    if (auto* t = section(root, "exception")) {
        check_keys(*t, "exception",
                   {"arp_reply_pps", "arp_request_pps", "arp_other_pps", "icmp_pps", "stun_pps",
                    "dtls_pps", "kernel_pps", "nd_pps"});
        const uint64_t max = 100000000;
        get_uint(*t, "exception", "arp_reply_pps", c.arp_reply_pps, 0, max);
        get_uint(*t, "exception", "arp_request_pps", c.arp_request_pps, 0, max);
        get_uint(*t, "exception", "arp_other_pps", c.arp_other_pps, 0, max);
        get_uint(*t, "exception", "icmp_pps", c.icmp_pps, 0, max);
        get_uint(*t, "exception", "stun_pps", c.stun_pps, 0, max);
        get_uint(*t, "exception", "dtls_pps", c.dtls_pps, 0, max);
        get_uint(*t, "exception", "kernel_pps", c.kernel_pps, 0, max);
        get_uint(*t, "exception", "nd_pps", c.nd_pps, 0, max);
    }
}

// [eal] args.
void parse_eal(const toml::table& root, config& c)
{
    if (auto* eal = section(root, "eal")) {
        check_keys(*eal, "eal", {"args"});
        if (const toml::node* a = eal->get("args")) {
            if (!a->is_array())
                fail("eal.args", "expected an array of strings");
            size_t i = 0;
            for (auto&& e : *a->as_array()) {
                if (!e.is_string())
                    fail("eal.args[" + std::to_string(i) + "]", "expected a string");
                c.eal_args.push_back(e.as_string()->get());
                i++;
            }
        }
    }
}

// [[interface]]: at least one, ports and addresses unique.
void parse_interfaces(const toml::table& root, config& c)
{
    const toml::node* ifs = root.get("interface");
    if (ifs == nullptr)
        fail("interface", "at least one [[interface]] with port and address is required");
    if (!ifs->is_array_of_tables())
        fail("interface", "must be an array of tables ([[interface]])");
    size_t i = 0;
    std::set<uint16_t> ports;
    for (auto&& e : *ifs->as_array()) {
        const std::string where = "interface[" + std::to_string(i) + "]";
        const toml::table& t = *e.as_table();
        check_keys(t, where, {"port", "address", "gateway", "public_address",
                              "tx_checksum_offload", "kernel_iface", "kernel_forward"});
        interface_config ic;
        get_string(t, where, "kernel_iface", ic.kernel_iface);
        if (ic.kernel_iface.size() >= 16 || ic.kernel_iface.find_first_of("/ \t\n:") !=
                                                 std::string::npos)
            fail(where + ".kernel_iface", "not a valid interface name (at most 15 characters, "
                                          "no '/', ':' or spaces)");
        std::string fwd = "turn";
        get_string(t, where, "kernel_forward", fwd);
        if (fwd != "turn" && fwd != "all")
            fail(where + ".kernel_forward", "must be \"turn\" (TCP to turn.listen_tcp/"
                                            "listen_tls) or \"all\", not \"" + fwd + "\"");
        ic.kernel_forward_all = fwd == "all";
        get_bool(t, where, "tx_checksum_offload", ic.tx_checksum_offload);
        if (t.get("port") == nullptr)
            fail(where + ".port", "missing (the DPDK port id, e.g. 0)");
        get_uint(t, where, "port", ic.port, 0, 1023);
        if (!ports.insert(ic.port).second)
            fail(where + ".port", "port " + std::to_string(ic.port) + " is used twice");
        parse_addresses(t, where, ic);
        c.interfaces.push_back(ic);
        i++;
    }
    if (c.interfaces.empty())
        fail("interface", "at least one [[interface]] is required");
    check_unique_addresses(c);
    if (c.interfaces.size() > 32) // dp::max_ifaces
        fail("interface", "at most 32 interfaces are supported");
}

// [relay], and the port pool it sets.
void parse_relay(const toml::table& root, config& c)
{
    if (auto* r = section(root, "relay")) {
        check_keys(*r, "relay",
                   {"port_min", "port_max", "idle_timeout_s", "strict_source", "max_legs",
                    "latch_window_s", "srtp_compact_keys"});
        get_uint(*r, "relay", "port_min", c.port_min, 1024, 65535);
        get_uint(*r, "relay", "port_max", c.port_max, 1024, 65535);
        get_uint(*r, "relay", "idle_timeout_s", c.idle_timeout_s, 1, 86400);
        get_bool(*r, "relay", "strict_source", c.strict_source);
        get_uint(*r, "relay", "latch_window_s", c.latch_window_s, 0, 86400);
        get_uint(*r, "relay", "max_legs", c.max_legs, 64, 16u << 20);
        get_bool(*r, "relay", "srtp_compact_keys", c.srtp_compact_keys);
    }
    if (c.port_min > c.port_max)
        fail("relay.port_min", "must not be above relay.port_max (" +
                                       std::to_string(c.port_min) + " > " +
                                       std::to_string(c.port_max) + ")");
    if (c.port_max - c.port_min + 1 < 2)
        fail("relay.port_max", "the port pool must hold at least 2 ports");
}

// [control]: the Unix socket and its clients.
void parse_control(const toml::table& root, config& c)
{
    if (auto* t = section(root, "control")) {
        check_keys(*t, "control",
                   {"socket", "socket_mode", "socket_group", "max_clients", "drain_timeout_s",
                    "idle_timeout_s", "max_inflight"});
        get_string(*t, "control", "socket", c.socket);
        if (c.socket.empty() || c.socket[0] != '/')
            fail("control.socket", "must be an absolute path");
        if (c.socket.size() >= 108)
            fail("control.socket", "path too long for a Unix socket (max 107 bytes)");
        std::string mode;
        get_string(*t, "control", "socket_mode", mode);
        if (!mode.empty()) {
            size_t pos = 0;
            unsigned long m = 0;
            try {
                m = std::stoul(mode, &pos, 8);
            } catch (...) {
                pos = 0;
            }
            if (pos != mode.size() || m > 0777)
                fail("control.socket_mode", "expected an octal mode such as \"0660\"");
            c.socket_mode = static_cast<uint32_t>(m);
        }
        get_uint(*t, "control", "max_clients", c.max_clients, 1, 4096);
        get_uint(*t, "control", "drain_timeout_s", c.drain_timeout_s, 0, 86400);
        get_uint(*t, "control", "idle_timeout_s", c.idle_timeout_mgmt_s, 1, 86400);
        get_uint(*t, "control", "max_inflight", c.max_inflight, 1, 1u << 20);
        get_string(*t, "control", "socket_group", c.socket_group);
        if (!c.socket_group.empty())
            c.socket_gid = resolve_group(c.socket_group);
    }
}

// [metrics] listen.
void parse_metrics(const toml::table& root, config& c)
{
    if (auto* t = section(root, "metrics")) {
        check_keys(*t, "metrics", {"listen"});
        get_string(*t, "metrics", "listen", c.metrics_listen);
        if (!c.metrics_listen.empty()) {
            const std::string& l = c.metrics_listen;
            const size_t colon = l.rfind(':');
            std::optional<uint32_t> ip;
            unsigned long port = 0;
            size_t pos = 0;
            if (colon != std::string::npos) {
                ip = parse_ipv4(l.substr(0, colon));
                const std::string ps = l.substr(colon + 1);
                if (!ps.empty() && ps.size() <= 5 &&
                    ps.find_first_not_of("0123456789") == std::string::npos)
                    port = std::stoul(ps, &pos);
            }
            if (!ip || port == 0 || port > 65535)
                fail("metrics.listen", "expected \"IPv4:PORT\" such as \"127.0.0.1:9477\" "
                                       "(or \"\" to disable), got \"" + l + "\"");
            c.metrics_ip = *ip;
            c.metrics_port = static_cast<uint16_t>(port);
        }
    }
}

config parse_table(const toml::table& root)
{
    config c;
    check_keys(root, "",
               {"eal", "interface", "relay", "control", "dataplane", "exception", "log",
                "metrics", "debug", "turn"});

    parse_eal(root, c);
    parse_interfaces(root, c);
    parse_relay(root, c);
    parse_control(root, c);
    parse_metrics(root, c);
    if (auto* t = section(root, "debug")) {
        check_keys(*t, "debug", {"allow_wedge"});
        get_bool(*t, "debug", "allow_wedge", c.allow_wedge);
    }
    parse_dataplane(root, c);
    c.turn.denied_peer = turn::peer_policy::default_denied();
    if (auto* t = section(root, "turn"))
        parse_turn(*t, c);
    if (auto* t = section(root, "log")) {
        check_keys(*t, "log", {"level"});
        get_string(*t, "log", "level", c.log_level);
        static const std::set<std::string> levels = {"error", "warning", "notice", "info",
                                                     "debug"};
        if (!levels.count(c.log_level))
            fail("log.level", "one of error, warning, notice, info, debug");
    }
    return c;
}

} // namespace

std::optional<config> parse_config(const std::string& text, std::string& err)
{
    try {
        toml::table root = toml::parse(text);
        return parse_table(root);
    } catch (const toml::parse_error& e) {
        std::ostringstream os;
        os << "line " << e.source().begin.line << ", column " << e.source().begin.column << ": "
           << e.description();
        err = os.str();
    } catch (const parse_error& e) {
        err = e.msg;
    }
    return std::nullopt;
}

std::vector<addr_slot> address_slots(const config& c)
{
    std::vector<addr_slot> out;
    for (unsigned i = 0; i < c.interfaces.size(); i++)
        for (const ip_prefix& a : c.interfaces[i].addrs) {
            addr_slot s{i, a, std::nullopt};
            for (const ip_addr& p : c.interfaces[i].public_addrs)
                if (p.family == a.addr.family)
                    s.public_addr = p;
            out.push_back(s);
        }
    return out;
}

std::optional<config> load_config(const std::string& path, std::string& err)
{
    std::ifstream f(path);
    if (!f) {
        err = path + ": cannot open";
        return std::nullopt;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    auto c = parse_config(ss.str(), err);
    if (!c)
        err = path + ": " + err;
    return c;
}

namespace {
std::string toml_str(const std::string& s)
{
    std::ostringstream o;
    o << toml::value<std::string>(s);
    return o.str();
}
} // namespace

std::string dump_config(const config& c)
{
    std::ostringstream o;
    o << "[eal]\nargs = [";
    for (size_t i = 0; i < c.eal_args.size(); i++)
        o << (i ? ", " : "") << toml::value<std::string>(c.eal_args[i]);
    o << "]\n";
    for (auto& i : c.interfaces) {
        o << "\n[[interface]]\nport = " << i.port << "\naddress = ";
        if (i.addrs.size() == 1)
            o << "\"" << format_prefix(i.addrs[0]) << "\"\n";
        else
            for (size_t k = 0; k < i.addrs.size(); k++)
                o << (k ? ", \"" : "[\"") << format_prefix(i.addrs[k])
                  << (k + 1 == i.addrs.size() ? "\"]\n" : "\"");
        if (i.gateway && i.gateway6)
            o << "gateway = [\"" << format_ipv4(i.gateway) << "\", \"" << format_ip(*i.gateway6)
              << "\"]\n";
        else if (i.gateway || i.gateway6)
            o << "gateway = \""
              << (i.gateway ? format_ipv4(i.gateway) : format_ip(*i.gateway6)) << "\"\n";
        if (!i.public_addrs.empty()) {
            o << "public_address = [";
            for (size_t k = 0; k < i.public_addrs.size(); k++)
                o << (k ? ", \"" : "\"") << format_ip(i.public_addrs[k]) << "\"";
            o << "]\n";
        }
        if (!i.tx_checksum_offload)
            o << "tx_checksum_offload = false\n";
        if (!i.kernel_iface.empty())
            o << "kernel_iface = " << toml::value<std::string>(i.kernel_iface) << "\n";
        if (i.kernel_forward_all)
            o << "kernel_forward = \"all\"\n";
    }
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", c.socket_mode);
    o << "\n[relay]\nport_min = " << c.port_min << "\nport_max = " << c.port_max
      << "\nidle_timeout_s = " << c.idle_timeout_s
      << "\nstrict_source = " << (c.strict_source ? "true" : "false")
      << "\nlatch_window_s = " << c.latch_window_s
      << "\nmax_legs = " << c.max_legs
      << "\nsrtp_compact_keys = " << (c.srtp_compact_keys ? "true" : "false")
      << "\n\n[control]\nsocket = "
      << toml::value<std::string>(c.socket) << "\nsocket_mode = \"" << mode
      << "\"\nmax_clients = " << c.max_clients << "\ndrain_timeout_s = " << c.drain_timeout_s
      << "\nidle_timeout_s = " << c.idle_timeout_mgmt_s << "\nmax_inflight = " << c.max_inflight
      << (c.socket_group.empty() ? std::string() : "\nsocket_group = " + toml_str(c.socket_group))
      << "\n\n[metrics]\nlisten = " << toml::value<std::string>(c.metrics_listen)
      << "\n\n[dataplane]\nmbufs = " << c.mbufs
      << "\nidle_sleep_us = " << c.idle_sleep_us << "\nhold_per_next_hop = " << c.hold_per_next_hop
      << "\nhold_total = " << c.hold_total << "\nneighbors = " << c.neighbors
      << "\nport_ownership = \"" << (c.rss_ownership ? "auto" : "pairs") << "\""
      << "\n\n[exception]\narp_reply_pps = " << c.arp_reply_pps
      << "\narp_request_pps = " << c.arp_request_pps << "\narp_other_pps = " << c.arp_other_pps
      << "\nicmp_pps = " << c.icmp_pps << "\nstun_pps = " << c.stun_pps
      << "\ndtls_pps = " << c.dtls_pps << "\nkernel_pps = " << c.kernel_pps
      << "\nnd_pps = " << c.nd_pps << "\n\n[log]\nlevel = \"" << c.log_level
      << "\"\n";
    if (c.allow_wedge)
        o << "\n[debug]\nallow_wedge = true\n";
    const turn_config& t = c.turn;
    auto list = [&](const char* key, const auto& v) {
        o << key << " = [";
        for (size_t i = 0; i < v.size(); i++) {
            o << (i ? ", " : "");
            if constexpr (std::is_same_v<std::decay_t<decltype(v[i])>, std::string>)
                o << toml::value<std::string>(v[i]);
            else
                o << v[i];
        }
        o << "]\n";
    };
    o << "\n[turn]\n";
    list("listen_udp", t.listen_udp);
    list("listen_tcp", t.listen_tcp);
    list("listen_tls", t.listen_tls);
    if (!t.tls_cert.empty())
        o << "tls_cert = " << toml::value<std::string>(t.tls_cert) << "\n";
    if (!t.tls_key.empty())
        o << "tls_key = " << toml::value<std::string>(t.tls_key) << "\n";
    o << "max_connections = " << t.max_connections << "\nstream_threads = " << t.stream_threads
      << "\nstream_send_buffer = " << t.stream_send_buffer
      << "\nstream_timeout_s = " << t.stream_timeout_s << "\n";
    o << "realm = " << toml::value<std::string>(t.realm)
      << "\nauth_secret_file = " << toml::value<std::string>(t.auth_secret_file) << "\n";
    list("allowed_peer", t.allowed_peer);
    list("denied_peer", t.denied_peer);
    o << "max_allocations = " << t.max_allocations << "\nuser_quota = " << t.user_quota
      << "\nallocate_rate = " << t.allocate_rate
      << "\nmax_requests_per_s = " << t.max_requests_per_s
      << "\ndefault_lifetime_s = " << t.default_lifetime_s
      << "\nmax_lifetime_s = " << t.max_lifetime_s
      << "\nnonce_lifetime_s = " << t.nonce_lifetime_s << "\n";
    return o.str();
}

} // namespace isar::ctl
