#include "control/session_manager.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
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

namespace {
// SSRC slots of a conference target's outbound context, and how many of them
// one sending leg may hold (README "Sessions": SSRC limits).
constexpr uint32_t max_ssrcs_conference = 512;
constexpr uint32_t ssrc_quota_per_source = 16;

bool same_keys(const crypto::key_material& a, const crypto::key_material& b)
{
    if (a.s != b.s)
        return false;
    if (a.s == crypto::suite::none)
        return true;
    uint8_t diff = 0; // no early exit on key bytes
    for (size_t i = 0; i < a.key_len(); i++)
        diff |= a.key[i] ^ b.key[i];
    for (size_t i = 0; i < a.salt_len(); i++)
        diff |= a.salt[i] ^ b.salt[i];
    return diff == 0;
}

// Builds a context for `km` (nullptr for plain). On failure sets err (which
// names `field` and never contains key bytes) and returns false.
bool make_ctx(const crypto::key_material& km, const std::string& field,
              std::unique_ptr<crypto::srtp_context>& out, error& e, uint32_t ssrc_slots = 0)
{
    out.reset();
    if (km.s == crypto::suite::none)
        return true;
    std::string err;
    out = crypto::srtp_context::create(km, crypto::engine::auto_select, err);
    if (!out) {
        e = {"invalid", field + ": " + err};
        return false;
    }
    if (ssrc_slots > crypto::max_ssrcs && !out->reserve_ssrcs(ssrc_slots, ssrc_quota_per_source)) {
        e = {"exhausted", field + ": cannot reserve " + std::to_string(ssrc_slots) + " SSRC slots"};
        out.reset();
        return false;
    }
    return true;
}

// Slots sending to a conference target needs: every other leg may send
// audio, video, their retransmissions (4 each), at least max_ssrcs_conference.
uint32_t out_ssrc_slots(size_t nlegs)
{
    if (nlegs <= 2)
        return 0; // a call: the inline table
    return static_cast<uint32_t>(std::clamp<size_t>(4 * (nlegs - 1), max_ssrcs_conference,
                                                    crypto::max_reserved_ssrcs));
}
} // namespace

dp::leg_bits passthrough_mask(const dp::session& ds,
                              const std::vector<const crypto::key_material*>& in,
                              const std::vector<const crypto::key_material*>& out)
{
    dp::leg_bits mask;
    for (unsigned i = 0; i < ds.nlegs; i++) {
        const dp::leg& l = ds.legs[i];
        if (in[i]->s == crypto::suite::none || l.ntargets == 0)
            continue;
        bool all = true;
        for (unsigned t = 0; t < l.ntargets && all; t++)
            all = same_keys(*in[i], *out[l.target(t)]);
        if (all)
            mask.set(i);
    }
    return mask;
}

dp::ip6_addr to_dp6(const ip6_bytes& b)
{
    dp::ip6_addr a{};
    std::memcpy(a.b, b.data(), 16);
    return a;
}

ip6_bytes from_dp6(const dp::ip6_addr& a)
{
    ip6_bytes b;
    std::memcpy(b.data(), a.b, 16);
    return b;
}

dp::packed_ep pack_remote(const endpoint& e)
{
    const uint16_t port_be = rte_cpu_to_be_16(e.port);
    return e.is_v6() ? dp::pack_ep6(to_dp6(e.ip6), port_be)
                     : dp::pack_ep(rte_cpu_to_be_32(e.ip), port_be);
}

