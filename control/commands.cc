#include "control/commands.h"

#include <string.h>

#include <algorithm>
#include <limits>
#include <memory>

#include <rte_byteorder.h>
#include <rte_cycles.h>

#include "control/command_util.h"
#include "control/request_guard.h"
#include "control/log.h"
#include "dataplane/stats.h"

namespace isar::ctl {

using json = nlohmann::json;

namespace {

// A leg's remote as "IP:PORT" / "[IPV6]:PORT", or null.
json remote_json(const dp::leg& l)
{
    auto r = leg_remote(l);
    return r ? json(format_endpoint(*r)) : json(nullptr);
}

// "SUITE:BASE64" -> key material. The error names the field and never quotes
// the value (crypto::parse_suite_key never puts key bytes in `err`).
crypto::key_material parse_key_field(const json& o, const std::string& field,
                                     const std::string& where)
{
    crypto::key_material km;
    auto it = o.find(field);
    if (it == o.end() || it->is_null())
        return km; // plain
    if (!it->is_string())
        invalid(where + field, "must be a string SUITE:BASE64 (or null for plain RTP)");
    std::string err;
    if (!crypto::parse_suite_key(it->get_ref<const std::string&>(), km, err))
        invalid(where + field, err);
    return km;
}

json suite_json(const crypto::key_material& km)
{
    return km.s == crypto::suite::none ? json(nullptr)
                                       : json(std::string(crypto::suite_name(km.s)));
}

template <size_t N>
json drops_json(const std::array<dp::counter, N>& d)
{
    json o = json::object();
    for (unsigned i = 0; i < N; i++) {
        uint64_t v = dp::read(d[i]);
        if (v != 0)
            o[dp::drop_name(static_cast<dp::drop>(i))] = v;
    }
    return o;
}

// RFC 3550 receive statistics of what the leg's remote sends.
json rtp_json(const dp::leg& l)
{
    const dp::rtp_quality& q = l.stats.rtp;
    const uint64_t exp = q.expected.load(std::memory_order_relaxed);
    const int64_t lost = q.lost();
    const uint32_t rate = q.clock_rate.load(std::memory_order_relaxed);
    const uint32_t j = q.jitter_q4.load(std::memory_order_relaxed);
    return json{{"received", q.received.load(std::memory_order_relaxed)},
                {"expected", exp},
                {"lost", lost},
                {"loss_ratio", exp ? static_cast<double>(lost) / static_cast<double>(exp) : 0.0},
                {"ext_max_seq", q.ext_max_seq.load(std::memory_order_relaxed)},
                {"ssrc", q.ssrc.load(std::memory_order_relaxed)},
                {"restarts", q.restarts.load(std::memory_order_relaxed)},
                {"jitter", j >> 4},
                {"jitter_ms", rate ? jitter_seconds(q) * 1000.0 : 0.0},
                {"clock_rate", rate ? json(rate) : json(nullptr)},
                {"rtcp_packets", q.rtcp.load(std::memory_order_relaxed)}};
}

// legs[i]'s clock_rate, max_pps and latch_from into `lr` (`where`: "legs[i].").
void parse_leg_limits(const json& l, const std::string& where, leg_request& lr)
{
    if (auto f = l.find("clock_rate"); f != l.end()) {
        if (!f->is_number_integer() || f->get<int64_t>() < 1000 || f->get<int64_t>() > 1000000)
            invalid(where + "clock_rate", "must be an RTP clock rate in Hz from 1000 to "
                                          "1000000 (e.g. 48000 for Opus)");
        lr.clock_rate = f->get<uint32_t>();
    }
    if (auto f = l.find("max_pps"); f != l.end()) {
        if (!f->is_number_integer() || f->get<int64_t>() < 1 || f->get<int64_t>() > 10000000)
            invalid(where + "max_pps", "must be a packet rate from 1 to 10000000");
        lr.max_pps = f->get<uint32_t>();
    }
    if (auto f = l.find("latch_from"); f != l.end()) {
        std::string perr;
        auto px = f->is_string() ? parse_prefix(f->get<std::string>(), perr) : std::nullopt;
        if (!px && f->is_string() &&
            f->get_ref<const std::string&>().find(':') != std::string::npos)
            invalid(where + "latch_from", "IPv6 networks are not supported here yet (a "
                                          "leg's latch_from is an IPv4 network such as "
                                          "\"198.18.0.0/24\")");
        if (!px)
            invalid(where + "latch_from", "must be an IPv4 network such as \"198.18.0.0/24\"" +
                                                  (perr.empty() ? "" : ": " + perr));
        lr.latch_from = *px;
    }
}

// legs[i] of session.create as a leg_request; every error names the field
// (keys never quoted).
leg_request parse_leg_request(const json& l, size_t i)
{
    const std::string where = "legs[" + std::to_string(i) + "].";
    if (!l.is_object())
        invalid("legs[" + std::to_string(i) + "]", "must be an object");
    check_fields(l,
                 {"name", "remote", "family", "targets", "interface", "in", "out", "clock_rate",
                  "max_pps", "latch_from"},
                 where);
    leg_request lr;
    lr.name = get_string(l, "name", where);
    if (auto r = l.find("remote"); r != l.end() && !r->is_null()) {
        if (!r->is_string())
            invalid(where + "remote", "must be a string IP:PORT or [IPV6]:PORT");
        std::string err;
        lr.remote = parse_endpoint_any(r->get<std::string>(), err);
        if (!lr.remote)
            invalid(where + "remote", err);
    }
    if (auto f = l.find("family"); f != l.end()) {
        if (!f->is_number_integer() || (f->get<int64_t>() != 4 && f->get<int64_t>() != 6))
            invalid(where + "family", "must be 4 or 6");
        lr.family = static_cast<uint8_t>(f->get<unsigned>());
        if (lr.remote && lr.remote->family != lr.family)
            invalid(where + "family", "is " + std::to_string(lr.family) +
                                              " but the remote is an IPv" +
                                              std::to_string(lr.remote->family) + " address");
    }
    if (auto t = l.find("targets"); t != l.end()) {
        if (!t->is_array())
            invalid(where + "targets", "must be an array of leg names");
        std::vector<std::string> names;
        for (auto& n : *t) {
            if (!n.is_string())
                invalid(where + "targets", "must be an array of leg names");
            names.push_back(n.get<std::string>());
        }
        lr.targets = std::move(names);
    }
    if (auto f = l.find("interface"); f != l.end()) {
        // get<unsigned>() would wrap 2^32 to interface 0.
        if (!f->is_number_unsigned() || f->get<uint64_t>() > std::numeric_limits<unsigned>::max())
            invalid(where + "interface", "must be an interface index");
        lr.iface = f->get<unsigned>();
    }
    parse_leg_limits(l, where, lr);
    lr.in = parse_key_field(l, "in", where);
    lr.out = parse_key_field(l, "out", where);
    return lr;
}

} // namespace

commands::commands(dp::dataplane& dp, session_manager& sm, neighbor_manager& nm,
                   const config& cfg)
    : dp_(dp), sm_(sm), nm_(nm), cfg_(cfg), start_tsc_(rte_rdtsc())
{
}

bool commands::begin_drain()
{
    if (draining_)
        return false;
    draining_ = true;
    drain_start_tsc_ = rte_rdtsc();
    if (on_drain)
        on_drain();
    return true;
}

json commands::error_json(const std::string& code, const std::string& message)
{
    return json{{"error", {{"code", code}, {"message", message}}}};
}

void commands::handle_line(std::string_view line, reply_fn reply, std::string_view who)
{
    json req;
    // nlohmann's parser recurses once per level: bound the depth first.
    if (nesting_depth(line, max_depth) > max_depth) {
        stats_.requests++;
        stats_.errors++;
        reply(error_json("too_deep", "request nests arrays/objects deeper than " +
                                             std::to_string(max_depth) + " levels"));
        return;
    }
    // SRTP keys bypass the parser (see extract_keys) and are wiped at the end.
    std::vector<std::string> keys;
    struct wiper {
        std::vector<std::string>& k;
        ~wiper()
        {
            for (auto& s : k)
                explicit_bzero(s.data(), s.size());
        }
    } wipe_extracted{keys};
    try {
        std::string masked = extract_keys(line, keys);
        req = json::parse(masked);
        restore_keys(req, keys);
    } catch (const json::parse_error& e) {
        stats_.requests++;
        stats_.errors++;
        // Not e.what(): it quotes the input, which may hold SRTP keys.
        // (With keys taken out, offsets past the first key are shifted.)
        reply(error_json("parse", "request is not valid JSON (error at byte " +
                                          std::to_string(e.byte) +
                                          (keys.empty() ? ")" : " with SRTP keys elided)")));
        return;
    } catch (const json::exception&) {
        // e.g. out_of_range for a number beyond double (1e999)
        stats_.requests++;
        stats_.errors++;
        reply(error_json("parse", "request is not valid JSON (a number out of range)"));
        return;
    }
    handle(req, std::move(reply), who);
    wipe_keys(req);
}

void commands::handle(const json& req, reply_fn reply, std::string_view who)
{
    stats_.requests++;
    // The command's name once it is known: its answer feeds its histogram.
    auto name = std::make_shared<std::string>();
    // Echo the caller's "id" so that pipelining clients can match answers.
    reply_fn out = [this, id = req.is_object() && req.contains("id") ? req["id"] : json(),
                    r = std::move(reply), name, t0 = rte_rdtsc()](const json& resp) {
        const bool err = resp.contains("error");
        if (err)
            stats_.errors++;
        hist_[name->empty() ? std::string("invalid") : *name].observe(
                static_cast<double>(rte_rdtsc() - t0) / static_cast<double>(rte_get_tsc_hz()),
                err);
        if (id.is_null()) {
            r(resp);
        } else {
            json j = resp;
            j["id"] = id;
            r(j);
        }
    };
    try {
        if (!req.is_object())
            throw bad_request{"invalid", "request: must be a JSON object"};
        const std::string& cmd = get_string(req, "cmd", "");
        using handler = void (commands::*)(const json&, reply_fn&);
        static const std::map<std::string, handler> table = {
                {"ping", &commands::cmd_ping},
                {"session.create", &commands::cmd_session_create},
                {"session.get", &commands::cmd_session_get},
                {"session.list", &commands::cmd_session_list},
                {"session.delete", &commands::cmd_session_delete},
                {"leg.update", &commands::cmd_leg_update},
                {"stats", &commands::cmd_stats},
                {"status", &commands::cmd_status},
                {"drain", &commands::cmd_drain},
                {"debug.wedge_worker", &commands::cmd_debug_wedge},
                {"turn.list", &commands::cmd_turn_list},
                {"turn.get", &commands::cmd_turn_get},
                {"turn.delete", &commands::cmd_turn_delete},
        };
        auto h = table.find(cmd);
        if (h == table.end())
            throw bad_request{"unknown_command",
                              "cmd: unknown command (ping, session.create, session.get, "
                              "session.list, session.delete, leg.update, stats, status, drain, "
                              "debug.wedge_worker, turn.list, turn.get, turn.delete)"};
        per_cmd_[cmd]++;
        *name = cmd;
        audit(who, cmd, req);
        (this->*(h->second))(req, out);
    } catch (const bad_request& e) {
        out(error_json(e.code, e.message));
    }
}

void commands::cmd_ping(const json& req, reply_fn& reply)
{
    check_fields(req, {"cmd", "id"}, "");
    reply(json{{"pong", true}, {"version", "0.1.0"}, {"workers", dp_.nworkers()}});
}

void commands::cmd_session_create(const json& req, reply_fn& reply)
{
    check_fields(req, {"cmd", "id", "session", "legs", "metrics"}, "");
    create_request cr;
    cr.id = get_string(req, "session", "");
    if (auto m = req.find("metrics"); m != req.end()) {
        if (!m->is_boolean())
            invalid("metrics", "must be true or false");
        cr.metrics = m->get<bool>();
    }
    auto legs = req.find("legs");
    if (legs == req.end() || !legs->is_array())
        invalid("legs", "must be an array of leg objects");
    for (size_t i = 0; i < legs->size(); i++)
        cr.legs.push_back(parse_leg_request((*legs)[i], i));
    if (draining_)
        throw bad_request{"draining", "isard is draining: no new sessions (it stops when the "
                                      "existing ones are gone)"};
    const std::string id = cr.id;
    error e = sm_.create(cr, [this, id, reply](const error& err) {
        if (err) {
            reply(error_json(err.code, err.message));
            return;
        }
        const session_info* s = sm_.find(id);
        if (s == nullptr) {
            reply(error_json("not_found", "session: \"" + id + "\" was deleted meanwhile"));
            return;
        }
        json out = json::array();
        for (unsigned i = 0; i < s->ds->nlegs; i++) {
            const dp::leg& l = s->ds->legs[i];
            out.push_back({{"name", s->leg_names[i]},
                           {"local", local_string(l)},
                           {"remote", remote_json(l)},
                           {"family", l.family}});
        }
        reply(json{{"session", id}, {"legs", out}});
    });
    if (e)
        reply(error_json(e.code, e.message));
}

json commands::session_json(const session_info& s) const
{
    const uint64_t now = rte_rdtsc();
    json legs = json::array();
    for (unsigned i = 0; i < s.ds->nlegs; i++) {
        const dp::leg& l = s.ds->legs[i];
        const dp::packed_ep r = l.remote.load(std::memory_order_relaxed);
        json targets = json::array();
        for (unsigned t = 0; t < l.ntargets; t++)
            targets.push_back(s.leg_names[l.target(t)]);
        uint64_t seen = dp::read(l.last_seen_tsc);
        const dp::leg_sent sent = dp::leg_out(*s.ds, i);
        legs.push_back(
                {{"name", s.leg_names[i]},
                 {"local", local_string(l)},
                 {"remote", remote_json(l)},
                 {"latched", r != 0 && !s.remote_configured[i]},
                 {"interface", l.iface},
                 {"family", l.family},
                 {"laddr", l.laddr},
                 {"targets", targets},
                 {"srtp",
                  {{"in", i < s.crypto.size() ? suite_json(s.crypto[i].in_key) : json(nullptr)},
                   {"out", i < s.crypto.size() ? suite_json(s.crypto[i].out_key) : json(nullptr)},
                   {"passthrough", l.verify_only}}},
                 {"in", {{"packets", dp::read(l.ctr.in_pkts)}, {"bytes", dp::read(l.ctr.in_bytes)}}},
                 {"out",
                  {{"packets", sent.pkts}, {"bytes", sent.bytes}}},
                 {"last_packet_s",
                  seen ? json(static_cast<double>(now - seen) / rte_get_tsc_hz()) : json(nullptr)},
                 {"rtp", rtp_json(l)},
                 {"clock_rate", l.clock_rate ? json(l.clock_rate) : json(nullptr)},
                 {"max_pps", i < s.max_pps.size() && s.max_pps[i] ? json(s.max_pps[i])
                                                                  : json(nullptr)},
                 {"drops", drops_json(l.stats.drops)}});
    }
    return json{{"session", s.id},
                {"state", state_name(s.state)},
                {"worker", s.ds->owner},
                {"age_s", static_cast<double>(now - s.created_tsc) / rte_get_tsc_hz()},
                {"idle_s", sm_.idle_seconds(s, now)},
                {"metrics", s.metrics},
                {"legs", legs}};
}

void commands::cmd_session_get(const json& req, reply_fn& reply)
{
    check_fields(req, {"cmd", "id", "session"}, "");
    const std::string& id = get_string(req, "session", "");
    const session_info* s = sm_.find(id);
    if (s == nullptr)
        throw bad_request{"not_found", "session: no session \"" + id + "\""};
    reply(session_json(*s));
}

void commands::cmd_session_list(const json& req, reply_fn& reply)
{
    check_fields(req, {"cmd", "id"}, "");
    const uint64_t now = rte_rdtsc();
    json list = json::array();
    for (auto& [id, s] : sm_.sessions()) {
        uint64_t pkts = 0;
        for (unsigned i = 0; i < s->ds->nlegs; i++)
            pkts += dp::read(s->ds->legs[i].ctr.in_pkts);
        list.push_back({{"session", id},
                        {"state", state_name(s->state)},
                        {"legs", s->ds->nlegs},
                        {"packets", pkts},
                        {"idle_s", sm_.idle_seconds(*s, now)}});
    }
    reply(json{{"sessions", list}});
}

void commands::cmd_session_delete(const json& req, reply_fn& reply)
{
    check_fields(req, {"cmd", "id", "session"}, "");
    const std::string id = get_string(req, "session", "");
    error e = sm_.remove(id, [id, reply](const error& err) {
        if (err)
            reply(error_json(err.code, err.message));
        else
            reply(json{{"session", id}, {"deleted", true}});
    });
    if (e)
        reply(error_json(e.code, e.message));
}

void commands::cmd_leg_update(const json& req, reply_fn& reply)
{
    check_fields(req, {"cmd", "id", "session", "leg", "remote", "in", "out"}, "");
    const std::string id = get_string(req, "session", "");
    const std::string leg = get_string(req, "leg", "");
    leg_update upd;
    if (auto r = req.find("remote"); r != req.end()) {
        std::optional<endpoint> ep;
        if (!r->is_null()) {
            if (!r->is_string())
                invalid("remote", "must be a string IP:PORT or [IPV6]:PORT, or null");
            std::string err;
            ep = parse_endpoint_any(r->get<std::string>(), err);
            if (!ep)
                invalid("remote", err);
        }
        upd.remote = ep;
    }
    if (req.contains("in"))
        upd.in = parse_key_field(req, "in", "");
    if (req.contains("out"))
        upd.out = parse_key_field(req, "out", "");
    if (!upd.remote && !upd.in && !upd.out)
        invalid("remote", "missing: give remote (IP:PORT, or null to clear and latch again), "
                          "in and/or out (SUITE:BASE64, or null for plain RTP)");
    error e = sm_.update_leg(id, leg, std::move(upd), [this, id, reply](const error& err) {
        if (err) {
            reply(error_json(err.code, err.message));
            return;
        }
        const session_info* s = sm_.find(id);
        if (s == nullptr)
            reply(error_json("not_found", "session: \"" + id + "\" was deleted meanwhile"));
        else
            reply(session_json(*s));
    });
    if (e)
        reply(error_json(e.code, e.message));
}

json commands::stats_json() const
{
    json workers = json::array();
    json total = json::object();
    auto add = [&](json& o, const char* k, uint64_t v) {
        o[k] = v;
        total[k] = total.value(k, uint64_t{0}) + v;
    };
    std::array<uint64_t, dp::n_drops> tdrops{};
    for (unsigned w = 0; w < dp_.nworkers(); w++) {
        const dp::worker_stats& s = dp_.wk(w).stats;
        json o;
        o["worker"] = w;
        add(o, "rx_pkts", dp::read(s.rx_pkts));
        add(o, "rx_bytes", dp::read(s.rx_bytes));
        add(o, "tx_pkts", dp::read(s.tx_pkts));
        add(o, "tx_bytes", dp::read(s.tx_bytes));
        add(o, "fwd_pkts", dp::read(s.fwd_pkts));
        add(o, "exception_pkts", dp::read(s.exception_pkts));
        add(o, "held_pkts", dp::read(s.held_pkts));
        add(o, "handoff_out", dp::read(s.handoff_out));
        add(o, "handoff_in", dp::read(s.handoff_in));
        add(o, "cmds_applied", dp::read(s.cmds_applied));
        add(o, "loops", dp::read(s.loops));
        add(o, "busy_loops", dp::read(s.busy_loops));
        add(o, "to_kernel_pkts", dp::read(s.to_kernel_pkts));
        add(o, "to_kernel_bytes", dp::read(s.to_kernel_bytes));
        add(o, "from_kernel_pkts", dp::read(s.from_kernel_pkts));
        add(o, "from_kernel_bytes", dp::read(s.from_kernel_bytes));
        // Fill levels: the worker's TURN client table against its size.
        o["turn_allocations"] = dp_.wk(w).turn_allocs.load(std::memory_order_relaxed);
        o["turn_allocations_max"] = dp_.wk(w).turn_clients.capacity();
        o["drops"] = drops_json(s.drops);
        for (unsigned i = 0; i < dp::n_drops; i++)
            tdrops[i] += dp::read(s.drops[i]);
        workers.push_back(o);
    }
    // Port ownership (dataplane/ownership.h): the share of received packets
    // handed off to their owner, per worker and in all.
    auto share = [](const json& o) {
        const auto rx = o.value("rx_pkts", uint64_t{0});
        return rx == 0 ? 0.0
                       : static_cast<double>(o.value("handoff_out", uint64_t{0})) /
                                 static_cast<double>(rx);
    };
    for (auto& o : workers)
        o["handoff_share"] = share(o);
    total["handoff_share"] = share(total);
    json own = json::array();
    for (unsigned i = 0; i < dp_.nifaces(); i++)
        own.push_back({{"interface", i},
                       {"mode", dp::own_mode_name(dp_.ownership(i))},
                       {"desc", dp_.ownership_desc(i)}});
    json td = json::object();
    for (unsigned i = 0; i < dp::n_drops; i++)
        if (tdrops[i])
            td[dp::drop_name(static_cast<dp::drop>(i))] = tdrops[i];
    total["drops"] = td;
    const auto& n = nm_.stats();
    const auto& ss = sm_.stats();
    return json{{"workers", workers},
                {"total", total},
                {"sessions",
                 {{"active", sm_.sessions().size()},
                  {"legs", sm_.leg_count()},
                  {"created", ss.created},
                  {"deleted", ss.deleted},
                  {"expired", ss.expired},
                  {"failed", ss.failed}}},
                {"exception",
                 {{"arp_in", n.arp_in},
                  {"arp_replies", n.arp_replies},
                  {"arp_requests", n.arp_requests},
                  {"arp_learned", n.arp_learned},
                  {"arp_bad", n.arp_bad},
                  {"icmp_in", n.icmp_in},
                  {"icmp_echo_replies", n.icmp_echo_replies},
                  {"icmp_other", n.icmp_other},
                  {"held", n.held},
                  {"held_sent", n.held_sent},
                  {"held_dropped", n.held_dropped},
                  {"stun", n.stun},
                  {"dtls", n.dtls},
                  {"tx_failed", n.tx_failed}}},
                {"control", {{"requests", stats_.requests}, {"errors", stats_.errors}}},
                {"turn", turn_stats_json()},
                {"turn_streams", streams_json()},
                {"relay_ports", ports_json()},
                {"neighbors", neighbors_json()},
                {"mbufs_in_use", dp_.mbufs_in_use()},
                {"ownership", own}};
}

// Fill level of the relay port pools, one per address slot (legs and TURN
// allocations share them).
json commands::ports_json() const
{
    json a = json::array();
    for (unsigned i = 0; i < sm_.nslots(); i++)
        a.push_back({{"interface", dp_.laddr(i).iface},
                     {"address", format_ip(sm_.address_of(i))},
                     {"family", dp_.laddr(i).family},
                     {"free", sm_.pool(i).free_total()},
                     {"capacity", sm_.pool(i).capacity()}});
    return a;
}

// The neighbour manager's ARP/ND counters and each interface's table fill
// (per family; capacity is per family: [dataplane] neighbors).
json commands::neighbors_json() const
{
    const auto& n = nm_.stats();
    json tables = json::array();
    for (unsigned i = 0; i < dp_.nifaces(); i++) {
        const dp::neighbor_table* t = dp_.ifc(i).neigh;
        if (t == nullptr)
            continue;
        tables.push_back({{"interface", i}, {"family", 4}, {"entries", t->size4()},
                          {"capacity", t->capacity()}});
        tables.push_back({{"interface", i}, {"family", 6}, {"entries", t->size6()},
                          {"capacity", t->capacity()}});
    }
    json j;
#define ISAR_NEIGH_JSON(field, name, kind) j[name] = n.field;
    ISAR_FOREACH_NEIGH_COUNTER(ISAR_NEIGH_JSON)
#undef ISAR_NEIGH_JSON
    j["tables"] = std::move(tables);
    return j;
}

// A leg's relay address as reported: its slot's public address (1:1 NAT) or
// its own, and its port.
std::string commands::local_string(const dp::leg& l) const
{
    return format_endpoint(endpoint::of(sm_.public_of(l.laddr), rte_be_to_cpu_16(l.local_port_be)));
}

void commands::cmd_stats(const json& req, reply_fn& reply)
{
    check_fields(req, {"cmd", "id"}, "");
    reply(stats_json());
}

void commands::cmd_status(const json& req, reply_fn& reply)
{
    check_fields(req, {"cmd", "id"}, "");
    const uint64_t now = rte_rdtsc();
    const double hz = static_cast<double>(rte_get_tsc_hz());
    json r{{"state", draining_ ? "draining" : "running"},
           {"version", "0.1.0"},
           {"uptime_s", static_cast<double>(now - start_tsc_) / hz},
           {"workers", dp_.nworkers()},
           {"sessions", sm_.sessions().size()},
           {"legs", sm_.leg_count()},
           {"drain_timeout_s", cfg_.drain_timeout_s}};
    if (draining_)
        r["draining_s"] = static_cast<double>(now - drain_start_tsc_) / hz;
    reply(r);
}

void commands::cmd_drain(const json& req, reply_fn& reply)
{
    check_fields(req, {"cmd", "id"}, "");
    const bool started = begin_drain();
    reply(json{{"state", "draining"},
               {"started", started},
               {"sessions", sm_.sessions().size()},
               {"drain_timeout_s", cfg_.drain_timeout_s}});
}

void commands::cmd_debug_wedge(const json& req, reply_fn& reply)
{
    check_fields(req, {"cmd", "id", "worker", "seconds"}, "");
    if (!cfg_.allow_wedge)
        throw bad_request{"forbidden", "debug.wedge_worker: disabled (set [debug] allow_wedge = "
                                       "true in the configuration; for watchdog tests only)"};
    auto w = req.find("worker");
    if (w == req.end() || !w->is_number_integer() || w->get<int64_t>() < 0 ||
        w->get<int64_t>() >= static_cast<int64_t>(dp_.nworkers()))
        invalid("worker", "must be a worker index below " + std::to_string(dp_.nworkers()));
    uint64_t secs = 10;
    if (auto s = req.find("seconds"); s != req.end()) {
        if (!s->is_number_integer() || s->get<int64_t>() < 1 || s->get<int64_t>() > 300)
            invalid("seconds", "must be from 1 to 300");
        secs = s->get<uint64_t>();
    }
    const unsigned wi = w->get<unsigned>();
    dp_.wk(wi).wedge_until.store(rte_rdtsc() + secs * rte_get_tsc_hz(),
                                 std::memory_order_relaxed);
    reply(json{{"worker", wi}, {"wedged_s", secs}});
}

} // namespace isar::ctl
