// isarctl: the command-line client of isard's management socket.
// argv -> one JSON request -> one JSON response -> text (or --json). No DPDK.
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

using json = nlohmann::json;

namespace {

[[noreturn]] void die(int code, const std::string& msg)
{
    fprintf(stderr, "isarctl: %s\n", msg.c_str());
    exit(code);
}

void wipe(std::string& s)
{
    explicit_bzero(s.data(), s.size());
    s.clear();
}

json call(const std::string& path, const json& req)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die(3, std::string("socket: ") + strerror(errno));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.size() >= sizeof(sa.sun_path))
        die(2, "socket path too long: " + path);
    std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
    if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
        die(3, "cannot connect to " + path + ": " + strerror(errno) +
                       " (is isard running? use --socket or ISAR_SOCKET)");
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string line = req.dump() + "\n";
    for (size_t off = 0; off < line.size();) {
        ssize_t n = send(fd, line.data() + off, line.size() - off, MSG_NOSIGNAL);
        if (n <= 0) {
            wipe(line);
            die(3, std::string("send: ") + strerror(errno));
        }
        off += static_cast<size_t>(n);
    }
    wipe(line); // it may hold SRTP keys
    std::string in;
    char buf[65536];
    while (in.find('\n') == std::string::npos) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0)
            die(3, "isard closed the connection without an answer");
        if (n < 0)
            die(3, std::string("no answer from isard: ") + strerror(errno));
        in.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    try {
        return json::parse(in.substr(0, in.find('\n')));
    } catch (const json::exception& e) {
        die(3, std::string("isard sent a malformed answer: ") + e.what());
    }
}

// ---- SRTP keys from a file or standard input ---------------------------------
// in=@FILE / out=@FILE read the key from FILE, @- from standard input (one line
// per @-): exactly one SUITE:BASE64, a trailing newline allowed. Messages name
// the file, never its content; every buffer that held a key is wiped.

// Up to 4 KiB: a line from fd 0 (byte by byte: no stdio buffer keeps a copy),
// or a whole file.
bool read_key_source(const std::string& path, std::string& out, std::string& err)
{
    const bool is_stdin = path == "-";
    int fd = is_stdin ? 0 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err = "cannot open " + path + ": " + strerror(errno);
        return false;
    }
    char ch = 0;
    bool ok = true;
    for (;;) {
        ssize_t n = ::read(fd, &ch, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = "cannot read " + std::string(is_stdin ? "standard input" : path) + ": " +
                  strerror(errno);
            ok = false;
            break;
        }
        if (n == 0 || (is_stdin && ch == '\n'))
            break;
        if (out.size() >= 4096) {
            err = std::string(is_stdin ? "standard input" : path) + ": longer than 4096 bytes, "
                                                                   "not a key";
            ok = false;
            break;
        }
        out.push_back(ch);
    }
    explicit_bzero(&ch, sizeof ch);
    if (!is_stdin)
        ::close(fd);
    if (!ok)
        wipe(out);
    return ok;
}

// The value of in= or out=: as given, or read from @FILE / @-.
std::string key_value(std::string& v, const std::string& what)
{
    if (v.empty() || v[0] != '@')
        return std::move(v);
    const std::string path = v.substr(1), src = path == "-" ? "standard input" : path;
    std::string key, err;
    if (path.empty())
        die(2, what + ": expected @FILE or @- (standard input)");
    if (!read_key_source(path, key, err))
        die(2, what + ": " + err);
    if (!key.empty() && key.back() == '\n')
        key.pop_back();
    if (!key.empty() && key.back() == '\r')
        key.pop_back();
    bool ok = key.find(':') != std::string::npos && key.front() != ':' && key.back() != ':';
    for (char ch : key)
        ok = ok && ch > 0x20 && ch < 0x7f;
    if (!ok) {
        wipe(key);
        die(2, what + ": " + src + " must hold exactly one SUITE:BASE64 key (a trailing newline "
                                   "is allowed; nothing else)");
    }
    return key;
}

