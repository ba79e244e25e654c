// Allocations on the control side: their dataplane state, commands to the
// owning worker and their acknowledgements, expiry, secrets.
#include "control/turn_manager.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

#include <openssl/mem.h>
#include <openssl/rand.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_malloc.h>

#include "control/addr.h"
#include "control/log.h"
#include "control/session_manager.h"
#include "control/stream_hub.h"
#include "control/turn_request.h"

namespace isar::ctl {

turn_secrets::~turn_secrets()
{
    for (auto& s : list)
        OPENSSL_cleanse(s.data(), s.size());
}

bool load_turn_secrets(const std::string& path, turn_secrets& out, std::string& err)
{
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
        err = path + ": " + strerror(errno);
        return false;
    }
    // Others may not read or write it, the group may at most read it (a
    // root:isar 0640 file for a service user is fine).
    if ((st.st_mode & (S_IRWXO | S_IWGRP | S_IXGRP)) != 0) {
        err = path + ": others may read or write it (mode " +
              std::to_string((st.st_mode >> 6) & 7) + std::to_string((st.st_mode >> 3) & 7) +
              std::to_string(st.st_mode & 7) + "); chmod 600 (or 640) it";
        return false;
    }
    std::ifstream f(path);
    if (!f) {
        err = path + ": cannot open";
        return false;
    }
    std::string line;
    while (std::getline(f, line)) {
        size_t a = line.find_first_not_of(" \t\r");
        size_t b = line.find_last_not_of(" \t\r");
        if (a != std::string::npos && line[a] != '#')
            out.list.push_back(line.substr(a, b - a + 1));
        OPENSSL_cleanse(line.data(), line.size());
    }
    if (out.list.empty()) {
        err = path + ": no secret in it (one per line)";
        return false;
    }
    return true;
}

turn_allocation::~turn_allocation()
{
    OPENSSL_cleanse(key, sizeof(key));
    if (da != nullptr)
        rte_free(da);
}

turn_manager::turn_manager(dp::dataplane& dp, const config& cfg, session_manager& sm)
    : dp_(dp), cfg_(cfg), sm_(sm)
{
}

turn_manager::~turn_manager()
{
    OPENSSL_cleanse(nonce_key_, sizeof(nonce_key_));
    // Commands still in flight reference allocations: only free what no
    // worker can reach (the dataplane is stopped before this runs).
}

int turn_manager::init(std::string& err)
{
    if (!enabled())
        return 0;
    if (!load_turn_secrets(cfg_.turn.auth_secret_file, secrets_, err))
        return -EINVAL;
    for (const auto& c : cfg_.turn.allowed_peer)
        policy_.allow(*turn::parse_cidr(c));
    for (const auto& c : cfg_.turn.denied_peer)
        policy_.deny(*turn::parse_cidr(c));
    if (RAND_bytes(nonce_key_, sizeof(nonce_key_)) != 1) {
        err = "cannot draw the nonce key (RAND_bytes)";
        return -EIO;
    }
    return 0;
}

// The client's 5-tuple (or its connection), as bytes: exact for both
// families (an IPv6 address is not folded).
std::string turn_manager::client_key(const stun_origin& o) const
{
    std::string k;
    if (o.stream != 0) { // one allocation per connection
        k.assign("s");
        k.append(reinterpret_cast<const char*>(&o.stream), sizeof(o.stream));
        return k;
    }
    k.assign(o.family == 6 ? "6" : "4");
    const uint16_t ifc = static_cast<uint16_t>(o.iface);
    k.append(reinterpret_cast<const char*>(&ifc), 2);
    k.append(reinterpret_cast<const char*>(&o.local_port_be), 2);
    k.append(reinterpret_cast<const char*>(&o.client_port_be), 2);
    if (o.family == 6)
        k.append(reinterpret_cast<const char*>(o.client6.b), 16);
    else
        k.append(reinterpret_cast<const char*>(&o.client_ip_be), 4);
    return k;
}

turn_allocation* turn_manager::by_client(const stun_origin& o)
{
    auto it = by_client_.find(client_key(o));
    if (it == by_client_.end())
        return nullptr;
    auto a = allocs_.find(it->second);
    return a == allocs_.end() ? nullptr : a->second.get();
}

