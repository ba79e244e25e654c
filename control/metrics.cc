#include "control/metrics.h"

#include "control/commands.h"
#include "control/neighbor_manager.h"
#include "control/session_manager.h"
#include "control/stream_server.h"
#include "dataplane/dataplane.h"
#include "dataplane/srtp_memory.h"
#include "dataplane/stats.h"

#include <cstdio>
#include <rte_cycles.h>
#include <rte_ethdev.h>

namespace isar::ctl {

// ---- HTTP ------------------------------------------------------------------

http_request parse_http_request(std::string_view in)
{
    http_request r;
    // The headers end at the first blank line (CRLF CRLF, or LF LF from
    // lenient clients).
    size_t end = in.find("\r\n\r\n");
    const size_t lf = in.find("\n\n");
    if (lf != std::string_view::npos && (end == std::string_view::npos || lf < end))
        end = lf;
    if (end == std::string_view::npos) {
        r.st = in.size() > http_max_request ? http_request::status::too_large
                                            : http_request::status::incomplete;
        // Garbage is refused early: a request line starts with a token.
        if (r.st == http_request::status::incomplete && !in.empty()) {
            const size_t eol = in.find('\n');
            std::string_view first = in.substr(0, eol == std::string_view::npos ? in.size() : eol);
            for (char c : first)
                if (static_cast<unsigned char>(c) < 0x20 && c != '\r' && c != '\t')
                    r.st = http_request::status::bad;
        }
        return r;
    }
    if (end > http_max_request) {
        r.st = http_request::status::too_large;
        return r;
    }
    const std::string_view head = in.substr(0, end);
    const size_t eol = head.find('\n');
    std::string_view line = head.substr(0, eol == std::string_view::npos ? head.size() : eol);
    if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
    // Every byte of the head must be printable ASCII (or CR, LF, TAB).
    for (char c : head) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\r' && c != '\n' && c != '\t') || u >= 0x7f) {
            r.st = http_request::status::bad;
            return r;
        }
    }
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || sp1 == 0 ||
        sp2 == sp1 + 1 || line.find(' ', sp2 + 1) != std::string_view::npos) {
        r.st = http_request::status::bad;
        return r;
    }
    const std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    for (char c : method)
        if (c < 'A' || c > 'Z') {
            r.st = http_request::status::bad;
            return r;
        }
    if (version.substr(0, 5) != "HTTP/") {
        r.st = http_request::status::bad;
        return r;
    }
    if (version != "HTTP/1.0" && version != "HTTP/1.1") {
        r.st = http_request::status::bad_version;
        return r;
    }
    if (target.empty() || target[0] != '/') {
        r.st = http_request::status::bad;
        return r;
    }
    if (method != "GET" && method != "HEAD") {
        r.st = http_request::status::bad_method;
        return r;
    }
    if (size_t q = target.find('?'); q != std::string_view::npos)
        target = target.substr(0, q);
    r.method = std::string(method);
    r.path = std::string(target);
    r.st = http_request::status::ok;
    return r;
}

std::string http_response(int code, std::string_view content_type, std::string_view body,
                          bool head_only)
{
    const char* reason = code == 200   ? "OK"
                         : code == 400 ? "Bad Request"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                         : code == 408 ? "Request Timeout"
                         : code == 431 ? "Request Header Fields Too Large"
                         : code == 503 ? "Service Unavailable"
                         : code == 505 ? "HTTP Version Not Supported"
                                       : "Error";
    std::string r = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\n";
    r += "Content-Type: ";
    r += content_type;
    r += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    if (code == 405)
        r += "Allow: GET, HEAD\r\n";
    r += "Connection: close\r\n\r\n";
    if (!head_only)
        r += body;
    return r;
}

// ---- Prometheus --------------------------------------------------------------

std::string prom_escape(std::string_view v)
{
    std::string o;
    for (char c : v) {
        if (c == '\\')
            o += "\\\\";
        else if (c == '"')
            o += "\\\"";
        else if (c == '\n')
            o += "\\n";
        else
            o += c;
    }
    return o;
}

void request_histogram::observe(double seconds, bool error)
{
    count++;
    errors += error ? 1 : 0;
    sum += seconds;
    for (size_t i = 0; i < bounds.size(); i++)
        if (seconds <= bounds[i]) {
            buckets[i]++;
            break;
        }
}