// Wipes the key strings of a request (isarctl's own copy, after sending).
void wipe_keys(json& req)
{
    auto w = [](json& o) {
        for (const char* k : {"in", "out"})
            if (auto it = o.find(k); it != o.end() && it->is_string())
                wipe(it->get_ref<std::string&>());
    };
    if (!req.is_object())
        return;
    w(req);
    if (auto l = req.find("legs"); l != req.end() && l->is_array())
        for (json& leg : *l)
            if (leg.is_object())
                w(leg);
}

std::string str(const json& j)
{
    return j.is_null() ? "-" : j.is_string() ? j.get<std::string>() : j.dump();
}

std::string drops_text(const json& d)
{
    std::string s;
    for (auto it = d.begin(); it != d.end(); ++it)
        s += (s.empty() ? "" : " ") + it.key() + "=" + it.value().dump();
    return s.empty() ? "-" : s;
}

// A word safe to quote in a message: a plausible option name, not key text.
std::string quoted_word(const std::string& k)
{
    bool ok = !k.empty() && k.size() <= 16;
    for (char c : k)
        ok = ok && ((c >= 'a' && c <= 'z') || c == '_');
    return ok ? "\"" + k + "\"" : "(not shown)";
}

// A SPEC with the values of in= and out= replaced: keys never reach a message.
std::string redact(const std::string& spec)
{
    std::string out;
    size_t start = 0;
    while (start <= spec.size()) {
        size_t comma = spec.find(',', start);
        std::string part = spec.substr(start, comma == std::string::npos ? std::string::npos
                                                                         : comma - start);
        const size_t eq = part.find('=');
        const std::string k = part.substr(0, eq);
        if (eq == std::string::npos) {
            if (start != 0)
                part = "...";
        } else if (k == "in" || k == "out") {
            part = k + "=...";
        } else if (k != "remote" && k != "targets" && k != "interface" && k != "clock_rate" &&
                   k != "max_pps" && k != "latch_from" && k != "family") {
            part = "..."; // unknown: may be (part of) a key
        }
        out += (out.empty() && start == 0 ? "" : ",") + part;
        if (comma == std::string::npos)
            break;
        start = comma + 1;
    }
    return out;
}

// "--leg a,remote=198.18.0.2:4000" -> {"name":"a","remote":"..."};
// "--leg b,remote=[2001:2::2]:4000", "--leg c,family=6" (IPv6, latching).
json parse_leg(const std::string& spec)
{
    json leg;
    size_t start = 0;
    bool first = true;
    while (start <= spec.size()) {
        size_t comma = spec.find(',', start);
        std::string part = spec.substr(start, comma == std::string::npos ? std::string::npos
                                                                         : comma - start);
        if (first) {
            if (part.empty() || part.find('=') != std::string::npos)
                die(2, "--leg " + redact(spec) + ": must start with the leg name");
            leg["name"] = part;
            first = false;
        } else {
            auto eq = part.find('=');
            if (eq == std::string::npos)
                die(2, "--leg " + redact(spec) + ": expected key=value after the name");
            std::string k = part.substr(0, eq), v = part.substr(eq + 1);
            if (k == "remote" || k == "latch_from")
                leg[k] = v;
            else if (k == "targets")
                leg["targets"] = json::array(), [&] {
                    size_t p = 0;
                    while (p <= v.size()) {
                        size_t c = v.find('+', p);
                        leg["targets"].push_back(v.substr(p, c == std::string::npos ? c : c - p));
                        if (c == std::string::npos)
                            break;
                        p = c + 1;
                    }
                }();
            else if (k == "interface") {
                // Digits only: std::stoul would throw (abort) or accept "-1".
                if (v.empty() || v.size() > 5 ||
                    v.find_first_not_of("0123456789") != std::string::npos)
                    die(2, "--leg " + redact(spec) + ": interface must be a number");
                leg["interface"] = std::stoul(v);
            } else if (k == "family") {
                if (v != "4" && v != "6")
                    die(2, "--leg " + redact(spec) + ": family must be 4 or 6");
                leg["family"] = v == "6" ? 6 : 4;
            } else if (k == "clock_rate" || k == "max_pps") {
                if (v.empty() || v.size() > 8 ||
                    v.find_first_not_of("0123456789") != std::string::npos)
                    die(2, "--leg " + redact(spec) + ": " + k + " must be a number");
                leg[k] = std::stoul(v);
            } else if (k == "in" || k == "out") {
                // SUITE:BASE64, @FILE or @-; never echoed in messages
                leg[k] = key_value(v, "--leg " + leg["name"].get<std::string>() + " " + k);
                wipe(v);
                wipe(part);
            } else {
                die(2, "--leg " + redact(spec) + ": unknown key " + quoted_word(k) +
                               " (remote, family, targets, interface, in, out, clock_rate, "
                               "max_pps, latch_from)");
            }
        }
        if (comma == std::string::npos)
            break;
        start = comma + 1;
    }
    return leg;
}