const turn_allocation* turn_manager::find(uint32_t id) const
{
    auto it = allocs_.find(id);
    return it == allocs_.end() ? nullptr : it->second.get();
}

double turn_manager::seconds_left(const turn_allocation& a, uint64_t now) const
{
    return a.expiry_tsc > now ? static_cast<double>(a.expiry_tsc - now) / rte_get_tsc_hz() : 0.0;
}

std::string turn_manager::relayed_text(const turn_allocation& a, bool second) const
{
    const unsigned slot = second ? a.relay2_laddr : a.relay_laddr;
    if (slot >= dp_.nladdrs())
        return "?";
    const dp::local_addr& l = dp_.laddr(slot);
    endpoint e;
    e.family = l.family;
    e.port = second ? a.relay2_port : a.relay_port;
    if (l.family == 6)
        std::memcpy(e.ip6.data(), l.ip6.b, 16);
    else
        e.ip = rte_be_to_cpu_32(l.ip4_be);
    return format_endpoint(e);
}

size_t turn_manager::permission_count() const
{
    size_t n = 0;
    for (auto& [id, a] : allocs_)
        n += a->perms.size();
    return n;
}

size_t turn_manager::channel_count() const
{
    size_t n = 0;
    for (auto& [id, a] : allocs_)
        n += a->chans.size();
    return n;
}

unsigned turn_manager::poll(unsigned budget)
{
    rte_mbuf* pkts[32];
    unsigned total = 0;
    while (total < budget) {
        const unsigned n = dp_.poll_turn(pkts, std::min(32u, budget - total));
        if (n == 0)
            break;
        for (unsigned i = 0; i < n; i++)
            handle(pkts[i]);
        total += n;
    }
    if (out_.hub != nullptr) {
        std::vector<stream_event> events;
        out_.hub->take_events(events);
        for (auto& e : events)
            handle(e);
        total += static_cast<unsigned>(events.size());
    }
    return total;
}

void turn_manager::handle(stream_event& e)
{
    if (e.kind == stream_event::closed) {
        stun_origin o;
        o.stream = e.token;
        if (turn_allocation* a = by_client(o))
            end(*a, e.why.empty() ? "connection closed" : e.why.c_str(), nullptr, true);
        return;
    }
    stats_.requests++;
    request r;
    stun_origin& o = r.reply.to;
    o.stream = e.token;
    o.tls = e.tls;
    o.client_ip_be = e.client_ip_be;
    o.client_port_be = e.client_port_be;
    o.local_ip_be = e.local_ip_be;
    o.local_port_be = e.local_port_be;
    // The relayed address is on the interface the client connected to (the
    // kernel interface carries its address), else on the first one.
    for (unsigned i = 0; i < dp_.nifaces(); i++)
        if (dp_.ifc(i).is_local4(e.local_ip_be))
            o.iface = i;
    if (!enabled() || turn::parse(e.msg.data(), e.msg.size(), r.msg) != turn::parse_status::ok) {
        stats_.bad_requests++;
        return;
    }
    handle_request(r);
}

void turn_manager::handle(rte_mbuf* m)
{
    stats_.requests++;
    request r;
    const uint8_t* p = nullptr;
    size_t len = 0;
    if (!enabled() || !stun_payload(m, dp_, r.reply.to, p, len) ||
        turn::parse(p, len, r.msg) != turn::parse_status::ok) {
        stats_.bad_requests++;
        rte_pktmbuf_free(m);
        return;
    }
    handle_request(r);
    rte_pktmbuf_free(m); // r.msg pointed into it
}

void turn_manager::handle_request(request& r)
{
    r.now_tsc = rte_rdtsc();
    r.now_s = static_cast<int64_t>(::time(nullptr));
    r.reply.method = r.msg.method;
    std::memcpy(r.reply.txid, r.msg.txid, turn::txid_len);
    // Indications other than Send (handled by the workers) and answers: a
    // TURN server sends no requests, so nothing here is waiting for them.
    if (r.msg.cls != turn::msg_class::request)
        stats_.ignored++;
    else
        on_request(r);
}