// Prometheus text exposition, a family and its samples at a time.
struct prom_writer {
    std::string out;
    void family(const char* name, const char* type, const char* help)
    {
        out += "# HELP ";
        out += name;
        out += ' ';
        out += help;
        out += "\n# TYPE ";
        out += name;
        out += ' ';
        out += type;
        out += '\n';
    }
    void sample(const char* name, const std::string& labels, double v)
    {
        char buf[64];
        snprintf(buf, sizeof(buf), "%.17g", v);
        line(name, labels, buf);
    }
    void sample(const char* name, const std::string& labels, uint64_t v)
    {
        line(name, labels, std::to_string(v));
    }
    void sample(const char* name, const std::string& labels, int64_t v)
    {
        line(name, labels, std::to_string(v));
    }
    void line(const char* name, const std::string& labels, const std::string& v)
    {
        out += name;
        if (!labels.empty()) {
            out += '{';
            out += labels;
            out += '}';
        }
        out += ' ';
        out += v;
        out += '\n';
    }
};
using writer = prom_writer;

namespace {

std::string lbl(const char* k, const std::string& v)
{
    return std::string(k) + "=\"" + prom_escape(v) + "\"";
}

} // namespace

metrics_exporter::metrics_exporter(dp::dataplane& dp, session_manager& sm, neighbor_manager& nm,
                                   commands& cmds)
    : dp_(dp), sm_(sm), nm_(nm), cmds_(cmds)
{
    const uint64_t now = rte_rdtsc();
    for (unsigned w = 0; w < dp_.nworkers(); w++) {
        last_busy_.push_back(dp::read(dp_.wk(w).stats.busy_tsc));
        last_tsc_.push_back(now);
    }
}

namespace {
// TURN over TCP/TLS: every stream thread counter, one sample per thread:
// isar_turn_stream_<name>{thread="t"} (counters end in _total).
// Neighbour (ARP/ND) counters and the fill of each interface's table.
void render_neighbors(writer& m, const dp::dataplane& dp, const neighbor_manager& nm)
{
    const auto& n = nm.stats();
    m.family("isar_neighbor_messages_total", "counter",
             "ARP, Neighbor Discovery and ICMPv6 handled by the control lcore, and neighbour "
             "table events (probes, expiries, MAC moves, full), by kind.");
    const std::pair<const char*, uint64_t> kinds[] = {
#define ISAR_NEIGH_KIND(field, name, kind) {kind, n.field},
            ISAR_FOREACH_NEIGH_COUNTER(ISAR_NEIGH_KIND)
#undef ISAR_NEIGH_KIND
    };
    for (auto& [k, v] : kinds)
        m.sample("isar_neighbor_messages_total", lbl("kind", k), v);
    m.family("isar_neighbors", "gauge",
             "Entries in each interface's neighbour table, by family.");
    for (unsigned i = 0; i < dp.nifaces(); i++)
        if (const dp::neighbor_table* t = dp.ifc(i).neigh) {
            const std::string ifl = lbl("interface", std::to_string(i)) + ",";
            m.sample("isar_neighbors", ifl + lbl("family", "4"), uint64_t{t->size4()});
            m.sample("isar_neighbors", ifl + lbl("family", "6"), uint64_t{t->size6()});
        }
    m.family("isar_neighbors_capacity", "gauge",
             "Size of each interface's neighbour table per family ([dataplane] neighbors).");
    for (unsigned i = 0; i < dp.nifaces(); i++)
        if (const dp::neighbor_table* t = dp.ifc(i).neigh)
            m.sample("isar_neighbors_capacity", lbl("interface", std::to_string(i)),
                     uint64_t{t->capacity()});
}

void render_stream_server(writer& m, const stream_server& s)
{
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v;
        for (unsigned i = 0; i < stream_ctr_count; i++)
            v.push_back(std::string("isar_turn_stream_") + stream_ctr_name(i) +
                        (stream_ctr_is_gauge(i) ? "" : "_total"));
        return v;
    }();
    static const std::vector<std::string> helps = [] {
        std::vector<std::string> v;
        for (unsigned i = 0; i < stream_ctr_count; i++)
            v.push_back(std::string("TURN over TCP/TLS, per stream thread: ") +
                        stream_ctr_help(i) + ".");
        return v;
    }();
    for (unsigned i = 0; i < stream_ctr_count; i++) {
        m.family(names[i].c_str(), stream_ctr_is_gauge(i) ? "gauge" : "counter", helps[i].c_str());
        for (unsigned t = 0; t < s.nthreads(); t++)
            m.sample(names[i].c_str(), lbl("thread", std::to_string(t)),
                     s.counters(t).v[i].load(std::memory_order_relaxed));
    }
}