// Column width for the endpoints of `legs` ("[2001:2::1]:30000" is wider
// than an IPv4 one): at least 22.
size_t ep_width(const json& legs, const char* key, size_t extra = 0)
{
    size_t w = 22;
    for (auto& l : legs)
        w = std::max(w, str(l[key]).size() + extra);
    return w;
}

void print_session(const json& r)
{
    fmt::print("session {}  state {}  worker {}  age {:.1f}s  idle {:.1f}s\n", str(r["session"]),
               str(r["state"]), r["worker"].dump(), r["age_s"].get<double>(),
               r["idle_s"].get<double>());
    const size_t lw = ep_width(r["legs"], "local"), rw = ep_width(r["legs"], "remote", 10);
    fmt::print("{:<12} {:>3} {:<{}} {:<{}} {:>10} {:>12} {:>10} {:>12}  {}\n", "LEG", "FAM",
               "LOCAL", lw, "REMOTE", rw, "IN_PKTS", "IN_BYTES", "OUT_PKTS", "OUT_BYTES",
               "DROPS");
    std::string srtp;
    for (auto& l : r["legs"]) {
        std::string remote = str(l["remote"]);
        if (l.value("latched", false))
            remote += " (latched)";
        fmt::print("{:<12} {:>3} {:<{}} {:<{}} {:>10} {:>12} {:>10} {:>12}  {}\n",
                   str(l["name"]), l.value("family", json(4)).dump(), str(l["local"]), lw, remote,
                   rw, l["in"]["packets"].dump(), l["in"]["bytes"].dump(),
                   l["out"]["packets"].dump(), l["out"]["bytes"].dump(), drops_text(l["drops"]));
        if (l.contains("srtp")) {
            const json& c = l["srtp"];
            srtp += fmt::format("  {:<12} srtp in {} out {}{}\n", str(l["name"]), str(c["in"]),
                                str(c["out"]),
                                c.value("passthrough", false) ? " (authenticated pass-through)"
                                                              : "");
        }
    }
    fmt::print("{}", srtp);
    // RFC 3550 receive quality of what each leg's remote sends.
    fmt::print("{:<12} {:>10} {:>10} {:>8} {:>8} {:>10} {:>8} {:>10}\n", "LEG", "RTP_RECV",
               "EXPECTED", "LOST", "LOSS_%", "JITTER_MS", "RTCP", "LAST_PKT_S");
    for (auto& l : r["legs"]) {
        if (!l.contains("rtp"))
            continue;
        const json& q = l["rtp"];
        const double last = l["last_packet_s"].is_number() ? l["last_packet_s"].get<double>() : -1;
        fmt::print("{:<12} {:>10} {:>10} {:>8} {:>8.2f} {:>10.3f} {:>8} {:>10}\n", str(l["name"]),
                   q["received"].dump(), q["expected"].dump(), q["lost"].dump(),
                   q["loss_ratio"].get<double>() * 100.0, q["jitter_ms"].get<double>(),
                   q["rtcp_packets"].dump(), last < 0 ? std::string("-") : fmt::format("{:.1f}", last));
    }
}

