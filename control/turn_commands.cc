// The TURN requests of the management protocol: turn.list, turn.get,
// turn.delete, and the "turn" block of stats.
#include <arpa/inet.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>

#include "control/addr.h"
#include "control/command_util.h"
#include "control/commands.h"

namespace isar::ctl {

namespace {
std::string ep4(uint32_t ip_be, uint16_t port_be)
{
    return format_endpoint({rte_be_to_cpu_32(ip_be), rte_be_to_cpu_16(port_be)});
}

// A peer of either family: "198.18.0.2:4000", "[2001:2::2]:4000"; the
// address alone when `with_port` is false.
std::string peer_text(const turn::transport_addr& a, bool with_port)
{
    if (a.family == 4)
        return with_port ? ep4(a.ip4_be(), rte_cpu_to_be_16(a.port))
                         : format_ipv4(rte_be_to_cpu_32(a.ip4_be()));
    char text[INET6_ADDRSTRLEN] = "?";
    inet_ntop(AF_INET6, a.ip, text, sizeof(text));
    return with_port ? "[" + std::string(text) + "]:" + std::to_string(a.port)
                     : std::string(text);
}

uint32_t alloc_id(const json& req)
{
    auto it = req.find("allocation");
    if (it == req.end())
        invalid("allocation", "missing (an allocation id from turn.list)");
    if (!it->is_number_unsigned() || it->get<uint64_t>() == 0 ||
        it->get<uint64_t>() > UINT32_MAX)
        invalid("allocation", "must be an allocation id (a positive integer)");
    return it->get<uint32_t>();
}
} // namespace

// The TURN drop reasons, summed over the workers.
json commands::turn_drops_json() const
{
    json d = json::object();
    for (unsigned i = 0; i < dp::n_drops; i++) {
        const std::string name = dp::drop_name(static_cast<dp::drop>(i));
        if (name.rfind("turn_", 0) != 0)
            continue;
        uint64_t v = 0;
        for (unsigned w = 0; w < dp_.nworkers(); w++)
            v += dp::read(dp_.wk(w).stats.drops[i]);
        d[name] = v;
    }
    return d;
}

json commands::turn_alloc_json(const turn_allocation& a, bool detail) const
{
    const dp::turn_alloc& d = *a.da;
    const uint64_t now = rte_rdtsc();
    const double hz = static_cast<double>(rte_get_tsc_hz());
    json j{{"id", a.id},
           {"username", a.username},
           {"client", a.origin.client_text()},
           {"transport", a.origin.transport()},
           {"listener", a.origin.listener_text()},
           {"relayed", turn_->relayed_text(a, false)},
           {"worker", d.owner},
           {"state", a.deleting ? "deleting" : a.installed ? "active" : "installing"},
           {"age_s", static_cast<double>(now - a.created_tsc) / hz},
           {"lifetime_left_s", turn_->seconds_left(a, now)},
           {"permissions", a.perms.size()},
           {"channels", a.chans.size()},
           {"to_peers", {{"packets", dp::read(d.ctr.c2p_pkts)},
                         {"bytes", dp::read(d.ctr.c2p_bytes)},
                         {"drops", dp::read(d.ctr.c2p_drops)}}},
           {"from_peers", {{"packets", dp::read(d.ctr.p2c_pkts)},
                           {"bytes", dp::read(d.ctr.p2c_bytes)},
                           {"drops", dp::read(d.ctr.p2c_drops)}}}};
    if (a.relay2_port != 0) // dual allocation: its IPv6 relayed address
        j["relayed2"] = turn_->relayed_text(a, true);
    if (!detail)
        return j;
    json perms = json::array(), chans = json::array();
    for (const auto& p : a.perms)
        perms.push_back({{"peer", peer_text(p.ip, false)},
                         {"expires_in_s",
                          p.expiry_tsc > now ? static_cast<double>(p.expiry_tsc - now) / hz
                                             : 0.0}});
    for (const auto& c : a.chans)
        chans.push_back({{"channel", c.number},
                         {"peer", peer_text(c.peer, true)},
                         {"expires_in_s",
                          c.expiry_tsc > now ? static_cast<double>(c.expiry_tsc - now) / hz
                                             : 0.0}});
    j["permission_list"] = perms;
    j["channel_list"] = chans;
    return j;
}

void commands::cmd_turn_list(const json& req, reply_fn& reply)
{
    check_fields(req, {"cmd", "id"}, "");
    json list = json::array();
    if (turn_ != nullptr)
        for (const auto& [id, a] : turn_->allocations())
            list.push_back(turn_alloc_json(*a, false));
    reply(json{{"enabled", turn_ != nullptr && turn_->enabled()}, {"allocations", list}});
}

void commands::cmd_turn_get(const json& req, reply_fn& reply)
{
    check_fields(req, {"cmd", "id", "allocation"}, "");
    const uint32_t id = alloc_id(req);
    const turn_allocation* a = turn_ != nullptr ? turn_->find(id) : nullptr;
    if (a == nullptr)
        throw bad_request{"not_found", "allocation: no allocation " + std::to_string(id)};
    reply(turn_alloc_json(*a, true));
}

void commands::cmd_turn_delete(const json& req, reply_fn& reply)
{
    check_fields(req, {"cmd", "id", "allocation"}, "");
    const uint32_t id = alloc_id(req);
    auto r = reply;
    if (turn_ == nullptr || !turn_->remove(id, [r, id](bool) {
            r(json{{"deleted", id}});
        }))
        throw bad_request{"not_found", "allocation: no active allocation " + std::to_string(id)};
}

json commands::turn_stats_json() const
{
    if (turn_ == nullptr || !turn_->enabled())
        return json{{"enabled", false}};
    const auto& s = turn_->stats();
    json auth = json::object();
    for (unsigned i = 0; i < static_cast<unsigned>(turn_manager::auth_fail::count); i++)
        auth[turn_manager::auth_fail_name(i)] = s.auth_failures[i];
    uint64_t c2p = 0, p2c = 0, c2pb = 0, p2cb = 0, cd = 0, hp = 0, rq = 0, pol = 0;
    for (unsigned w = 0; w < dp_.nworkers(); w++) {
        const dp::worker_stats& ws = dp_.wk(w).stats;
        c2p += dp::read(ws.turn_c2p_pkts);
        p2c += dp::read(ws.turn_p2c_pkts);
        c2pb += dp::read(ws.turn_c2p_bytes);
        p2cb += dp::read(ws.turn_p2c_bytes);
        cd += dp::read(ws.turn_channel_data);
        hp += dp::read(ws.turn_hairpin);
        rq += dp::read(ws.turn_requests);
        pol += dp::read(ws.drops[static_cast<unsigned>(dp::drop::turn_policed)]);
    }
    return json{{"enabled", true},
                {"allocations", turn_->allocations().size()},
                {"max_allocations", cfg_.turn.max_allocations},
                {"permissions", turn_->permission_count()},
                {"channels", turn_->channel_count()},
                {"requests", s.requests},
                {"requests_from_workers", rq},
                {"requests_policed", pol},
                {"drops", turn_drops_json()},
                {"bad_requests", s.bad_requests},
                {"binding", s.binding},
                {"allocate", s.allocate},
                {"refresh", s.refresh},
                {"create_permission", s.create_permission},
                {"channel_bind", s.channel_bind},
                {"allocations_created", s.allocations_created},
                {"allocations_ended", s.allocations_ended},
                {"allocations_failed", s.allocations_failed},
                {"permissions_created", s.permissions_created},
                {"channels_bound", s.channels_bound},
                {"peer_denied", s.peer_denied},
                {"quota_rejected", s.quota_rejected},
                {"rate_rejected", s.rate_rejected},
                {"capacity_rejected", s.capacity_rejected},
                {"errors_sent", s.errors_sent},
                {"auth_failures", auth},
                {"to_peers_pkts", c2p},
                {"from_peers_pkts", p2c},
                {"to_peers_bytes", c2pb},
                {"from_peers_bytes", p2cb},
                {"channel_data_pkts", cd},
                {"hairpin_pkts", hp}};
}

} // namespace isar::ctl