void render_turn_manager(writer& m, const turn_manager& t, const config& cfg)
{
    const auto& s = t.stats();
    m.family("isar_turn_allocations", "gauge", "TURN allocations now.");
    m.sample("isar_turn_allocations", "", uint64_t{t.allocations().size()});
    m.family("isar_turn_allocations_max", "gauge", "[turn] max_allocations.");
    m.sample("isar_turn_allocations_max", "", uint64_t{cfg.turn.max_allocations});
    m.family("isar_turn_permissions", "gauge", "TURN permissions now.");
    m.sample("isar_turn_permissions", "", uint64_t{t.permission_count()});
    m.family("isar_turn_channels", "gauge", "TURN channel bindings now.");
    m.sample("isar_turn_channels", "", uint64_t{t.channel_count()});
    struct c {
        const char* name;
        uint64_t v;
        const char* help;
    };
    const c cs[] = {
            {"isar_turn_allocations_created_total", s.allocations_created, "Allocations made."},
            {"isar_turn_allocations_ended_total", s.allocations_ended,
             "Allocations ended (refresh 0, expiry, isarctl)."},
            {"isar_turn_requests_handled_total", s.requests, "STUN/TURN requests handled."},
            {"isar_turn_bad_requests_total", s.bad_requests,
             "Malformed STUN/TURN messages and unknown methods."},
            {"isar_turn_peer_denied_total", s.peer_denied, "Peers refused by policy (403)."},
            {"isar_turn_quota_rejected_total", s.quota_rejected, "Allocate over user_quota (486)."},
            {"isar_turn_rate_rejected_total", s.rate_rejected,
             "Allocate over allocate_rate per client address (486)."},
            {"isar_turn_capacity_rejected_total", s.capacity_rejected,
             "Requests refused for capacity (508)."},
    };
    for (const auto& x : cs) {
        m.family(x.name, "counter", x.help);
        m.sample(x.name, "", x.v);
    }
    m.family("isar_turn_auth_failures_total", "counter",
             "TURN authentication failures (and 401 challenges), by reason.");
    for (unsigned i = 0; i < static_cast<unsigned>(turn_manager::auth_fail::count); i++)
        m.sample("isar_turn_auth_failures_total", lbl("reason", turn_manager::auth_fail_name(i)),
                 s.auth_failures[i]);
}

// Where the SRTP contexts are (dataplane/srtp_memory.h): a fallback means
// the hugepages ran out and contexts since then sit on 4 KiB pages.
void render_srtp_memory(writer& m)
{
    const dp::srtp_context_count c = dp::srtp_context_counts();
    m.family("isar_srtp_contexts_dpdk_heap", "gauge",
             "SRTP contexts on the DPDK heap (hugepages) now.");
    m.sample("isar_srtp_contexts_dpdk_heap", "", c.dpdk_heap);
    m.family("isar_srtp_contexts_heap_fallback_total", "counter",
             "SRTP contexts the DPDK heap could not hold, put on the C++ heap instead.");
    m.sample("isar_srtp_contexts_heap_fallback_total", "", c.cxx_fallbacks);
}
} // namespace