void print_stats(const json& r)
{
    const char* cols[] = {"rx_pkts", "tx_pkts", "fwd_pkts", "exception_pkts", "handoff_in",
                          "handoff_out"};
    fmt::print("{:<8}", "WORKER");
    for (auto* c : cols)
        fmt::print(" {:>14}", c);
    fmt::print("  DROPS\n");
    auto row = [&](const std::string& name, const json& o) {
        fmt::print("{:<8}", name);
        for (auto* c : cols)
            fmt::print(" {:>14}", o.value(c, json(0)).dump());
        fmt::print("  {}\n", drops_text(o["drops"]));
    };
    for (auto& w : r["workers"])
        row(w["worker"].dump(), w);
    row("total", r["total"]);
    auto& s = r["sessions"];
    fmt::print("sessions: {} active, {} legs; created {}, deleted {}, expired {}\n",
               s["active"].dump(), s["legs"].dump(), s["created"].dump(), s["deleted"].dump(),
               s["expired"].dump());
    auto& e = r["exception"];
    fmt::print("exception path: arp in {} replies {} requests {}; icmp echo replies {}; held {} "
               "sent {} dropped {}; stun {} dtls {}\n",
               e["arp_in"].dump(), e["arp_replies"].dump(), e["arp_requests"].dump(),
               e["icmp_echo_replies"].dump(), e["held"].dump(), e["held_sent"].dump(),
               e["held_dropped"].dump(), e["stun"].dump(), e["dtls"].dump());
    const json& t = r["total"];
    if (t.value("to_kernel_pkts", json(0)) != 0 || t.value("from_kernel_pkts", json(0)) != 0)
        fmt::print("kernel interface: to the kernel {} packets {} bytes, from the kernel {} "
                   "packets {} bytes\n",
                   t["to_kernel_pkts"].dump(), t["to_kernel_bytes"].dump(),
                   t["from_kernel_pkts"].dump(), t["from_kernel_bytes"].dump());
    fmt::print("mbufs in use: {}\n", r["mbufs_in_use"].dump());
    if (r.contains("ownership")) {
        std::string per;
        for (auto& w : r["workers"])
            per += fmt::format("{}worker {} {:.1f} %", per.empty() ? "" : ", ",
                               w["worker"].dump(), w.value("handoff_share", 0.0) * 100.0);
        fmt::print("handoff: {:.1f} % of received packets crossed to their owning worker ({})\n",
                   r["total"].value("handoff_share", 0.0) * 100.0, per);
        for (auto& o : r["ownership"])
            fmt::print("ownership: interface {}: {}\n", o["interface"].dump(), str(o["desc"]));
    }
}

// "key=value ..." of the non-zero members of an object of counters, "-" if none.
std::string nonzero_text(const json& o)
{
    std::string s;
    for (auto it = o.begin(); it != o.end(); ++it)
        if (!(it.value().is_number() && it.value() == 0))
            s += (s.empty() ? "" : " ") + it.key() + "=" + it.value().dump();
    return s.empty() ? "-" : s;
}

// The "neighbors" block of stats: the ARP/ND counters (non-zero ones) and the
// fill of each interface's neighbour table.
void print_neighbors(const json& n)
{
    if (!n.is_object())
        return;
    json counters = n;
    counters.erase("tables");
    fmt::print("neighbours: {}\n", nonzero_text(counters));
    for (auto& t : n.value("tables", json::array()))
        fmt::print("neighbour table: interface {} IPv{} {} entries of {}\n",
                   t.value("interface", json(0)).dump(), t.value("family", json(4)).dump(),
                   t.value("entries", json(0)).dump(), t.value("capacity", json(0)).dump());
}