std::optional<endpoint> leg_remote(const dp::leg& l)
{
    // The worker writes remote6 before it publishes remote (release): read
    // remote, the address, remote again, until they agree (a latch racing
    // with this read); display only.
    for (int tries = 0; tries < 8; tries++) {
        const dp::packed_ep r = l.remote.load(std::memory_order_acquire);
        if (r == 0)
            return std::nullopt;
        if (!dp::ep_is_v6(r))
            return endpoint{rte_be_to_cpu_32(dp::ep_ip(r)), rte_be_to_cpu_16(dp::ep_port(r))};
        dp::ip6_addr a;
        std::memcpy(a.b, l.remote6.b, 16);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (l.remote.load(std::memory_order_relaxed) == r)
            return endpoint{0, rte_be_to_cpu_16(dp::ep_port(r)), 6, from_dp6(a)};
    }
    return std::nullopt;
}

uint32_t rate_limit_burst(uint32_t max_pps)
{
    return std::max<uint32_t>(16, max_pps / 10);
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
    for (unsigned i = 0; i < dp.nladdrs(); i++)
        pools_.push_back(
                std::make_unique<port_pool>(cfg.port_min, cfg.port_max, dp.nworkers(), true,
                                            dp.owner_map(i)));
}

ip_addr session_manager::address_of(unsigned laddr) const
{
    const dp::local_addr& a = dp_.laddr(laddr);
    return a.family == 6 ? ip_addr::from_v6(from_dp6(a.ip6))
                         : ip_addr::from_v4(rte_be_to_cpu_32(a.ip4_be));
}

ip_addr session_manager::public_of(unsigned laddr) const
{
    const dp::local_addr& a = dp_.laddr(laddr);
    if (a.iface < cfg_.interfaces.size())
        for (const ip_addr& p : cfg_.interfaces[a.iface].public_addrs)
            if (p.family == a.family)
                return p;
    return address_of(laddr);
}

std::optional<unsigned> session_manager::slot_for(unsigned iface, uint8_t family,
                                                  unsigned owner) const
{
    std::vector<unsigned> slots;
    if (!assign_slots(owner, {{iface, family}}, slots))
        return std::nullopt;
    return slots[0];
}

bool session_manager::assign_slots(unsigned w, const std::vector<std::pair<unsigned, uint8_t>>& want,
                                   std::vector<unsigned>& slots) const
{
    slots.assign(want.size(), 0);
    std::vector<size_t> taken(pools_.size(), 0);
    for (size_t i = 0; i < want.size(); i++) {
        const dp::iface& f = dp_.ifc(want[i].first);
        std::optional<unsigned> best;
        size_t best_free = 0;
        for (unsigned s = f.laddr_first; s < f.laddr_first + f.nladdr; s++) {
            if (dp_.laddr(s).family != want[i].second)
                continue;
            const size_t fr = pools_[s]->free_count(w) - std::min(taken[s],
                                                                  pools_[s]->free_count(w));
            if (fr > best_free) {
                best = s;
                best_free = fr;
            }
        }
        if (!best)
            return false;
        slots[i] = *best;
        taken[*best]++;
    }
    return true;
}

session_manager::~session_manager()
{
    // The dataplane is stopped before this runs: nothing reads the sessions.
    for (auto& [id, s] : sessions_)
        delete s->ds;
    for (auto& s : dying_)
        delete s->ds;
}

std::optional<unsigned>
session_manager::pick_owner(const std::vector<std::pair<unsigned, uint8_t>>& want,
                            std::vector<unsigned>& slots) const
{
    // Least loaded first, but any worker with the ports: a session is
    // refused only when no worker's share of the pool can take it.
    std::vector<unsigned> order(sessions_per_worker_.size());
    for (unsigned w = 0; w < order.size(); w++)
        order[w] = w;
    std::stable_sort(order.begin(), order.end(), [&](unsigned a, unsigned b) {
        return sessions_per_worker_[a] < sessions_per_worker_[b];
    });
    for (unsigned w : order)
        if (assign_slots(w, want, slots))
            return w;
    return std::nullopt;
}