std::string metrics_exporter::render(const loop_info& li)
{
    writer m;
    const uint64_t now = rte_rdtsc();
    const unsigned nw = dp_.nworkers();

    m.family("isar_up", "gauge", "1 while isard runs; the state label says running or draining.");
    m.sample("isar_up", lbl("state", li.draining ? "draining" : "running"), uint64_t{1});
    m.family("isar_uptime_seconds", "gauge", "Seconds since isard started serving.");
    m.sample("isar_uptime_seconds", "", li.uptime_s);
    m.family("isar_workers", "gauge", "Dataplane worker lcores.");
    m.sample("isar_workers", "", uint64_t{nw});

    render_workers(m, now);
    render_ports(m);
    render_sessions(m);
    render_control(m, li);
    render_pools(m);
    render_neighbors(m, dp_, nm_);
    if (const turn_manager* t = cmds_.turn())
        render_turn_manager(m, *t, cmds_.cfg());
    if (const stream_server* s = cmds_.streams())
        render_stream_server(m, *s);

    render_legs(m, now);
    return m.out;
}

namespace {
// The per-worker counters, one family each.
struct wc {
    const char* name;
    dp::counter dp::worker_stats::*c;
    const char* help;
};
const wc wcs[] = {
        {"isar_worker_rx_packets_total", &dp::worker_stats::rx_pkts,
         "Packets received by the worker from its RX queues."},
        {"isar_worker_rx_bytes_total", &dp::worker_stats::rx_bytes,
         "Bytes (whole frames) received by the worker."},
        {"isar_worker_tx_packets_total", &dp::worker_stats::tx_pkts,
         "Packets the worker's TX queues accepted."},
        {"isar_worker_tx_bytes_total", &dp::worker_stats::tx_bytes,
         "Bytes (whole frames) the worker's TX queues accepted."},
        {"isar_worker_forwarded_packets_total", &dp::worker_stats::fwd_pkts,
         "Packets handed to TX for a target leg."},
        {"isar_worker_exception_packets_total", &dp::worker_stats::exception_pkts,
         "Packets handed to the control lcore (ARP, ICMP, STUN, DTLS)."},
        {"isar_worker_held_packets_total", &dp::worker_stats::held_pkts,
         "Packets handed to the control lcore to wait for ARP."},
        {"isar_worker_handoff_out_packets_total", &dp::worker_stats::handoff_out,
         "Packets handed to the owning worker."},
        {"isar_worker_handoff_in_packets_total", &dp::worker_stats::handoff_in,
         "Packets received from other workers."},
        {"isar_worker_commands_total", &dp::worker_stats::cmds_applied,
         "Control commands the worker applied."},
        {"isar_worker_loops_total", &dp::worker_stats::loops, "Worker loop iterations."},
        {"isar_worker_to_kernel_packets_total", &dp::worker_stats::to_kernel_pkts,
         "Frames from the wire the kernel interface's queue accepted (TURN over TCP/TLS)."},
        {"isar_worker_to_kernel_bytes_total", &dp::worker_stats::to_kernel_bytes,
         "Bytes (whole frames) handed to the kernel interface."},
        {"isar_worker_from_kernel_packets_total", &dp::worker_stats::from_kernel_pkts,
         "Frames the worker read from the kernel interface (towards the wire)."},
        {"isar_worker_from_kernel_bytes_total", &dp::worker_stats::from_kernel_bytes,
         "Bytes (whole frames) read from the kernel interface."},
        {"isar_turn_to_peers_packets_total", &dp::worker_stats::turn_c2p_pkts,
         "TURN: ChannelData and Send indications from clients relayed to peers."},
        {"isar_turn_to_peers_bytes_total", &dp::worker_stats::turn_c2p_bytes,
         "TURN: data bytes relayed from clients to peers (without TURN framing)."},
        {"isar_turn_from_peers_bytes_total", &dp::worker_stats::turn_p2c_bytes,
         "TURN: data bytes relayed from peers to clients (without TURN framing)."},
        {"isar_turn_from_peers_packets_total", &dp::worker_stats::turn_p2c_pkts,
         "TURN: datagrams from peers relayed to clients (ChannelData or Data indication)."},
        {"isar_turn_channel_data_packets_total", &dp::worker_stats::turn_channel_data,
         "TURN: relayed packets framed as ChannelData (either way)."},
        {"isar_turn_hairpin_packets_total", &dp::worker_stats::turn_hairpin,
         "TURN: client packets whose peer is another allocation on this relay."},
        {"isar_turn_requests_total", &dp::worker_stats::turn_requests,
         "TURN: STUN/TURN requests handed to the control lcore (after policing)."},
        {"isar_turn_stream_in_frames_total", &dp::worker_stats::turn_stream_in,
         "TURN: frames of TCP/TLS clients a worker took from the stream threads."},
        {"isar_turn_stream_out_frames_total", &dp::worker_stats::turn_stream_out,
         "TURN: frames for TCP/TLS clients a worker handed to the stream threads."},
};
} // namespace