// The "turn" block of stats, when TURN is on.
void print_turn_stats(const json& t)
{
    if (!t.is_object() || !t.value("enabled", false))
        return;
    auto n = [&](const char* k) { return t.value(k, json(0)).dump(); };
    fmt::print("turn: {} allocation(s) (max {}), {} permission(s), {} channel(s); packets to "
               "peers {}, from peers {} (channel data {}, hairpin {})\n",
               n("allocations"), n("max_allocations"), n("permissions"), n("channels"),
               n("to_peers_pkts"), n("from_peers_pkts"), n("channel_data_pkts"),
               n("hairpin_pkts"));
    fmt::print("turn requests: {} handled ({} from workers, {} policed), {} bad, {} errors sent; "
               "allocations created {} ended {} failed {}; rejected: peer {} quota {} rate {} "
               "capacity {}\n",
               n("requests"), n("requests_from_workers"), n("requests_policed"),
               n("bad_requests"), n("errors_sent"), n("allocations_created"),
               n("allocations_ended"), n("allocations_failed"), n("peer_denied"),
               n("quota_rejected"), n("rate_rejected"), n("capacity_rejected"));
    fmt::print("turn auth failures: {}\n",
               nonzero_text(t.contains("auth_failures") ? t["auth_failures"] : json::object()));
}

// The "turn_streams" block of stats (TURN over TCP/TLS), when on.
void print_turn_streams(const json& t)
{
    if (!t.is_object() || !t.value("enabled", false) || !t.contains("total"))
        return;
    const json& c = t["total"];
    auto n = [&](const char* k) { return c.value(k, json(0)).dump(); };
    fmt::print("turn tcp/tls: {} connection(s) ({} TLS, {} with an allocation; max {}) on {} "
               "thread(s); send buffers {} B\n",
               n("live"), n("live_tls"), n("bound"), t.value("max_connections", json(0)).dump(),
               t.value("threads", json(0)).dump(), n("send_buffer_bytes"));
    json rest = c;
    for (const char* k : {"live", "live_tls", "bound", "send_buffer_bytes"})
        rest.erase(k);
    fmt::print("turn tcp/tls counters: {}\n", nonzero_text(rest));
}

double num(const json& j)
{
    return j.is_number() ? j.get<double>() : 0.0;
}

void print_turn_list(const json& r)
{
    if (!r.value("enabled", false)) {
        fmt::print("TURN is off (no [turn] listen_udp in isard's config)\n");
        return;
    }
    fmt::print("{:>6} {:<24} {:<22} {:<22} {:>6} {:<10} {:>8} {:>5} {:>5} {:>12} {:>12}\n", "ID",
               "USER", "CLIENT", "RELAYED", "WORKER", "STATE", "LEFT_S", "PERMS", "CHANS",
               "TO_PEER_PKTS", "FROM_PEER_PKTS");
    for (auto& a : r["allocations"])
        fmt::print("{:>6} {:<24} {:<22} {:<22} {:>6} {:<10} {:>8.0f} {:>5} {:>5} {:>12} {:>12}\n",
                   a["id"].dump(), str(a["username"]), str(a["client"]), str(a["relayed"]),
                   a["worker"].dump(), str(a["state"]), num(a["lifetime_left_s"]),
                   a["permissions"].dump(), a["channels"].dump(),
                   a["to_peers"]["packets"].dump(), a["from_peers"]["packets"].dump());
}

void print_turn_alloc(const json& a)
{
    fmt::print("allocation {}  state {}  worker {}  user {}\n", a["id"].dump(), str(a["state"]),
               a["worker"].dump(), str(a["username"]));
    fmt::print("  client {}  listener {}  relayed {}\n", str(a["client"]), str(a["listener"]),
               str(a["relayed"]));
    fmt::print("  age {:.1f}s  lifetime left {:.1f}s\n", num(a["age_s"]),
               num(a["lifetime_left_s"]));
    const std::pair<const char*, const char*> dirs[] = {{"to_peers", "to peers:"},
                                                        {"from_peers", "from peers:"}};
    for (const auto& [key, label] : dirs) {
        const json& c = a[key];
        fmt::print("  {:<11} {:>10} packets {:>12} bytes {:>8} drops\n", label,
                   c["packets"].dump(), c["bytes"].dump(), c["drops"].dump());
    }
    fmt::print("{:<22} {:>12}\n", "PERMISSION", "EXPIRES_IN_S");
    for (auto& p : a.value("permission_list", json::array()))
        fmt::print("{:<22} {:>12.1f}\n", str(p["peer"]), num(p["expires_in_s"]));
    fmt::print("{:<8} {:<22} {:>12}\n", "CHANNEL", "PEER", "EXPIRES_IN_S");
    for (auto& c : a.value("channel_list", json::array()))
        fmt::print("{:<8} {:<22} {:>12.1f}\n",
                   c["channel"].is_number_unsigned()
                           ? fmt::format("{:#06x}", c["channel"].get<unsigned>())
                           : str(c["channel"]),
                   str(c["peer"]), num(c["expires_in_s"]));
}