int turn_manager::submit(std::unique_ptr<dp::flow_cmd> c,
                         std::unique_ptr<dp::turn_peer_table> peers, uint32_t id,
                         std::function<void(int)> done)
{
    c->seq = seq_++;
    c->peers = peers.get();
    const int rc = dp_.submit(c.get());
    if (rc != 0)
        return rc;
    const uint64_t seq = c->seq;
    pending_.emplace(seq, pending_op{std::move(c), std::move(peers), id, std::move(done)});
    return 0;
}

void turn_manager::on_ack(dp::flow_cmd* c)
{
    auto it = pending_.find(c->seq);
    if (it == pending_.end())
        return;
    pending_op op = std::move(it->second);
    pending_.erase(it);
    auto a = allocs_.find(op.alloc_id);
    if (op.cmd->op == dp::cmd_op::del_alloc) {
        if (a != allocs_.end()) {
            release_ports(*a->second);
            allocs_.erase(a); // frees the dp::turn_alloc: the worker let go of it
        }
    } else if (op.cmd->op == dp::cmd_op::add_alloc && a != allocs_.end()) {
        if (op.cmd->status == 0) {
            a->second->installed = true;
        } else {
            stats_.allocations_failed++;
            by_client_.erase(client_key(a->second->origin));
            if (auto u = per_user_.find(a->second->user); u != per_user_.end() && --u->second == 0)
                per_user_.erase(u);
            release_ports(*a->second);
            allocs_.erase(a);
        }
    }
    if (op.done)
        op.done(op.cmd->status);
}

void turn_manager::release_port(unsigned laddr, uint16_t port)
{
    if (port != 0 && laddr < dp_.nladdrs())
        sm_.relay_pool(laddr).release(port);
}

void turn_manager::release_ports(const turn_allocation& a)
{
    release_port(a.relay_laddr, a.relay_port);
    release_port(a.relay2_laddr, a.relay2_port);
}

void turn_manager::install(std::unique_ptr<turn_allocation> a, std::function<void(int)> done)
{
    turn_allocation& ref = *a;
    const uint32_t id = ref.id;
    by_client_[client_key(ref.origin)] = id;
    per_user_[ref.user]++;
    allocs_.emplace(id, std::move(a));
    auto c = std::make_unique<dp::flow_cmd>();
    c->op = dp::cmd_op::add_alloc;
    c->alloc = ref.da;
    if (submit(std::move(c), nullptr, id, std::move(done)) != 0) {
        // The command ring is full: as if the worker had refused it.
        stats_.allocations_failed++;
        by_client_.erase(client_key(ref.origin));
        if (auto u = per_user_.find(ref.user); u != per_user_.end() && --u->second == 0)
            per_user_.erase(u);
        release_ports(ref);
        allocs_.erase(id);
        if (done)
            done(-EAGAIN);
    }
}

void turn_manager::push_peers(turn_allocation& a, std::function<void(int)> done)
{
    auto t = std::make_unique<dp::turn_peer_table>();
    // IPv4 permissions in perms, IPv6 ones in perms6 (max_turn_perms
    // together: on_create_permission and on_channel_bind count both).
    for (const auto& p : a.perms) {
        if (p.ip.family == 4 && t->nperms < dp::max_turn_perms) {
            t->perms[t->nperms++] = {p.ip.ip4_be(), 0, p.expiry_tsc};
        } else if (p.ip.family == 6 && t->nperms6 < dp::max_turn_perms) {
            dp::turn_perm6& d = t->perms6[t->nperms6++];
            std::memcpy(d.ip.b, p.ip.ip, 16);
            d.expiry_tsc = p.expiry_tsc;
        }
    }
    for (const auto& c : a.chans) {
        if (t->nchans == dp::max_turn_channels)
            break;
        dp::turn_channel& d = t->chans[t->nchans++];
        const uint16_t port_be = rte_cpu_to_be_16(c.peer.port);
        if (c.peer.family == 6) {
            std::memcpy(d.peer6.b, c.peer.ip, 16);
            d.peer = dp::pack_ep6(d.peer6, port_be);
        } else {
            d.peer = dp::pack_ep(c.peer.ip4_be(), port_be);
        }
        d.expiry_tsc = c.expiry_tsc;
        d.number = c.number;
    }
    auto c = std::make_unique<dp::flow_cmd>();
    c->op = dp::cmd_op::set_alloc_peers;
    c->alloc = a.da;
    if (submit(std::move(c), std::move(t), a.id, std::move(done)) != 0 && done)
        done(-EAGAIN);
}