void session_manager::release(dp::session* ds)
{
    for (unsigned i = 0; i < ds->nlegs; i++)
        pools_[ds->legs[i].laddr]->release(rte_be_to_cpu_16(ds->legs[i].local_port_be));
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

// Leg i's targets: a mask (and the inline list) in a session of up to
// max_mask_legs legs, else a list in the session's target_lists.
static void set_targets(dp::session& ds, unsigned i, const std::vector<uint8_t>& targets)
{
    dp::leg& l = ds.legs[i];
    l.ntargets = static_cast<uint8_t>(targets.size());
    if (ds.nlegs <= dp::max_mask_legs) {
        std::copy(targets.begin(), targets.end(), l.targets);
        for (auto t : targets)
            l.target_mask = static_cast<uint16_t>(l.target_mask | (1u << t));
        return;
    }
    if (!ds.target_lists)
        ds.target_lists = std::make_unique<uint8_t[]>(size_t{ds.nlegs} * (ds.nlegs - 1));
    uint8_t* list = &ds.target_lists[size_t{i} * (ds.nlegs - 1)];
    std::copy(targets.begin(), targets.end(), list);
    l.target_list = list;
}

namespace {
// Each leg's targets by index (every other leg unless it names them).
error resolve_targets(const create_request& req, const std::map<std::string, unsigned>& index,
                      std::vector<std::vector<uint8_t>>& targets)
{
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
    return {};
}

// The legs' SRTP contexts (key derivation happens here, on the control thread).
error make_leg_crypto(const create_request& req, std::vector<leg_crypto>& crypto)
{
    for (unsigned i = 0; i < req.legs.size(); i++) {
        const std::string where = "legs[" + std::to_string(i) + "]";
        error ce;
        if (!make_ctx(req.legs[i].in, where + ".in", crypto[i].in_ctx, ce) ||
            !make_ctx(req.legs[i].out, where + ".out", crypto[i].out_ctx, ce,
                      out_ssrc_slots(req.legs.size())))
            return ce;
        crypto[i].in_key = req.legs[i].in;
        crypto[i].out_key = req.legs[i].out;
    }

    return {};
}

} // namespace

// Every leg's name unique and valid, every interface there: `index` maps
// names to legs.
error session_manager::check_leg_names(const create_request& req,
                                       std::map<std::string, unsigned>& index) const
{
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
    return {};
}

// Each leg's (interface, family), checked against the interface's addresses.
error session_manager::check_leg_families(const create_request& req, std::vector<std::pair<unsigned, uint8_t>>& want) const
{
    for (unsigned i = 0; i < req.legs.size(); i++) {
        const auto& l = req.legs[i];
        const std::string where = "legs[" + std::to_string(i) + "]";
        const uint8_t fam = l.family ? l.family : l.remote ? l.remote->family : 4;
        if (fam != 4 && fam != 6)
            return {"invalid", where + ".family: must be 4 or 6"};
        if (l.remote && l.remote->family != fam)
            return {"invalid", where + ".family: is " + std::to_string(fam) +
                                       " but the remote is an IPv" +
                                       std::to_string(l.remote->family) + " address"};
        const dp::iface& f = dp_.ifc(l.iface);
        bool has = false;
        for (unsigned s = f.laddr_first; s < f.laddr_first + f.nladdr && !has; s++)
            has = dp_.laddr(s).family == fam;
        if (!has)
            return {"invalid", where + (l.family || !l.remote ? ".family" : ".remote") +
                                       ": interface " + std::to_string(l.iface) + " has no IPv" +
                                       std::to_string(fam) + " address"};
        if (fam == 6 && l.latch_from.len != 0)
            return {"invalid", where + ".latch_from: an IPv4 network, but the leg is IPv6"};
        want.emplace_back(l.iface, fam);
    }
    return {};
}

// Leg i of `ds` as request leg `r` says, on address slot `slot` of worker
// `owner` (its relay port taken from that slot's pool).
void session_manager::fill_leg(dp::session& ds, unsigned i, const leg_request& r, unsigned slot,
                               uint8_t family, unsigned owner, const std::vector<uint8_t>& targets,
                               const leg_crypto& c, session_info& info)
{
    dp::leg& l = ds.legs[i];
    const dp::iface& f = dp_.ifc(r.iface);
    l.sess = &ds;
    l.peers = ds.legs.get();
    l.index = static_cast<uint8_t>(i);
    l.iface = static_cast<uint16_t>(r.iface);
    l.port_id = f.port_id;
    l.laddr = static_cast<uint16_t>(slot);
    l.family = family;
    l.local_port_be = rte_cpu_to_be_16(*pools_[slot]->alloc(owner));
    set_targets(ds, i, targets);
    if (r.remote) {
        if (r.remote->is_v6())
            l.remote6 = to_dp6(r.remote->ip6); // before remote (not yet published here)
        l.remote.store(pack_remote(*r.remote));
        resolve(r.iface, *r.remote); // ARP now, not on packet 1
    } else {
        l.latch_deadline_tsc = latch_deadline();
    }
    if (r.latch_from.len != 0) {
        const uint32_t mask = ~0u << (32 - r.latch_from.len);
        l.latch_net_be = rte_cpu_to_be_32(r.latch_from.ip & mask);
        l.latch_mask_be = rte_cpu_to_be_32(mask);
    }
    l.in_ctx = c.in_ctx.get();
    l.out_ctx = c.out_ctx.get();
    l.clock_rate = r.clock_rate;
    const uint64_t hz = rte_get_tsc_hz();
    l.rtp_mult = dp::rtp_mult(r.clock_rate, hz);
    if (r.max_pps != 0) {
        l.rl_interval_tsc = std::max<uint64_t>(1, hz / r.max_pps);
        l.rl_burst_tsc = l.rl_interval_tsc * (rate_limit_burst(r.max_pps) - 1);
    }
    info.max_pps.push_back(r.max_pps);
    info.leg_names.push_back(r.name);
    info.remote_configured.push_back(r.remote.has_value());
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
    if (error e = check_leg_names(req, index))
        return e;
    std::vector<std::pair<unsigned, uint8_t>> want; // (interface, family) per leg
    if (error e = check_leg_families(req, want))
        return e;
    std::vector<std::vector<uint8_t>> targets(req.legs.size());
    if (error e = resolve_targets(req, index, targets))
        return e;
    std::vector<unsigned> slots;
    const std::optional<unsigned> picked = pick_owner(want, slots);
    if (!picked) {
        std::map<std::pair<unsigned, uint8_t>, unsigned> need;
        for (const auto& w : want)
            need[w]++;
        const auto& [k, n] = *need.begin();
        return {"exhausted", "no worker has " + std::to_string(n) + " free relay ports on " +
                                     "interface " + std::to_string(k.first) + "'s IPv" +
                                     std::to_string(k.second) + " addresses (pool " +
                                     std::to_string(cfg_.port_min) + "-" +
                                     std::to_string(cfg_.port_max) + " per address)"};
    }
    const unsigned owner = *picked;

    std::vector<leg_crypto> crypto(req.legs.size());
    if (error e = make_leg_crypto(req, crypto))
        return e;

    // ---- build ------------------------------------------------------------
    // On the socket of the worker that will touch them.
    auto* ds = new dp::session(static_cast<uint32_t>(req.legs.size()), dp_.worker_socket(owner));
    ds->owner = owner;
    auto info = std::make_unique<session_info>();
    info->id = req.id;
    info->ds = ds;
    info->created_tsc = rte_rdtsc();
    info->metrics = req.metrics;
    for (unsigned i = 0; i < req.legs.size(); i++)
        fill_leg(*ds, i, req.legs[i], slots[i], want[i].second, owner, targets[i], crypto[i],
                 *info);
    {
        std::vector<const crypto::key_material*> in, out;
        for (auto& c : crypto) {
            in.push_back(&c.in_key);
            out.push_back(&c.out_key);
        }
        const dp::leg_bits mask = passthrough_mask(*ds, in, out);
        for (unsigned i = 0; i < ds->nlegs; i++)
            ds->legs[i].verify_only = mask.test(i);
    }
    info->crypto = std::move(crypto);
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
    if (error fe = family_check(s.ds->legs[idx], remote))
        return fe;
    auto c = std::make_unique<dp::flow_cmd>();
    c->op = dp::cmd_op::set_remote;
    c->sess = s.ds;
    c->leg_index = idx;
    c->remote = remote ? pack_remote(*remote) : 0;
    if (remote && remote->is_v6())
        c->remote6 = to_dp6(remote->ip6);
    c->latch_deadline_tsc = latch_deadline(); // a cleared remote latches within the window
    error e = send(std::move(c), &s, std::move(done));
    if (!e)
        s.remote_configured[idx] = remote.has_value();
    if (!e && remote)
        resolve(s.ds->legs[idx].iface, *remote);
    return e;
}

error session_manager::update_leg(const std::string& id, const std::string& leg, leg_update upd,
                                  done_fn done)
{
    auto it = sessions_.find(id);
    if (it == sessions_.end())
        return {"not_found", "session: no session \"" + id + "\""};
    session_info& s = *it->second;
    auto li = std::find(s.leg_names.begin(), s.leg_names.end(), leg);
    if (li == s.leg_names.end())
        return {"not_found", "leg: session \"" + id + "\" has no leg \"" + leg + "\""};
    if (!upd.remote && !upd.in && !upd.out)
        return {"invalid", "leg.update: nothing to change (remote, in, out)"};
    const auto idx = static_cast<uint8_t>(li - s.leg_names.begin());
    if (upd.remote)
        if (error fe = family_check(s.ds->legs[idx], *upd.remote))
            return fe;
    if (!upd.in && !upd.out)
        return set_remote(id, leg, *upd.remote, std::move(done));

    auto c = std::make_unique<dp::flow_cmd>();
    std::unique_ptr<crypto::srtp_context> new_in, new_out;
    error ce;
    if (upd.in && !make_ctx(*upd.in, "in", new_in, ce))
        return ce;
    if (upd.out && !make_ctx(*upd.out, "out", new_out, ce, out_ssrc_slots(s.ds->nlegs)))
        return ce;
    // Pass-through flags of every leg with the new keys in place - after the
    // updates still queued for this session, which the worker applies first:
    // the committed keys alone would let a flag computed here leave a leg
    // passing packets through under a key another update is replacing.
    std::vector<const crypto::key_material*> in, out;
    queued_keys(s, in, out);
    if (upd.in)
        in[idx] = &*upd.in;
    if (upd.out)
        out[idx] = &*upd.out;
    c->op = dp::cmd_op::set_crypto;
    c->sess = s.ds;
    c->leg_index = idx;
    c->verify_mask = passthrough_mask(*s.ds, in, out);
    if (upd.in) {
        c->flags |= dp::crypto_set_in;
        c->in_ctx = new_in.get();
    }
    if (upd.out) {
        c->flags |= dp::crypto_set_out;
        c->out_ctx = new_out.get();
    }
    if (upd.remote) {
        c->flags |= dp::crypto_set_remote;
        c->remote = *upd.remote ? pack_remote(**upd.remote) : 0;
        if (*upd.remote && (*upd.remote)->is_v6())
            c->remote6 = to_dp6((*upd.remote)->ip6);
        c->latch_deadline_tsc = latch_deadline();
    }
    c->seq = ++seq_;
    if (dp_.submit(c.get()) != 0)
        return {"busy", "worker " + std::to_string(s.ds->owner) +
                                " command queue is full; retry shortly"};
    pending_op op{std::move(c), &s, std::move(done)};
    op.new_in = std::move(new_in);
    op.new_out = std::move(new_out);
    if (upd.in)
        op.new_in_key = std::move(*upd.in);
    if (upd.out)
        op.new_out_key = std::move(*upd.out);
    if (upd.remote)
        op.remote_configured = upd.remote->has_value();
    if (upd.remote && *upd.remote)
        resolve(s.ds->legs[idx].iface, **upd.remote);
    const uint64_t seq = op.cmd->seq;
    pending_.emplace(seq, std::move(op));
    return {};
}

error session_manager::family_check(const dp::leg& l, const std::optional<endpoint>& remote)
{
    if (remote && remote->family != l.family)
        return {"invalid", "remote: the leg is IPv" + std::to_string(l.family) +
                                   ", the remote IPv" + std::to_string(remote->family) +
                                   " (a leg keeps its family; create a leg of the other one)"};
    return {};
}

void session_manager::resolve(unsigned iface, const endpoint& remote)
{
    // The dataplane resolves IPv4 next hops on request; an IPv6 one is
    // resolved (ND) when the first packet to it is held.
    if (!remote.is_v6())
        dp_.request_resolve(iface, rte_cpu_to_be_32(remote.ip));
}

void session_manager::queued_keys(const session_info& s,
                                  std::vector<const crypto::key_material*>& in,
                                  std::vector<const crypto::key_material*>& out) const
{
    in.clear();
    out.clear();
    for (const auto& c : s.crypto) {
        in.push_back(&c.in_key);
        out.push_back(&c.out_key);
    }
    std::vector<const pending_op*> q; // this session's key changes, in queue order
    for (const auto& [seq, op] : pending_)
        if (op.s == &s && op.cmd->op == dp::cmd_op::set_crypto)
            q.push_back(&op);
    std::sort(q.begin(), q.end(), [](auto* a, auto* b) { return a->cmd->seq < b->cmd->seq; });
    for (const pending_op* op : q) {
        if (op->cmd->flags & dp::crypto_set_in)
            in[op->cmd->leg_index] = &op->new_in_key;
        if (op->cmd->flags & dp::crypto_set_out)
            out[op->cmd->leg_index] = &op->new_out_key;
    }
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
            if (done[i]->alloc != nullptr) {
                if (on_other_ack)
                    on_other_ack(done[i]);
                continue;
            }
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
            case dp::cmd_op::set_crypto: {
                if (op.cmd->status != 0) {
                    e = {"internal", "worker rejected the update"};
                    break; // nothing swapped: op's new contexts are freed below
                }
                // The worker now uses the new contexts and handed back the old
                // ones (op.cmd->in_ctx/out_ctx): make the new ones current,
                // which frees the old ones.
                leg_crypto& lc = s->crypto[op.cmd->leg_index];
                if (op.cmd->flags & dp::crypto_set_in) {
                    lc.in_ctx = std::move(op.new_in);
                    lc.in_key = std::move(op.new_in_key);
                }
                if (op.cmd->flags & dp::crypto_set_out) {
                    lc.out_ctx = std::move(op.new_out);
                    lc.out_key = std::move(op.new_out_key);
                }
                if (op.remote_configured)
                    s->remote_configured[op.cmd->leg_index] = *op.remote_configured;
                break;
            }
            default: // TURN's: routed to on_other_ack above
                break;
            }
            if (op.done)
                op.done(e);
            total++;
        }
    }
    return total;
}

uint64_t session_manager::latch_deadline() const
{
    return cfg_.latch_window_s == 0 ? 0 : rte_rdtsc() + cfg_.latch_window_s * rte_get_tsc_hz();
}

double session_manager::idle_seconds(const session_info& s, uint64_t now_tsc) const
{
    uint64_t last = s.created_tsc;
    if (s.ds)
        for (unsigned i = 0; i < s.ds->nlegs; i++)
            last = std::max<uint64_t>(last, dp::read(s.ds->legs[i].last_seen_tsc));
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