// An allocation id from argv: a positive decimal number that fits in 32 bits.
uint64_t parse_alloc_id(const std::string& v)
{
    if (v.empty() || v.size() > 10 || v.find_first_not_of("0123456789") != std::string::npos ||
        std::stoull(v) == 0 || std::stoull(v) > 0xffffffffull)
        die(2, "turn: ID must be an allocation id (a positive number, see isarctl turn list)");
    return std::stoull(v);
}

// What the command line fills in: the options' storage, which the
// subcommands' callbacks read when they build the request.
struct cli_state {
    json req;
    std::string id; // session id: session create/show/delete, leg update
    std::vector<std::string> legs;
    bool with_metrics = false;
    std::string leg_name, leg_spec;
    std::string alloc;
    unsigned wedge_worker = 0, wedge_s = 10;
};

// isarctl session create|show|list|delete.
void add_session_commands(CLI::App& app, cli_state& st)
{
    auto* session = app.add_subcommand("session", "create, show, list and delete sessions");
    session->require_subcommand(1);
    auto* create = session->add_subcommand("create", "create a session and print its relay addresses");
    create->add_option("ID", st.id, "session id")->required();
    create->add_option("--leg", st.legs,
                       "NAME[,remote=IP:PORT|[IPV6]:PORT][,family=4|6][,targets=A+B][,interface=N]"
                       "[,in=KEY][,out=KEY][,clock_rate=HZ][,max_pps=N][,latch_from=CIDR]; KEY: "
                       "SUITE:BASE64, @FILE (a file holding it) or @- (a line of standard input)")
            ->required();
    create->add_flag("--metrics", st.with_metrics,
                     "export this session's per-leg series in /metrics (opt-in: bounded labels)");
    create->callback([&st] {
        json l = json::array();
        for (auto& s : st.legs)
            l.push_back(parse_leg(s));
        st.req = {{"cmd", "session.create"}, {"session", st.id}, {"legs", l}};
        if (st.with_metrics)
            st.req["metrics"] = true;
    });
    auto* show = session->add_subcommand("show", "legs, addresses, counters and drops");
    show->add_option("ID", st.id, "session id")->required();
    show->callback([&st] { st.req = {{"cmd", "session.get"}, {"session", st.id}}; });
    auto* list = session->add_subcommand("list", "all sessions");
    list->callback([&st] { st.req = {{"cmd", "session.list"}}; });
    auto* del = session->add_subcommand("delete", "delete a session");
    del->add_option("ID", st.id, "session id")->required();
    del->callback([&st] { st.req = {{"cmd", "session.delete"}, {"session", st.id}}; });
}

// The leg.update request of `leg update ID NAME SPEC`: SPEC's remote=, in=
// and out=, each at most once; the copies of key values are wiped once they
// are in the request.
json leg_update_request(const cli_state& st)
{
    json req = {{"cmd", "leg.update"}, {"session", st.id}, {"leg", st.leg_name}};
    const std::string& leg_spec = st.leg_spec;
    size_t start = 0;
    while (start <= leg_spec.size()) {
        size_t comma = leg_spec.find(',', start);
        std::string part = leg_spec.substr(start, comma == std::string::npos ? std::string::npos
                                                                             : comma - start);
        auto eq = part.find('=');
        std::string k = eq == std::string::npos ? part : part.substr(0, eq);
        if (eq == std::string::npos || (k != "remote" && k != "in" && k != "out"))
            die(2, "leg update: expected remote=IP:PORT|none, in=KEY|none or out=KEY|none "
                   "(KEY: SUITE:BASE64, @FILE or @-), got " +
                           (eq == std::string::npos ? std::string("a part without '='")
                                                    : "unknown key " + quoted_word(k)));
        if (req.contains(k))
            die(2, "leg update: " + k + " given twice");
        std::string v = part.substr(eq + 1);
        if (v == "none")
            req[k] = nullptr;
        else
            req[k] = k == "remote" ? v : key_value(v, "leg update " + k);
        wipe(v);
        wipe(part);
        if (comma == std::string::npos)
            break;
        start = comma + 1;
    }
    return req;
}