void turn_manager::end(turn_allocation& a, const char* why, done_fn done, bool conn_gone)
{
    if (a.deleting) {
        if (done)
            done(true);
        return;
    }
    a.deleting = true;
    by_client_.erase(client_key(a.origin));
    if (auto u = per_user_.find(a.user); u != per_user_.end() && --u->second == 0)
        per_user_.erase(u);
    stats_.allocations_ended++;
    const double age = static_cast<double>(rte_rdtsc() - a.created_tsc) / rte_get_tsc_hz();
    if (a.origin.stream != 0 && !conn_gone && out_.hub != nullptr) {
        // One allocation per connection: the connection ends with it (after
        // what is queued on it, e.g. the answer to a Refresh of lifetime 0).
        stream_command sc;
        sc.kind = stream_command::close;
        sc.token = a.origin.stream;
        out_.hub->command(std::move(sc));
    }
    ISAR_LOG(INFO, "turn: allocation {} ended ({}): user \"{}\", client {} ({}), {:.0f} s, "
                   "{} packets to peers, {} from peers",
             a.id, why, a.username, a.origin.client_text(), a.origin.transport(), age,
             dp::read(a.da->ctr.c2p_pkts), dp::read(a.da->ctr.p2c_pkts));
    auto c = std::make_unique<dp::flow_cmd>();
    c->op = dp::cmd_op::del_alloc;
    c->alloc = a.da;
    const uint32_t id = a.id;
    auto cb = [done](int) {
        if (done)
            done(true);
    };
    if (submit(std::move(c), nullptr, id, cb) != 0) {
        // Ring full: retried by tick() (deleting stays set, the entry stays).
        a.deleting = false;
        stats_.allocations_ended--;
        if (done)
            done(true);
    }
}

bool turn_manager::remove(uint32_t id, done_fn done)
{
    auto it = allocs_.find(id);
    if (it == allocs_.end() || !it->second->installed)
        return false;
    end(*it->second, "deleted by isarctl", std::move(done));
    return true;
}

void turn_manager::tick(uint64_t now)
{
    std::vector<turn_allocation*> expired;
    const uint64_t grace = 300 * rte_get_tsc_hz(); // a channel's pair stays reserved 5 min
    for (auto& [id, a] : allocs_) {
        if (!a->installed || a->deleting)
            continue;
        if (now >= a->expiry_tsc) {
            expired.push_back(a.get());
            continue;
        }
        std::erase_if(a->perms, [&](const turn_permission& p) { return now >= p.expiry_tsc; });
        std::erase_if(a->chans,
                      [&](const turn_binding& c) { return now >= c.expiry_tsc + grace; });
    }
    for (turn_allocation* a : expired)
        end(*a, "lifetime expired");
    for (auto it = reservations_.begin(); it != reservations_.end();) {
        if (now >= it->second.expiry_tsc) {
            release_port(it->second.laddr, it->second.port);
            it = reservations_.erase(it);
        } else {
            ++it;
        }
    }
    const int64_t sec = static_cast<int64_t>(::time(nullptr));
    std::erase_if(alloc_rate_, [&](const auto& kv) { return kv.second.second < sec - 1; });
}

const char* turn_manager::auth_fail_name(unsigned i)
{
    static const char* const names[] = {
#define ISAR_TURN_AUTH_NAME(n, t) #n,
            ISAR_FOREACH_TURN_AUTH_FAIL(ISAR_TURN_AUTH_NAME)
#undef ISAR_TURN_AUTH_NAME
    };
    return i < std::size(names) ? names[i] : "?";
}

void turn_manager::log_created(const turn_allocation& a) const
{
    ISAR_LOG(INFO, "turn: allocation {} created: user \"{}\", client {} ({}), relay {}{}, "
                   "lifetime {:.0f} s, worker {}",
             a.id, a.username, a.origin.client_text(), a.origin.transport(),
             relayed_text(a, false), a.relay2_port != 0 ? " and " + relayed_text(a, true) : "",
             seconds_left(a, rte_rdtsc()), a.da->owner);
}

} // namespace isar::ctl