// Per worker: its counters, drops, handoff, busy share, TURN table fill.
void metrics_exporter::render_workers(writer& m, uint64_t now)
{
    const unsigned nw = dp_.nworkers();
    for (const auto& c : wcs) {
        m.family(c.name, "counter", c.help);
        for (unsigned w = 0; w < nw; w++)
            m.sample(c.name, lbl("worker", std::to_string(w)), dp::read(dp_.wk(w).stats.*(c.c)));
    }
    m.family("isar_worker_drops_total", "counter",
             "Packets the worker did not forward, by reason (README \"Drop reasons\").");
    for (unsigned w = 0; w < nw; w++)
        for (unsigned i = 0; i < dp::n_drops; i++)
            m.sample("isar_worker_drops_total",
                     lbl("worker", std::to_string(w)) + "," +
                             lbl("reason", dp::drop_name(static_cast<dp::drop>(i))),
                     dp::read(dp_.wk(w).stats.drops[i]));
    // Port ownership (dataplane/ownership.h): the share of received packets
    // that crossed to their owning worker, and how each interface's ports
    // are owned.
    m.family("isar_worker_handoff_ratio", "gauge",
             "Packets the worker handed off to their owner / packets it received (0 when RSS "
             "agrees with port ownership).");
    for (unsigned w = 0; w < nw; w++) {
        const uint64_t rx = dp::read(dp_.wk(w).stats.rx_pkts);
        const uint64_t ho = dp::read(dp_.wk(w).stats.handoff_out);
        m.sample("isar_worker_handoff_ratio", lbl("worker", std::to_string(w)),
                 rx == 0 ? 0.0 : static_cast<double>(ho) / static_cast<double>(rx));
    }
    m.family("isar_port_ownership_info", "gauge",
             "How an interface's relay ports are owned (mode: single queue, port pairs + "
             "handoff, RSS on UDP destination port, rte_flow ...).");
    for (unsigned i = 0; i < dp_.nifaces(); i++)
        m.sample("isar_port_ownership_info",
                 lbl("port", std::to_string(dp_.ifc(i).port_id)) + "," +
                         lbl("mode", dp::own_mode_name(dp_.ownership(i))),
                 uint64_t{1});
    m.family("isar_worker_busy_ratio", "gauge",
             "Share of TSC cycles the worker spent in loops that did work, since the previous "
             "scrape.");
    for (unsigned w = 0; w < nw; w++) {
        const uint64_t busy = dp::read(dp_.wk(w).stats.busy_tsc);
        const uint64_t db = busy - last_busy_[w], dt = now - last_tsc_[w];
        double ratio = dt ? static_cast<double>(db) / static_cast<double>(dt) : 0.0;
        if (ratio > 1.0)
            ratio = 1.0;
        last_busy_[w] = busy;
        last_tsc_[w] = now;
        m.sample("isar_worker_busy_ratio", lbl("worker", std::to_string(w)), ratio);
    }
    m.family("isar_worker_turn_allocations", "gauge",
             "TURN allocations in the worker's client table (fill level; see _max).");
    for (unsigned w = 0; w < nw; w++)
        m.sample("isar_worker_turn_allocations", lbl("worker", std::to_string(w)),
                 uint64_t{dp_.wk(w).turn_allocs.load(std::memory_order_relaxed)});
    m.family("isar_worker_turn_allocations_max", "gauge", "Size of the worker's client table.");
    for (unsigned w = 0; w < nw; w++)
        m.sample("isar_worker_turn_allocations_max", lbl("worker", std::to_string(w)),
                 uint64_t{dp_.wk(w).turn_clients.capacity()});
    m.family("isar_worker_heartbeat", "counter",
             "Worker loop heartbeat: stops moving when the worker is stuck.");
    for (unsigned w = 0; w < nw; w++)
        m.sample("isar_worker_heartbeat", lbl("worker", std::to_string(w)),
                 dp_.wk(w).heartbeat.load(std::memory_order_relaxed));

}

