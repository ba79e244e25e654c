#include "control/session_manager.h"

#include <algorithm>
#include <cerrno>
#include <set>

#include <rte_byteorder.h>
#include <rte_cycles.h>

namespace isar::ctl {

bool valid_name(const std::string& s)
{
    if (s.empty() || s.size() > 64)
        return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
    });
}

const char* state_name(session_state s)
{
    switch (s) {
    case session_state::installing:
        return "installing";
    case session_state::active:
        return "active";
    case session_state::deleting:
        return "deleting";
    }
    return "?";
}

session_manager::session_manager(dp::dataplane& dp, const config& cfg)
    : dp_(dp), cfg_(cfg), sessions_per_worker_(dp.nworkers(), 0)
{
    for (unsigned i = 0; i < dp.nifaces(); i++)
        pools_.push_back(std::make_unique<port_pool>(cfg.port_min, cfg.port_max, dp.nworkers()));
}

session_manager::~session_manager()
{
    // The dataplane is stopped before this runs: nothing reads the sessions.
    for (auto& [id, s] : sessions_)
        delete s->ds;
    for (auto& s : dying_)
        delete s->ds;
}

unsigned session_manager::pick_owner() const
{
    unsigned best = 0;
    for (unsigned w = 1; w < sessions_per_worker_.size(); w++)
        if (sessions_per_worker_[w] < sessions_per_worker_[best])
            best = w;
    return best;
}

void session_manager::release(dp::session* ds)
{
    for (unsigned i = 0; i < ds->nlegs; i++)
        pools_[ds->legs[i].iface]->release(rte_be_to_cpu_16(ds->legs[i].local_port_be));
    legs_ -= ds->nlegs;
    sessions_per_worker_[ds->owner]--;
    delete ds;
}

error session_manager::send(std::unique_ptr<dp::flow_cmd> c, session_info* s, done_fn done)
{
    c->seq = ++seq_;
    int rc = dp_.submit(c.get());
    if (rc != 0)
        return {"busy", "worker " + std::to_string(c->sess->owner) +
                                " command queue is full; retry shortly"};
    uint64_t seq = c->seq;
    pending_.emplace(seq, pending_op{std::move(c), s, std::move(done)});
    return {};
}

error session_manager::create(const create_request& req, done_fn done)
{
    // ---- validate everything before changing anything -------------------
    if (!valid_name(req.id))
        return {"invalid", "session: must be 1-64 characters of A-Z a-z 0-9 . _ : @ -"};
    if (sessions_.count(req.id))
        return {"exists", "session: \"" + req.id + "\" already exists"};
    if (req.legs.size() < 2 || req.legs.size() > dp::max_legs_per_session)
        return {"invalid", "legs: a session has 2 to " +
                                   std::to_string(dp::max_legs_per_session) + " legs"};
    std::map<std::string, unsigned> index;
    for (unsigned i = 0; i < req.legs.size(); i++) {
        const auto& l = req.legs[i];
        const std::string where = "legs[" + std::to_string(i) + "]";
        if (!valid_name(l.name))
            return {"invalid", where + ".name: must be 1-64 characters of A-Z a-z 0-9 . _ : @ -"};
        if (!index.emplace(l.name, i).second)
            return {"invalid", where + ".name: \"" + l.name + "\" is used twice"};
        if (l.iface >= dp_.nifaces())
            return {"invalid", where + ".interface: no interface " + std::to_string(l.iface)};
    }
    std::vector<std::vector<uint8_t>> targets(req.legs.size());
    for (unsigned i = 0; i < req.legs.size(); i++) {
        const auto& l = req.legs[i];
        if (!l.targets) {
            for (unsigned j = 0; j < req.legs.size(); j++)
                if (j != i)
                    targets[i].push_back(static_cast<uint8_t>(j));
            continue;
        }
        std::set<unsigned> seen;
        for (const auto& t : *l.targets) {
            auto it = index.find(t);
            const std::string where = "legs[" + std::to_string(i) + "].targets";
            if (it == index.end())
                return {"invalid", where + ": no leg named \"" + t + "\""};
            if (it->second == i)
                return {"invalid", where + ": a leg cannot target itself"};
            if (seen.insert(it->second).second)
                targets[i].push_back(static_cast<uint8_t>(it->second));
        }
    }
    const unsigned owner = pick_owner();
    std::vector<unsigned> need(dp_.nifaces(), 0);
    for (const auto& l : req.legs)
        need[l.iface]++;
    for (unsigned f = 0; f < need.size(); f++)
        if (pools_[f]->free_count(owner) < need[f])
            return {"exhausted", "no free relay port on interface " + std::to_string(f) +
                                         " (pool " + std::to_string(cfg_.port_min) + "-" +
                                         std::to_string(cfg_.port_max) + ")"};

    // ---- build ------------------------------------------------------------
    auto* ds = new dp::session();
    ds->owner = owner;
    ds->nlegs = static_cast<uint32_t>(req.legs.size());
    auto info = std::make_unique<session_info>();
    info->id = req.id;
    info->ds = ds;
    info->created_tsc = rte_rdtsc();
    for (unsigned i = 0; i < req.legs.size(); i++) {
        const auto& r = req.legs[i];
        dp::leg& l = ds->legs[i];
        const dp::iface& f = dp_.ifc(r.iface);
        l.sess = ds;
        l.index = static_cast<uint8_t>(i);
        l.iface = static_cast<uint16_t>(r.iface);
        l.port_id = f.port_id;
        l.local_ip_be = f.ip_be;
        l.local_port_be = rte_cpu_to_be_16(*pools_[r.iface]->alloc(owner));
        l.ntargets = static_cast<uint8_t>(targets[i].size());
        std::copy(targets[i].begin(), targets[i].end(), l.targets);
        if (r.remote)
            l.remote.store(dp::pack_ep(rte_cpu_to_be_32(r.remote->ip),
                                       rte_cpu_to_be_16(r.remote->port)));
        info->leg_names.push_back(r.name);
        info->remote_configured.push_back(r.remote.has_value());
    }
    sessions_per_worker_[owner]++;
    legs_ += ds->nlegs;

    auto c = std::make_unique<dp::flow_cmd>();
    c->op = dp::cmd_op::add_session;
    c->sess = ds;
    session_info* raw = info.get();
    error e = send(std::move(c), raw, std::move(done));
    if (e) {
        release(ds);
        return e;
    }
    sessions_.emplace(req.id, std::move(info));
    return {};
}