// isarctl leg update.
void add_leg_commands(CLI::App& app, cli_state& st)
{
    auto* leg = app.add_subcommand("leg", "change a leg");
    leg->require_subcommand(1);
    auto* update = leg->add_subcommand(
            "update", "change a live leg: remote (IP:PORT or [IPV6]:PORT, or none to latch again) and/or SRTP "
                      "keys (re-key; SUITE:BASE64, or none for plain RTP)");
    update->add_option("ID", st.id, "session id")->required();
    update->add_option("NAME", st.leg_name, "leg name")->required();
    update->add_option("SPEC", st.leg_spec,
                       "[remote=IP:PORT|[IPV6]:PORT|none][,in=KEY|none][,out=KEY|none]; KEY: "
                       "SUITE:BASE64, "
                       "@FILE or @- (standard input)")
            ->required();
    update->callback([&st] { st.req = leg_update_request(st); });
}

// isarctl turn list|show|delete.
void add_turn_commands(CLI::App& app, cli_state& st)
{
    auto* turn = app.add_subcommand("turn", "list, show and delete TURN allocations");
    turn->require_subcommand(1);
    auto* tlist = turn->add_subcommand("list", "all TURN allocations");
    tlist->callback([&st] { st.req = {{"cmd", "turn.list"}}; });
    auto* tshow = turn->add_subcommand(
            "show", "an allocation: addresses, counters, permissions and channels");
    tshow->add_option("ID", st.alloc, "allocation id (from turn list)")->required();
    tshow->callback([&st] {
        st.req = {{"cmd", "turn.get"}, {"allocation", parse_alloc_id(st.alloc)}};
    });
    auto* tdel = turn->add_subcommand("delete", "end an allocation (its client gets no notice)");
    tdel->add_option("ID", st.alloc, "allocation id (from turn list)")->required();
    tdel->callback([&st] {
        st.req = {{"cmd", "turn.delete"}, {"allocation", parse_alloc_id(st.alloc)}};
    });
}

// isarctl debug wedge-worker.
void add_debug_commands(CLI::App& app, cli_state& st)
{
    auto* debug = app.add_subcommand("debug", "test hooks (need [debug] allow_wedge = true)");
    debug->require_subcommand(1);
    auto* wedge = debug->add_subcommand("wedge-worker",
                                        "make a worker stop making progress (watchdog tests)");
    wedge->add_option("WORKER", st.wedge_worker, "worker index")->required();
    wedge->add_option("--seconds", st.wedge_s, "how long (1-300, default 10)");
    wedge->callback([&st] {
        st.req = {{"cmd", "debug.wedge_worker"},
                  {"worker", st.wedge_worker},
                  {"seconds", st.wedge_s}};
    });
}