void metrics_exporter::render_ports(writer& m)
{
    // Ports: the PMD's own counters (what reached / left the port).
    struct pc {
        const char* name;
        const char* help;
    };
    static const pc pcs[] = {
            {"isar_port_rx_packets_total", "Packets received by the DPDK port (PMD counter)."},
            {"isar_port_rx_bytes_total", "Bytes received by the DPDK port (PMD counter)."},
            {"isar_port_tx_packets_total", "Packets sent by the DPDK port (PMD counter)."},
            {"isar_port_tx_bytes_total", "Bytes sent by the DPDK port (PMD counter)."},
            {"isar_port_rx_missed_total",
             "Packets the port dropped because the RX queue was full (PMD counter)."},
            {"isar_port_rx_errors_total", "Erroneous received packets (PMD counter)."},
            {"isar_port_tx_errors_total", "Failed transmissions (PMD counter)."},
    };
    std::vector<rte_eth_stats> ps(dp_.nifaces());
    for (unsigned i = 0; i < dp_.nifaces(); i++)
        if (rte_eth_stats_get(dp_.ifc(i).port_id, &ps[i]) != 0)
            ps[i] = rte_eth_stats{};
    for (unsigned k = 0; k < sizeof(pcs) / sizeof(pcs[0]); k++) {
        m.family(pcs[k].name, "counter", pcs[k].help);
        for (unsigned i = 0; i < dp_.nifaces(); i++) {
            const rte_eth_stats& s = ps[i];
            const uint64_t v[] = {s.ipackets, s.ibytes,  s.opackets, s.obytes,
                                  s.imissed,  s.ierrors, s.oerrors};
            m.sample(pcs[k].name, lbl("port", std::to_string(dp_.ifc(i).port_id)), v[k]);
        }
    }

}

// Mempool, sessions and legs, where the SRTP contexts are.
void metrics_exporter::render_sessions(writer& m)
{
    m.family("isar_mbufs_in_use", "gauge", "Packet buffers taken from the mempool.");
    m.sample("isar_mbufs_in_use", "", uint64_t{dp_.mbufs_in_use()});
    m.family("isar_mbufs", "gauge", "Packet buffers in the mempool.");
    m.sample("isar_mbufs", "", uint64_t{dp_.config().mbufs});

    const auto& ss = sm_.stats();
    m.family("isar_sessions", "gauge", "Sessions that exist now.");
    m.sample("isar_sessions", "", uint64_t{sm_.sessions().size()});
    m.family("isar_legs", "gauge", "Legs of the sessions that exist now.");
    m.sample("isar_legs", "", uint64_t{sm_.leg_count()});
    m.family("isar_sessions_created_total", "counter", "Sessions installed.");
    m.sample("isar_sessions_created_total", "", ss.created);
    m.family("isar_sessions_deleted_total", "counter", "Sessions removed (deleted or expired).");
    m.sample("isar_sessions_deleted_total", "", ss.deleted);
    m.family("isar_sessions_expired_total", "counter", "Sessions removed for idleness.");
    m.sample("isar_sessions_expired_total", "", ss.expired);
    m.family("isar_sessions_failed_total", "counter", "Sessions a worker refused to install.");
    m.sample("isar_sessions_failed_total", "", ss.failed);
    render_srtp_memory(m);

}