error session_manager::remove(const std::string& id, done_fn done)
{
    auto it = sessions_.find(id);
    if (it == sessions_.end())
        return {"not_found", "session: no session \"" + id + "\""};
    auto c = std::make_unique<dp::flow_cmd>();
    c->op = dp::cmd_op::del_session;
    c->sess = it->second->ds;
    session_info* raw = it->second.get();
    error e = send(std::move(c), raw, std::move(done));
    if (e)
        return e;
    raw->state = session_state::deleting;
    dying_.push_back(std::move(it->second));
    sessions_.erase(it);
    return {};
}

error session_manager::set_remote(const std::string& id, const std::string& leg,
                                  const std::optional<endpoint>& remote, done_fn done)
{
    auto it = sessions_.find(id);
    if (it == sessions_.end())
        return {"not_found", "session: no session \"" + id + "\""};
    session_info& s = *it->second;
    auto li = std::find(s.leg_names.begin(), s.leg_names.end(), leg);
    if (li == s.leg_names.end())
        return {"not_found", "leg: session \"" + id + "\" has no leg \"" + leg + "\""};
    const auto idx = static_cast<uint8_t>(li - s.leg_names.begin());
    auto c = std::make_unique<dp::flow_cmd>();
    c->op = dp::cmd_op::set_remote;
    c->sess = s.ds;
    c->leg_index = idx;
    c->remote = remote ? dp::pack_ep(rte_cpu_to_be_32(remote->ip), rte_cpu_to_be_16(remote->port))
                       : 0;
    error e = send(std::move(c), &s, std::move(done));
    if (!e)
        s.remote_configured[idx] = remote.has_value();
    return e;
}

const session_info* session_manager::find(const std::string& id) const
{
    auto it = sessions_.find(id);
    return it == sessions_.end() ? nullptr : it->second.get();
}

unsigned session_manager::poll()
{
    dp::flow_cmd* done[64];
    unsigned total = 0, n;
    while ((n = dp_.poll_done(done, 64)) > 0) {
        for (unsigned i = 0; i < n; i++) {
            auto it = pending_.find(done[i]->seq);
            if (it == pending_.end())
                continue; // cannot happen: every command is registered
            pending_op op = std::move(it->second);
            pending_.erase(it);
            error e;
            session_info* s = op.s;
            switch (op.cmd->op) {
            case dp::cmd_op::add_session:
                if (op.cmd->status == 0) {
                    if (s->state == session_state::installing)
                        s->state = session_state::active;
                    else // removed before the worker installed it
                        e = {"not_found", "session: \"" + s->id +
                                                  "\" was deleted before it was installed"};
                    stats_.created++;
                } else {
                    stats_.failed++;
                    e = {"exhausted", op.cmd->status == -ENOSPC
                                              ? "worker flow table is full (relay.max_legs)"
                                              : "worker refused the session: port in use"};
                    if (s->state == session_state::installing) {
                        release(s->ds);
                        s->ds = nullptr;
                        const std::string id = s->id;
                        sessions_.erase(id); // frees s
                        s = nullptr;
                    }
                }
                break;
            case dp::cmd_op::del_session: {
                stats_.deleted++;
                auto d = std::find_if(dying_.begin(), dying_.end(),
                                      [&](auto& p) { return p.get() == s; });
                if (s->ds)
                    release(s->ds);
                if (d != dying_.end())
                    dying_.erase(d);
                break;
            }
            case dp::cmd_op::set_remote:
                if (op.cmd->status != 0)
                    e = {"internal", "worker rejected the update"};
                else if (s->state == session_state::deleting)
                    e = {"not_found", "session: \"" + s->id + "\" was deleted meanwhile"};
                break;
            }
            if (op.done)
                op.done(e);
            total++;
        }
    }
    return total;
}

double session_manager::idle_seconds(const session_info& s, uint64_t now_tsc) const
{
    uint64_t last = s.created_tsc;
    if (s.ds)
        for (unsigned i = 0; i < s.ds->nlegs; i++)
            last = std::max<uint64_t>(last, dp::read(s.ds->legs[i].stats.last_seen_tsc));
    return now_tsc > last ? static_cast<double>(now_tsc - last) / rte_get_tsc_hz() : 0.0;
}

unsigned session_manager::expire_idle(uint64_t now_tsc)
{
    std::vector<std::string> idle;
    for (auto& [id, s] : sessions_)
        if (s->state == session_state::active && idle_seconds(*s, now_tsc) > cfg_.idle_timeout_s)
            idle.push_back(id);
    unsigned n = 0;
    for (auto& id : idle) {
        if (!remove(id, nullptr)) {
            stats_.expired++;
            n++;
        }
    }
    return n;
}

} // namespace isar::ctl
