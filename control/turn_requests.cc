// TURN requests (RFC 8656 §7-§11) and their authentication (RFC 8489 §9.2
// long-term credentials with coturn's use-auth-secret REST passwords).
#include <cerrno>
#include <cstring>

#include <openssl/mem.h>
#include <openssl/rand.h>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_malloc.h>

#include "control/addr.h"
#include "control/log.h"
#include "control/session_manager.h"
#include "control/stream_hub.h"
#include "control/turn_manager.h"
#include "control/turn_request.h"
#include "turn/families.h"

namespace isar::ctl {

namespace {
constexpr uint32_t permission_lifetime_s = 300; // RFC 8656 §9
constexpr uint32_t channel_lifetime_s = 600;    // RFC 8656 §12
constexpr uint32_t reservation_lifetime_s = 30; // RFC 8656 §7.2 (EVEN-PORT R)

using turn::attr_view;
using turn::method;

bool is_method(const turn::message& m, method x)
{
    return m.method == static_cast<uint16_t>(x);
}
} // namespace

void turn_manager::respond_error(request& r, uint16_t code)
{
    stats_.errors_sent++;
    ISAR_LOG(DEBUG, "turn: {} {:#x} from {}: error {}", r.msg.method, r.msg.type,
             r.reply.to.client_text(), code);
    const bool challenge = code == 401 || code == 438;
    if (challenge)
        r.reply.sign = false; // the client is to retry with (fresh) credentials
    const std::string nonce =
            challenge ? turn::make_nonce(nonce_key_, r.now_s, r.reply.to.client()) : std::string();
    const turn::message& m = r.msg;
    auto s = send_answer(out_, r.reply, true, [&](turn::builder& b) {
        b.add_error(code);
        if (code == 420)
            b.add_unknown_attributes(m.unknown, m.nunknown);
        if (challenge) {
            b.add_string(turn::attr::realm, cfg_.turn.realm);
            b.add_string(turn::attr::nonce, nonce);
        }
    });
    if (s.empty())
        stats_.tx_failed++;
}

void turn_manager::on_request(request& r)
{
    const turn::message& m = r.msg;
    if (is_method(m, method::binding)) {
        stats_.binding++;
        on_binding(r);
        return;
    }
    if (is_method(m, method::allocate)) {
        stats_.allocate++;
        on_allocate(r);
        return;
    }
    const bool refresh = is_method(m, method::refresh);
    const bool perm = is_method(m, method::create_permission);
    const bool bind = is_method(m, method::channel_bind);
    if (!refresh && !perm && !bind) {
        stats_.bad_requests++;
        respond_error(r, 400);
        return;
    }
    (refresh ? stats_.refresh : perm ? stats_.create_permission : stats_.channel_bind)++;
    turn_allocation* a = by_client(r.reply.to);
    if (a != nullptr && a->deleting)
        a = nullptr;
    if (!authenticate(r, a))
        return;
    if (m.nunknown != 0) {
        respond_error(r, 420);
        return;
    }
    if (a == nullptr || !a->installed) {
        respond_error(r, 437);
        return;
    }
    if (refresh)
        on_refresh(r, *a);
    else if (perm)
        on_create_permission(r, *a);
    else
        on_channel_bind(r, *a);
}

void turn_manager::on_binding(request& r)
{
    if (r.msg.nunknown != 0) {
        respond_error(r, 420);
        return;
    }
    const turn::transport_addr client = r.reply.to.client();
    stats_.responses++;
    if (send_answer(out_, r.reply, false, [&](turn::builder& b) {
            b.add_xor_address(turn::attr::xor_mapped_address, client);
        }).empty())
        stats_.tx_failed++;
}

bool turn_manager::authenticate(request& r, turn_allocation* a)
{
    const turn::message& m = r.msg;
    auto fail = [&](auth_fail f, uint16_t code) {
        stats_.auth_failures[static_cast<unsigned>(f)]++;
        respond_error(r, code);
        return false;
    };
    if (m.integrity < 0)
        return fail(auth_fail::challenged, 401);
    const attr_view* user = m.find(turn::attr::username);
    const attr_view* realm = m.find(turn::attr::realm);
    const attr_view* nonce = m.find(turn::attr::nonce);
    if (user == nullptr || realm == nullptr || nonce == nullptr)
        return fail(auth_fail::missing_attribute, 400);
    switch (turn::check_nonce(nonce_key_, turn::as_string(*nonce), r.now_s,
                              cfg_.turn.nonce_lifetime_s, r.reply.to.client())) {
    case turn::nonce_status::ok:
        break;
    case turn::nonce_status::stale:
        return fail(auth_fail::stale_nonce, 438);
    case turn::nonce_status::bad:
        return fail(auth_fail::bad_nonce, 438);
    }
    if (turn::as_string(*realm) != cfg_.turn.realm)
        return fail(auth_fail::wrong_realm, 401);
    r.username = std::string(turn::as_string(*user));
    const auto expiry = turn::rest_expiry(r.username);
    if (!expiry)
        return fail(auth_fail::bad_username, 401);
    if (*expiry < r.now_s)
        return fail(auth_fail::expired, 401);
    if (a != nullptr) {
        if (r.username != a->username)
            return fail(auth_fail::wrong_credentials, 441);
        if (!turn::check_integrity(m, a->key, sizeof(a->key)))
            return fail(auth_fail::bad_integrity, 401);
        std::memcpy(r.reply.key, a->key, sizeof(a->key));
        r.reply.sign = true;
        return true;
    }
    for (const std::string& secret : secrets_.list) {
        std::string pass = turn::rest_password(secret, r.username);
        turn::long_term_key(r.username, cfg_.turn.realm, pass, r.reply.key);
        OPENSSL_cleanse(pass.data(), pass.size());
        if (turn::check_integrity(m, r.reply.key, sizeof(r.reply.key))) {
            r.reply.sign = true;
            return true;
        }
    }
    OPENSSL_cleanse(r.reply.key, sizeof(r.reply.key));
    return fail(auth_fail::bad_integrity, 401);
}

uint32_t turn_manager::lifetime_of(const request& r) const
{
    uint32_t v = cfg_.turn.default_lifetime_s;
    if (const attr_view* l = r.msg.find(turn::attr::lifetime)) {
        uint32_t req = 0;
        if (turn::read_u32(*l, req))
            v = req == 0 ? 0 : std::max(req, cfg_.turn.default_lifetime_s);
    }
    return std::min(v, cfg_.turn.max_lifetime_s);
}

uint16_t turn_manager::relay_slot(const stun_origin& o, uint8_t family) const
{
    if (o.iface >= dp_.nifaces())
        return dp::no_laddr;
    if (o.laddr < dp_.nladdrs() && dp_.laddr(o.laddr).family == family &&
        dp_.laddr(o.laddr).iface == o.iface)
        return o.laddr;
    const dp::iface& f = dp_.ifc(o.iface);
    if (family == 4)
        return f.laddr4;
    for (unsigned i = f.laddr_first; i < unsigned{f.laddr_first} + f.nladdr; i++)
        if (dp_.laddr(i).family == family)
            return static_cast<uint16_t>(i);
    return dp::no_laddr;
}

bool turn_manager::can_relay(unsigned iface, uint8_t family) const
{
    stun_origin o;
    o.iface = iface;
    return relay_slot(o, family) != dp::no_laddr;
}

bool turn_manager::is_own6(const turn::transport_addr& p) const
{
    for (unsigned i = 0; i < dp_.nladdrs(); i++)
        if (dp_.laddr(i).family == 6 && std::memcmp(dp_.laddr(i).ip6.b, p.ip, 16) == 0)
            return true;
    return false;
}

bool turn_manager::peer_permitted(const turn::transport_addr& p) const
{
    if (p.family != 4 && p.family != 6)
        return false;
    // The relay's own addresses (every slot of either family): only its
    // relayed ports (hairpin between two allocations), never its listener
    // or anything else on the box.
    bool own = false;
    if (p.family == 6) {
        own = is_own6(p);
    } else {
        for (unsigned i = 0; i < dp_.nifaces() && !own; i++)
            own = dp_.ifc(i).is_local4(p.ip4_be());
    }
    if (own)
        return p.port >= cfg_.port_min && p.port <= cfg_.port_max;
    return policy_.permitted(p);
}

// A peer of CreatePermission or ChannelBind: its family (443) and the peer
// policy (403). Answers the error itself.
bool turn_manager::peer_acceptable(request& r, const turn_allocation& a,
                                   const turn::transport_addr& p)
{
    // RFC 8656 §9.1, §11.1: a peer of a family the allocation has no
    // relayed address of is 443 (the client's own family does not matter).
    if (p.family != a.family && p.family != a.family2) {
        respond_error(r, 443);
        return false;
    }
    if (!peer_permitted(p)) {
        stats_.peer_denied++;
        respond_error(r, 403);
        return false;
    }
    return true;
}

// REQUESTED-TRANSPORT, EVEN-PORT, RESERVATION-TOKEN and the address-family
// attributes (RFC 8656 §7.2 steps 3-7). Answers the error itself.
bool turn_manager::allocate_checks(request& r, bool& reserve, bool& even,
                                   std::optional<uint64_t>& token, turn::family_choice& fam)
{
    const turn::message& m = r.msg;
    const attr_view* rt = m.find(turn::attr::requested_transport);
    uint8_t proto = 0;
    if (rt == nullptr || !turn::read_requested_transport(*rt, proto)) {
        respond_error(r, 400);
        return false;
    }
    if (proto != 17) {
        respond_error(r, 442);
        return false;
    }
    const attr_view* ep = m.find(turn::attr::even_port);
    const attr_view* tok = m.find(turn::attr::reservation_token);
    const attr_view* raf = m.find(turn::attr::requested_address_family);
    const attr_view* aaf = m.find(turn::attr::additional_address_family);
    if (tok && (ep || raf || aaf)) {
        respond_error(r, 400);
        return false;
    }
    if (ep != nullptr) {
        if (!turn::read_even_port(*ep, reserve)) {
            respond_error(r, 400);
            return false;
        }
        even = true;
    }
    if (tok != nullptr) {
        if (tok->len != 8) {
            respond_error(r, 400);
            return false;
        }
        uint64_t t;
        std::memcpy(&t, tok->value, 8);
        token = t;
    }
    const unsigned iface = r.reply.to.iface;
    // A TCP/TLS client's media reaches its worker keyed by the interface's
    // IPv4 slot (dp::stream_frame_hdr): it gets IPv4 relayed addresses only
    // (440, or ADDRESS-ERROR-CODE 440 for a dual allocation's IPv6 one).
    const bool stream = r.reply.to.stream != 0;
    fam = turn::choose_families(m, can_relay(iface, 4), !stream && can_relay(iface, 6));
    if (fam.error != 0) {
        respond_error(r, fam.error);
        return false;
    }
    return true;
}

// The relayed port of a new allocation: the reserved one of `token` (if
// it is still reserved, on this interface and owner), an even one (with its
// odd neighbour reserved when asked), or any of the owner's share.
std::optional<uint16_t> turn_manager::relay_port(unsigned laddr, unsigned owner, bool even,
                                                 bool reserve, std::optional<uint64_t> token)
{
    if (token) {
        auto it = reservations_.find(*token);
        if (it == reservations_.end() || it->second.laddr != laddr ||
            sm_.relay_pool(laddr).owner_of(it->second.port) != owner)
            return std::nullopt;
        const uint16_t p = it->second.port;
        reservations_.erase(it);
        return p;
    }
    port_pool& pool = sm_.relay_pool(laddr);
    return even ? pool.alloc_even(owner, reserve) : pool.alloc(owner);
}

// The slot of a new allocation's relayed address: with a RESERVATION-TOKEN
// the reserved port's (RFC 8656 §7.2: of the reserved address's family,
// which `family` becomes), else relay_slot().
uint16_t turn_manager::alloc_slot(const stun_origin& o, std::optional<uint64_t> token,
                                  uint8_t& family) const
{
    if (token) {
        auto it = reservations_.find(*token);
        if (it != reservations_.end() && dp_.laddr(it->second.laddr).iface == o.iface) {
            family = dp_.laddr(it->second.laddr).family;
            return static_cast<uint16_t>(it->second.laddr);
        }
    }
    return relay_slot(o, family);
}

bool turn_manager::second_relay(turn_allocation& a, unsigned owner)
{
    const uint16_t slot = relay_slot(a.origin, 6);
    if (slot == dp::no_laddr)
        return false;
    const std::optional<uint16_t> p = sm_.relay_pool(slot).alloc(owner);
    if (!p)
        return false;
    a.relay2_laddr = slot;
    a.relay2_port = *p;
    return true;
}

namespace {
turn::transport_addr public_addr(const ip_addr& pub, uint16_t port)
{
    if (pub.family == 6)
        return turn::transport_addr::v6(pub.v6.data(), port);
    return turn::transport_addr::v4(rte_cpu_to_be_32(pub.v4), port);
}
} // namespace

// The worker acknowledged (status 0) or refused a new allocation: the
// Allocate's answer (a TCP/TLS client's connection is bound to it first).
void turn_manager::allocated(const turn_reply_to& reply, uint32_t id, uint32_t life,
                             uint64_t new_token, uint16_t v6_error, int status)
{
    auto it = allocs_.find(id);
    if (status != 0 || it == allocs_.end()) {
        stats_.capacity_rejected++;
        stats_.errors_sent++;
        send_answer(out_, reply, true, [](turn::builder& b) { b.add_error(508); });
        return;
    }
    turn_allocation& al = *it->second;
    if (reply.to.stream != 0 && out_.hub != nullptr) {
        // The stream thread learns where the connection's media goes
        // before the client learns it may send any.
        stream_command sc;
        sc.kind = stream_command::bind;
        sc.token = reply.to.stream;
        sc.worker = static_cast<uint16_t>(al.da->owner);
        sc.iface = al.da->iface;
        sc.relay_port_be = al.da->relay_port_be;
        out_.hub->command(std::move(sc));
    }
    stats_.allocations_created++;
    stats_.responses++;
    // The slot's public address (1:1 NAT, [[interface]] public_address)
    // when it has one, else its own.
    const turn::transport_addr relayed = public_addr(sm_.public_of(al.relay_laddr), al.relay_port);
    turn::transport_addr relayed2;
    if (al.relay2_port != 0)
        relayed2 = public_addr(sm_.public_of(al.relay2_laddr), al.relay2_port);
    auto bytes = send_answer(out_, reply, false, [&](turn::builder& b) {
        b.add_xor_address(turn::attr::xor_relayed_address, relayed);
        if (al.relay2_port != 0) // dual allocation (RFC 8656 §7.2): IPv4 first, then IPv6
            b.add_xor_address(turn::attr::xor_relayed_address, relayed2);
        b.add_xor_address(turn::attr::xor_mapped_address, reply.to.client());
        b.add_u32(turn::attr::lifetime, life);
        if (new_token != 0)
            b.add(turn::attr::reservation_token, &new_token, sizeof(new_token));
        if (v6_error != 0 && al.relay2_port == 0) // dual allocation without its IPv6 address
            b.add_address_error(6, v6_error);
    });
    if (bytes.empty())
        stats_.tx_failed++;
    al.alloc_response.assign(bytes.begin(), bytes.end());
    log_created(al);
}

void turn_manager::on_allocate(request& r)
{
    turn_allocation* old = by_client(r.reply.to);
    if (old != nullptr && !old->alloc_response.empty() &&
        std::memcmp(old->alloc_txid, r.msg.txid, turn::txid_len) == 0) {
        // A retransmission: the same answer again (RFC 8656 §7.2).
        stats_.responses++;
        if (!out_.send(r.reply.to, old->alloc_response.data(), old->alloc_response.size()))
            stats_.tx_failed++;
        return;
    }
    if (!allocate_rate_ok(r) || !authenticate(r, nullptr))
        return;
    if (r.msg.nunknown != 0) {
        respond_error(r, 420);
        return;
    }
    if (old != nullptr) {
        respond_error(r, 437);
        return;
    }
    bool reserve = false, even = false;
    std::optional<uint64_t> token;
    turn::family_choice fam;
    if (!allocate_checks(r, reserve, even, token, fam))
        return;
    const std::string_view user = turn::rest_user(r.username);
    const std::string quota_key = user.empty() ? r.username : std::string(user);
    if (allocs_.size() + reservations_.size() >= cfg_.turn.max_allocations) {
        stats_.capacity_rejected++;
        respond_error(r, 508);
        return;
    }
    if (cfg_.turn.user_quota != 0) {
        auto u = per_user_.find(quota_key);
        if (u != per_user_.end() && u->second >= cfg_.turn.user_quota) {
            stats_.quota_rejected++;
            respond_error(r, 486);
            return;
        }
    }
    const stun_origin& o = r.reply.to;
    // As classify picks it for the client's packets (fold32 of an IPv6 source).
    const unsigned owner = dp::owner_of_client(o.family == 6 ? o.client6.fold32() : o.client_ip_be,
                                               o.client_port_be, dp_.nworkers());
    const uint16_t slot = alloc_slot(o, token, fam.first); // allocate_checks: there is one
    port_pool& pool = sm_.relay_pool(slot);
    const std::optional<uint16_t> port = relay_port(slot, owner, even, reserve, token);
    if (!port) {
        stats_.capacity_rejected++;
        respond_error(r, 508);
        return;
    }
    uint64_t new_token = 0;
    if (even && reserve) {
        RAND_bytes(reinterpret_cast<uint8_t*>(&new_token), sizeof(new_token));
        reservations_[new_token] = {slot, static_cast<uint16_t>(*port + 1),
                                    r.now_tsc + reservation_lifetime_s * rte_get_tsc_hz()};
    }

    auto a = std::make_unique<turn_allocation>();
    // NUMA: on the socket of the worker that owns it.
    a->da = static_cast<dp::turn_alloc*>(rte_zmalloc_socket("isar_turn", sizeof(dp::turn_alloc),
                                                            64, dp_.worker_socket(owner)));
    if (a->da == nullptr) {
        pool.release(*port);
        stats_.capacity_rejected++;
        respond_error(r, 508);
        return;
    }
    new (a->da) dp::turn_alloc();
    a->id = next_id_++;
    a->origin = o;
    a->username = r.username;
    a->user = quota_key;
    std::memcpy(a->key, r.reply.key, sizeof(a->key));
    a->relay_port = *port;
    a->relay_laddr = slot;
    a->family = fam.first;
    a->family2 = fam.second;
    uint16_t v6_error = fam.second_error;
    if (fam.second == 6 && !second_relay(*a, owner)) {
        a->family2 = 0; // no port left in the IPv6 slot's share: IPv4 only
        v6_error = 508;
    }
    a->created_tsc = r.now_tsc;
    const uint32_t life = lifetime_of(r) == 0 ? cfg_.turn.default_lifetime_s : lifetime_of(r);
    a->expiry_tsc = r.now_tsc + life * rte_get_tsc_hz();
    std::memcpy(a->alloc_txid, r.msg.txid, turn::txid_len);
    fill_dataplane(*a, owner);

    const uint32_t id = a->id;
    turn_reply_to reply = r.reply;
    install(std::move(a), [this, id, reply, life, new_token, v6_error](int status) {
        allocated(reply, id, life, new_token, v6_error, status);
    });
}

// Allocate rate per client address (either family), before any HMAC is
// computed: 486 beyond turn.allocate_rate a second.
bool turn_manager::allocate_rate_ok(request& r)
{
    if (cfg_.turn.allocate_rate == 0)
        return true;
    const turn::transport_addr c = r.reply.to.client();
    rate_window& w =
            alloc_rate_[std::string(reinterpret_cast<const char*>(c.ip), c.family == 6 ? 16 : 4)];
    if (w.second != r.now_s)
        w = {r.now_s, 0};
    if (++w.count <= cfg_.turn.allocate_rate)
        return true;
    stats_.rate_rejected++;
    respond_error(r, 486);
    return false;
}

// What the owning worker knows of a new allocation (dataplane/turn_alloc.h).
void turn_manager::fill_dataplane(turn_allocation& a, unsigned owner)
{
    const stun_origin& o = a.origin;
    const unsigned slot = a.relay_laddr;
    dp::turn_alloc& d = *a.da;
    if (o.family == 6) {
        d.client = dp::pack_ep6(o.client6, o.client_port_be);
        d.client6 = o.client6;
    } else {
        d.client = dp::pack_ep(o.client_ip_be, o.client_port_be);
        d.listen_ip_be = o.local_ip_be;
    }
    d.listen_laddr = o.laddr;
    d.listen_port_be = o.local_port_be;
    d.iface = static_cast<uint16_t>(o.iface);
    d.relay_ip_be = dp_.laddr(slot).family == 4 ? dp_.laddr(slot).ip4_be : 0;
    d.relay_laddr = slot;
    d.relay_port_be = rte_cpu_to_be_16(a.relay_port);
    if (a.relay2_port != 0) {
        d.relay2_laddr = a.relay2_laddr;
        d.relay2_port_be = rte_cpu_to_be_16(a.relay2_port);
    }
    d.owner = owner;
    d.id = a.id;
    d.stream = o.stream;
    RAND_bytes(d.txid, sizeof(d.txid));
}

void turn_manager::on_refresh(request& r, turn_allocation& a)
{
    const uint32_t life = lifetime_of(r);
    stats_.responses++;
    send_answer(out_, r.reply, false,
                [&](turn::builder& b) { b.add_u32(turn::attr::lifetime, life); });
    if (life == 0) {
        end(a, "refresh with lifetime 0");
        return;
    }
    a.expiry_tsc = r.now_tsc + life * rte_get_tsc_hz();
}

void turn_manager::on_create_permission(request& r, turn_allocation& a)
{
    const turn::message& m = r.msg;
    std::vector<turn::transport_addr> ips;
    for (unsigned i = 0; i < m.nattrs; i++) {
        if (m.attrs[i].type != turn::attr::xor_peer_address)
            continue;
        turn::transport_addr p;
        if (!turn::read_xor_address(m, m.attrs[i], p)) {
            respond_error(r, 400);
            return;
        }
        if (!peer_acceptable(r, a, p))
            return;
        p.port = 0;
        ips.push_back(p);
    }
    if (ips.empty()) {
        respond_error(r, 400);
        return;
    }
    const uint64_t expiry = r.now_tsc + permission_lifetime_s * rte_get_tsc_hz();
    std::vector<turn_permission> next = a.perms;
    for (const turn::transport_addr& ip : ips) {
        auto it = std::find_if(next.begin(), next.end(),
                               [&](const turn_permission& p) { return p.ip == ip; });
        if (it != next.end()) {
            it->expiry_tsc = expiry;
        } else {
            next.push_back({ip, expiry});
            stats_.permissions_created++;
        }
    }
    if (next.size() > dp::max_turn_perms) {
        stats_.capacity_rejected++;
        respond_error(r, 508);
        return;
    }
    a.perms = std::move(next);
    push_and_answer(r, a);
}

// Sends the allocation's permissions and channels to its worker and answers
// once the worker has them (a client may send data right after the answer).
void turn_manager::push_and_answer(request& r, turn_allocation& a)
{
    turn_reply_to reply = r.reply;
    push_peers(a, [this, reply](int status) {
        stats_.responses++;
        send_answer(out_, reply, status != 0, [&](turn::builder& b) {
            if (status != 0)
                b.add_error(508);
        });
    });
}

void turn_manager::on_channel_bind(request& r, turn_allocation& a)
{
    const turn::message& m = r.msg;
    const attr_view* cn = m.find(turn::attr::channel_number);
    const attr_view* pa = m.find(turn::attr::xor_peer_address);
    uint16_t number = 0;
    turn::transport_addr p;
    if (cn == nullptr || pa == nullptr || !turn::read_channel_number(*cn, number) ||
        number < turn::channel_min || number > turn::channel_max ||
        !turn::read_xor_address(m, *pa, p)) {
        respond_error(r, 400);
        return;
    }
    if (!peer_acceptable(r, a, p))
        return;
    turn::transport_addr ip = p;
    ip.port = 0;
    // RFC 8656 §11.2: a number bound to another peer, or a peer bound to
    // another number (also within 5 minutes after the binding expired), is 400.
    turn_binding* same = nullptr;
    for (auto& c : a.chans) {
        const bool num = c.number == number;
        const bool peer = c.peer == p;
        if (num && peer)
            same = &c;
        else if (num || peer) {
            respond_error(r, 400);
            return;
        }
    }
    const uint64_t now = r.now_tsc, hz = rte_get_tsc_hz();
    if (same == nullptr) {
        if (a.chans.size() >= dp::max_turn_channels) {
            stats_.capacity_rejected++;
            respond_error(r, 508);
            return;
        }
        a.chans.push_back({number, p, 0});
        same = &a.chans.back();
        stats_.channels_bound++;
    }
    auto perm = std::find_if(a.perms.begin(), a.perms.end(),
                             [&](const turn_permission& x) { return x.ip == ip; });
    if (perm == a.perms.end()) {
        if (a.perms.size() >= dp::max_turn_perms) {
            stats_.capacity_rejected++;
            respond_error(r, 508);
            return;
        }
        a.perms.push_back({ip, 0});
        perm = a.perms.end() - 1;
        stats_.permissions_created++;
    }
    same->expiry_tsc = now + channel_lifetime_s * hz;
    perm->expiry_tsc = std::max(perm->expiry_tsc, now + permission_lifetime_s * hz);
    push_and_answer(r, a);
}

} // namespace isar::ctl