// The control lcore: exception path, hold queues, requests, its HTTP.
void metrics_exporter::render_control(writer& m, const loop_info& li)
{
    const auto& n = nm_.stats();
    m.family("isar_exception_packets_total", "counter",
             "Exception-path packets handled by the control lcore, by kind.");
    const std::pair<const char*, uint64_t> ex[] = {{"arp", n.arp_in},
                                                   {"icmp", n.icmp_in},
                                                   {"stun", n.stun},
                                                   {"dtls", n.dtls},
                                                   {"held", n.held}};
    for (auto& [k, v] : ex)
        m.sample("isar_exception_packets_total", lbl("kind", k), v);
    m.family("isar_held_packets_dropped_total", "counter",
             "Held packets dropped because ARP did not resolve in time.");
    m.sample("isar_held_packets_dropped_total", "", n.held_dropped);
    const auto hf = nm_.fill();
    m.family("isar_held_packets", "gauge",
             "Packets held by the control lcore while ARP resolves their next hop.");
    m.sample("isar_held_packets", "", uint64_t{hf.held});
    m.family("isar_held_next_hops", "gauge", "Next hops being resolved by ARP.");
    m.sample("isar_held_next_hops", "", uint64_t{hf.next_hops});
    m.family("isar_held_packets_max_per_next_hop", "gauge",
             "The longest hold queue (packets waiting for one next hop).");
    m.sample("isar_held_packets_max_per_next_hop", "", uint64_t{hf.max_per_hop});
    m.family("isar_hold_limit", "gauge",
             "Hold queue limits ([dataplane] hold_per_next_hop, hold_total).");
    m.sample("isar_hold_limit", lbl("scope", "per_next_hop"), uint64_t{hf.limit_per_hop});
    m.sample("isar_hold_limit", lbl("scope", "total"), uint64_t{hf.limit_total});
    m.family("isar_control_tx_failed_total", "counter",
             "Packets the control lcore could not send.");
    m.sample("isar_control_tx_failed_total", "", n.tx_failed);

    // Control requests: per command count, errors and latency.
    m.family("isar_control_requests_total", "counter", "Management requests, by command.");
    for (auto& [cmd, h] : cmds_.histograms())
        m.sample("isar_control_requests_total", lbl("cmd", cmd), h.count);
    m.family("isar_control_request_errors_total", "counter",
             "Management requests answered with an error, by command.");
    for (auto& [cmd, h] : cmds_.histograms())
        m.sample("isar_control_request_errors_total", lbl("cmd", cmd), h.errors);
    m.family("isar_control_request_duration_seconds", "histogram",
             "Time from a request's arrival to its answer (including the worker's "
             "acknowledgement), by command.");
    for (auto& [cmd, h] : cmds_.histograms()) {
        uint64_t cum = 0;
        for (size_t i = 0; i < h.bounds.size(); i++) {
            cum += h.buckets[i];
            char le[32];
            snprintf(le, sizeof(le), "%g", h.bounds[i]);
            m.sample("isar_control_request_duration_seconds_bucket",
                     lbl("cmd", cmd) + "," + lbl("le", le), cum);
        }
        m.sample("isar_control_request_duration_seconds_bucket",
                 lbl("cmd", cmd) + "," + lbl("le", "+Inf"), h.count);
        m.sample("isar_control_request_duration_seconds_sum", lbl("cmd", cmd), h.sum);
        m.sample("isar_control_request_duration_seconds_count", lbl("cmd", cmd), h.count);
    }
    m.family("isar_metrics_http_requests_total", "counter", "HTTP requests to this endpoint.");
    m.sample("isar_metrics_http_requests_total", "", li.http_requests);
    m.family("isar_metrics_http_errors_total", "counter",
             "HTTP requests answered 4xx/5xx or timed out.");
    m.sample("isar_metrics_http_errors_total", "", li.http_errors);
    m.family("isar_watchdog_pings_total", "counter", "WATCHDOG=1 notifications sent to systemd.");
    m.sample("isar_watchdog_pings_total", "", li.watchdog_pings);
}

void metrics_exporter::render_pools(writer& m)
{
    // One pool per interface address (slot).
    auto slot_lbl = [&](unsigned i) {
        return lbl("interface", std::to_string(dp_.laddr(i).iface)) + "," +
               lbl("address", format_ip(sm_.address_of(i)));
    };
    m.family("isar_relay_ports_free", "gauge",
             "Relay ports free in the pool of each interface address (legs and TURN "
             "allocations).");
    for (unsigned i = 0; i < sm_.nslots(); i++)
        m.sample("isar_relay_ports_free", slot_lbl(i), uint64_t{sm_.pool(i).free_total()});
    m.family("isar_relay_ports", "gauge", "Relay ports in the pool of each interface address.");
    for (unsigned i = 0; i < sm_.nslots(); i++)
        m.sample("isar_relay_ports", slot_lbl(i), uint64_t{sm_.pool(i).capacity()});
}