// isard's answer `r` to `cmd` as text (not an error; not --json). `r` is not
// const: a key an older or newer isard does not send reads as null (printed
// "-") instead of tripping nlohmann's assertion on a const object.
void print_answer(const std::string& cmd, json& r)
{
    if (cmd == "ping") {
        fmt::print("pong: isard {} with {} worker(s)\n", str(r["version"]), r["workers"].dump());
    } else if (cmd == "session.create") {
        fmt::print("session {}\n", str(r["session"]));
        const size_t lw = ep_width(r["legs"], "local");
        for (auto& l : r["legs"])
            fmt::print("  {:<12} {:<{}} remote {}\n", str(l["name"]), str(l["local"]), lw,
                       str(l["remote"]));
    } else if (cmd == "session.get" || cmd == "leg.update") {
        print_session(r);
    } else if (cmd == "session.list") {
        fmt::print("{:<24} {:<10} {:>4} {:>12} {:>8}\n", "SESSION", "STATE", "LEGS", "PACKETS",
                   "IDLE_S");
        for (auto& s : r["sessions"])
            fmt::print("{:<24} {:<10} {:>4} {:>12} {:>8.1f}\n", str(s["session"]), str(s["state"]),
                       s["legs"].dump(), s["packets"].dump(), s["idle_s"].get<double>());
    } else if (cmd == "session.delete") {
        fmt::print("deleted {}\n", str(r["session"]));
    } else if (cmd == "stats") {
        print_stats(r);
        print_neighbors(r.value("neighbors", json()));
        if (r.contains("turn"))
            print_turn_stats(r["turn"]);
        print_turn_streams(r.value("turn_streams", json()));
    } else if (cmd == "turn.list") {
        print_turn_list(r);
    } else if (cmd == "turn.get") {
        print_turn_alloc(r);
    } else if (cmd == "turn.delete") {
        fmt::print("deleted allocation {}\n", r["deleted"].dump());
    } else if (cmd == "status") {
        fmt::print("state {}  uptime {:.0f}s  workers {}  sessions {}  legs {}{}\n",
                   str(r["state"]), r["uptime_s"].get<double>(), r["workers"].dump(),
                   r["sessions"].dump(), r["legs"].dump(),
                   r.contains("draining_s")
                           ? fmt::format("  draining for {:.0f}s (timeout {}s)",
                                         r["draining_s"].get<double>(),
                                         r["drain_timeout_s"].dump())
                           : std::string());
    } else if (cmd == "drain") {
        fmt::print("draining: {} session(s) left; isard exits when they are gone or after {}s\n",
                   r["sessions"].dump(), r["drain_timeout_s"].dump());
    } else if (cmd == "debug.wedge_worker") {
        fmt::print("worker {} wedged for {}s\n", r["worker"].dump(), r["wedged_s"].dump());
    }
}

} // namespace

int main(int argc, char** argv)
{
    CLI::App app{"isarctl: control the Isar media relay (sessions, legs, TURN allocations)"};
    app.require_subcommand(1);
    const char* env = getenv("ISAR_SOCKET");
    std::string sock = env ? env : "/run/isar/isard.sock";
    bool as_json = false;
    app.add_option("--socket", sock, "isard's management socket (or $ISAR_SOCKET)");
    app.add_flag("--json", as_json, "print isard's JSON answer as it is");

    // The subcommands in the order --help lists them.
    cli_state st;
    json& req = st.req;
    auto* ping = app.add_subcommand("ping", "check that isard answers");
    ping->callback([&] { req = {{"cmd", "ping"}}; });
    add_session_commands(app, st);
    add_leg_commands(app, st);
    auto* stats = app.add_subcommand("stats", "per-worker and total counters, and TURN's when on");
    stats->callback([&] { req = {{"cmd", "stats"}}; });
    add_turn_commands(app, st);
    auto* status = app.add_subcommand("status", "state (running/draining), uptime, workers, "
                                                "sessions, legs");
    status->callback([&] { req = {{"cmd", "status"}}; });
    auto* drain = app.add_subcommand(
            "drain", "stop admitting sessions; isard exits when the existing ones are gone or "
                     "after [control] drain_timeout_s");
    drain->callback([&] { req = {{"cmd", "drain"}}; });
    add_debug_commands(app, st);

    CLI11_PARSE(app, argc, argv);

    json r = call(sock, req);
    wipe_keys(req);
    if (r.contains("error")) {
        if (as_json)
            puts(r.dump().c_str());
        fprintf(stderr, "isarctl: %s: %s\n", str(r["error"]["code"]).c_str(),
                str(r["error"]["message"]).c_str());
        return 1;
    }
    if (as_json) {
        puts(r.dump().c_str());
        return 0;
    }
    const std::string cmd = req["cmd"];
    print_answer(cmd, r);
    return 0;
}