void metrics_exporter::render_legs(writer& m, uint64_t now)
{
    const double hz = static_cast<double>(rte_get_tsc_hz());
    // Per leg: only sessions created with "metrics": true (bounded labels).
    struct lf {
        const char* name;
        const char* type;
        const char* help;
    };
    static const lf lfs[] = {
            {"isar_leg_packets_total", "counter",
             "Packets of a metrics-enabled leg; dir=in: received from its remote, out: sent to "
             "it."},
            {"isar_leg_bytes_total", "counter", "Bytes (whole frames) of a metrics-enabled leg."},
            {"isar_leg_drops_total", "counter", "Drops on a metrics-enabled leg, by reason."},
            {"isar_leg_rtp_received_total", "counter",
             "RTP packets counted by RFC 3550 A.1 sequence accounting."},
            {"isar_leg_rtp_expected_total", "counter",
             "RTP packets expected from the extended highest sequence number (RFC 3550 A.3)."},
            {"isar_leg_rtp_lost", "gauge",
             "Cumulative RTP packets lost: expected - received (negative with duplicates)."},
            {"isar_leg_rtp_jitter_seconds", "gauge", "RFC 3550 A.8 interarrival jitter."},
            {"isar_leg_rtcp_packets_total", "counter", "RTCP packets received from the remote."},
            {"isar_leg_last_packet_age_seconds", "gauge",
             "Seconds since the leg last received a packet (absent: never)."},
    };
    for (const auto& f : lfs) {
        m.family(f.name, f.type, f.help);
        for (auto& [id, s] : sm_.sessions()) {
            if (!s->metrics || s->ds == nullptr)
                continue;
            for (unsigned i = 0; i < s->ds->nlegs; i++) {
                const dp::leg& l = s->ds->legs[i];
                const dp::rtp_quality& q = l.stats.rtp;
                const std::string base = lbl("session", id) + "," + lbl("leg", s->leg_names[i]);
                const std::string_view nm = f.name;
                if (nm == "isar_leg_packets_total") {
                    m.sample(f.name, base + ",dir=\"in\"", dp::read(l.ctr.in_pkts));
                    m.sample(f.name, base + ",dir=\"out\"", dp::leg_out(*s->ds, i).pkts);
                } else if (nm == "isar_leg_bytes_total") {
                    m.sample(f.name, base + ",dir=\"in\"", dp::read(l.ctr.in_bytes));
                    m.sample(f.name, base + ",dir=\"out\"", dp::leg_out(*s->ds, i).bytes);
                } else if (nm == "isar_leg_drops_total") {
                    for (unsigned d = 0; d < dp::n_leg_drops; d++)
                        if (uint64_t v = dp::read(l.stats.drops[d]))
                            m.sample(f.name,
                                     base + "," +
                                             lbl("reason", dp::drop_name(static_cast<dp::drop>(d))),
                                     v);
                } else if (nm == "isar_leg_rtp_received_total") {
                    m.sample(f.name, base, q.received.load(std::memory_order_relaxed));
                } else if (nm == "isar_leg_rtp_expected_total") {
                    m.sample(f.name, base, q.expected.load(std::memory_order_relaxed));
                } else if (nm == "isar_leg_rtp_lost") {
                    m.sample(f.name, base, q.lost());
                } else if (nm == "isar_leg_rtp_jitter_seconds") {
                    m.sample(f.name, base, jitter_seconds(q));
                } else if (nm == "isar_leg_rtcp_packets_total") {
                    m.sample(f.name, base, q.rtcp.load(std::memory_order_relaxed));
                } else if (nm == "isar_leg_last_packet_age_seconds") {
                    const uint64_t seen = dp::read(l.last_seen_tsc);
                    if (seen != 0)
                        m.sample(f.name, base,
                                 now > seen ? static_cast<double>(now - seen) / hz : 0.0);
                }
            }
        }
    }
}

double jitter_seconds(const dp::rtp_quality& q)
{
    const uint32_t rate = q.clock_rate.load(std::memory_order_relaxed);
    if (rate == 0)
        return 0.0;
    return static_cast<double>(q.jitter_q4.load(std::memory_order_relaxed)) / 16.0 / rate;
}

} // namespace isar::ctl
