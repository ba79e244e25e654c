// TURN over IPv6 on the control side: turn_manager answering UDP requests of
// an IPv6 client that reached it through a worker's TURN ring, over the real
// dataplane (relay fixture; interface 0 has 198.18.0.1/24 as slot 0 and
// 2001:2::1/64 as slot 1). The answers are read off the control lcore's TX
// queue as frames: IPv6, UDP checksum verified independently.
#include "control/turn_manager.h"
#include "tests/dataplane/relay_fixture.h"
#include "tests/dataplane/v6_frames.h"
#include "tests/support/eal_env.h"
#include "turn/auth.h"
#include "turn/peer_policy.h"
#include "turn/stun.h"

#include <gtest/gtest.h>
#include <string>
#include <vector>

ISAR_TEST_EAL_ENV("test_turn_control6");

using namespace isar;
using namespace isar::test;

namespace {

constexpr const char* realm = "meet.example.org";
constexpr const char* secret = "test-secret-for-turn-over-ipv6";
constexpr uint16_t turn_port = 3478;
constexpr uint16_t client_port = 40000;
const rte_ether_addr client_mac = mac(0x50, 1);

// What an answer frame held.
struct answer {
    bool ok = false; // an IPv6/UDP frame to the client with a valid checksum
    turn::msg_class cls = turn::msg_class::request;
    uint16_t code = 0;
    std::string nonce;
    std::vector<turn::transport_addr> relayed; // XOR-RELAYED-ADDRESS, in order
    turn::transport_addr mapped;
    uint16_t addr_error_family = 0; // ADDRESS-ERROR-CODE's family byte, 0 = none
};

class TurnControl6 : public RelayTest {
protected:
    void SetUp() override
    {
        ASSERT_NO_FATAL_FAILURE(secrets_.make("/tmp/isar_tc6_XXXXXX", secret));
        relay_options o;
        o.tweak = [](dp::dp_config& d) {
            d.turn_ports = {turn_port};
            d.max_allocations = 64;
            d.ifaces[0].addrs.push_back({6, 0, ip6("2001:2::1"), 64});
        };
        start(o);
        ASSERT_EQ(r->dp->nladdrs(), 2u);
        r->cfg.turn.listen_udp = {turn_port};
        r->cfg.turn.realm = realm;
        r->cfg.turn.auth_secret_file = secrets_.file;
        r->cfg.turn.allowed_peer = {"2001:2::/48", "198.18.0.0/15"};
        r->cfg.turn.denied_peer = turn::peer_policy::default_denied(); // as config.cc sets it
        tm_ = std::make_unique<ctl::turn_manager>(*r->dp, r->cfg, *r->sm);
        std::string err;
        ASSERT_EQ(tm_->init(err), 0) << err;
        r->sm->on_other_ack = [this](dp::flow_cmd* c) { tm_->on_ack(c); };
        username_ = rest_credentials(secret, realm, key_);
    }
    void TearDown() override
    {
        if (tm_) {
            std::vector<uint32_t> ids;
            for (auto& [id, a] : tm_->allocations())
                ids.push_back(id);
            for (auto id : ids)
                tm_->remove(id, nullptr);
            pump();
            tm_.reset();
        }
        RelayTest::TearDown();
        secrets_.remove();
    }

    void pump()
    {
        for (unsigned i = 0; i < 50; i++) {
            r->poll();
            tm_->poll();
        }
    }

    template <typename Fill>
    bytes request(turn::method m, const std::string& nonce, uint8_t txid0, Fill&& fill)
    {
        return turn_request(m, nonce, txid0, std::forward<Fill>(fill), username_, realm, key_);
    }
    // An Allocate for a UDP relay; `fam`: REQUESTED-ADDRESS-FAMILY (0 =
    // none); `additional`: ADDITIONAL-ADDRESS-FAMILY IPv6.
    bytes allocate(const std::string& nonce, uint8_t txid0, uint8_t fam = 0,
                   bool additional = false)
    {
        return request(turn::method::allocate, nonce, txid0, [&](turn::builder& b) {
            const uint8_t udp[4] = {17, 0, 0, 0};
            b.add(turn::attr::requested_transport, udp, sizeof(udp));
            if (fam != 0) {
                const uint8_t f[4] = {static_cast<uint8_t>(fam == 6 ? 2 : 1), 0, 0, 0};
                b.add(turn::attr::requested_address_family, f, sizeof(f));
            }
            if (additional) {
                const uint8_t f[4] = {2, 0, 0, 0};
                b.add(turn::attr::additional_address_family, f, sizeof(f));
            }
        });
    }

    // Sends `msg` from the client over IPv6 to [2001:2::1]:3478 and reads
    // the one answer control sent back.
    answer exchange(const bytes& msg)
    {
        udp6_spec s;
        s.dst_mac = r->mac(0);
        s.src_mac = client_mac;
        s.src = client6_;
        s.dst = ip6("2001:2::1");
        s.src_port = cport_;
        s.dst_port = turn_port;
        s.payload = msg;
        r->inject(build(s));
        pump();
        answer a;
        const auto out = r->sent(0, r->dp->nworkers());
        EXPECT_EQ(out.size(), 1u) << "one answer on the control queue";
        if (out.size() != 1)
            return a;
        const bytes& f = out[0];
        EXPECT_TRUE(udp6_cksum_ok(f)) << "an IPv6/UDP frame with a valid UDP checksum";
        if (!udp6_cksum_ok(f))
            return a;
        rte_ether_addr dst;
        std::memcpy(&dst, f.data(), 6);
        EXPECT_TRUE(mac_eq(dst, client_mac)) << "back to the request's source MAC";
        EXPECT_EQ(f[21], 64) << "hop limit";
        dp::ip6_addr src6, dst6;
        std::memcpy(src6.b, &f[22], 16);
        std::memcpy(dst6.b, &f[38], 16);
        EXPECT_TRUE(src6 == ip6("2001:2::1"));
        EXPECT_TRUE(dst6 == client6_);
        EXPECT_EQ((f[54] << 8) | f[55], turn_port);
        EXPECT_EQ((f[56] << 8) | f[57], cport_);
        return read_stun(f.data() + 62, f.size() - 62);
    }

    // The same from the IPv4 client 198.18.0.50:40000 to 198.18.0.1:3478.
    answer exchange4(const bytes& msg)
    {
        udp4_spec s;
        s.dst_mac = r->mac(0);
        s.src_mac = client_mac;
        s.src_ip = ip4("198.18.0.50");
        s.dst_ip = r->ip(0);
        s.src_port = cport_;
        s.dst_port = turn_port;
        s.payload = msg;
        r->inject(build(s));
        pump();
        const auto out = r->sent(0, r->dp->nworkers());
        EXPECT_EQ(out.size(), 1u) << "one answer on the control queue";
        if (out.size() != 1)
            return {};
        const auto v = parse_udp4(out[0]);
        EXPECT_TRUE(v && v->ip_cksum_ok && v->udp_cksum_ok);
        if (!v)
            return {};
        EXPECT_EQ(v->dst_ip, ip4("198.18.0.50"));
        EXPECT_EQ(v->src_ip, r->ip(0));
        EXPECT_EQ(v->src_port, turn_port);
        EXPECT_EQ(v->dst_port, client_port);
        return read_stun(v->payload.data(), v->payload.size());
    }

    static answer read_stun(const uint8_t* p, size_t n)
    {
        answer a;
        turn::message m;
        EXPECT_EQ(turn::parse(p, n, m), turn::parse_status::ok);
        a.ok = true;
        a.cls = m.cls;
        if (const turn::attr_view* e = m.find(turn::attr::error_code)) {
            EXPECT_TRUE(turn::read_error_code(*e, a.code));
        }
        if (const turn::attr_view* nv = m.find(turn::attr::nonce))
            a.nonce.assign(reinterpret_cast<const char*>(nv->value), nv->len);
        if (const turn::attr_view* x = m.find(turn::attr::xor_mapped_address)) {
            EXPECT_TRUE(turn::read_xor_address(m, *x, a.mapped));
        }
        if (const turn::attr_view* x = m.find(turn::attr::address_error_code))
            a.addr_error_family = x->len > 0 ? x->value[0] : 0;
        for (unsigned i = 0; i < m.nattrs; i++) {
            if (m.attrs[i].type != turn::attr::xor_relayed_address)
                continue;
            turn::transport_addr t;
            EXPECT_TRUE(turn::read_xor_address(m, m.attrs[i], t));
            a.relayed.push_back(t);
        }
        return a;
    }

    // 401 with a nonce, then the signed Allocate; its answer. `v4`: from
    // the IPv4 client.
    answer allocate_ok(uint8_t fam = 0, bool additional = false, bool v4 = false)
    {
        auto ex = [&](const bytes& m) { return v4 ? exchange4(m) : exchange(m); };
        const answer c = ex(allocate("", 1, fam, additional));
        EXPECT_EQ(c.cls, turn::msg_class::error);
        EXPECT_EQ(c.code, 401);
        EXPECT_FALSE(c.nonce.empty());
        nonce_ = c.nonce;
        const answer a = ex(allocate(nonce_, 2, fam, additional));
        EXPECT_EQ(a.cls, turn::msg_class::success) << "code " << a.code;
        return a;
    }

    const ctl::turn_allocation* only() const
    {
        return tm_->allocations().size() == 1 ? tm_->allocations().begin()->second.get() : nullptr;
    }

    bytes create_permission(const turn::transport_addr& peer, uint8_t txid0)
    {
        return request(turn::method::create_permission, nonce_, txid0, [&](turn::builder& b) {
            b.add_xor_address(turn::attr::xor_peer_address, peer);
        });
    }

    dp::ip6_addr client6_ = ip6("2001:2::50");
    uint16_t cport_ = client_port;
    std::unique_ptr<ctl::turn_manager> tm_;
    secret_dir secrets_;
    std::string username_, nonce_;
    uint8_t key_[turn::long_term_key_len] = {};
};

turn::transport_addr v6(const char* a, uint16_t port)
{
    return turn::transport_addr::v6(ip6(a).b, port);
}

} // namespace

TEST_F(TurnControl6, BindingOverIpv6)
{
    const answer a = exchange(request(turn::method::binding, "", 7, [](turn::builder&) {}));
    ASSERT_TRUE(a.ok);
    EXPECT_EQ(a.cls, turn::msg_class::success);
    EXPECT_TRUE(a.mapped == v6("2001:2::50", client_port)) << "XOR-MAPPED-ADDRESS of IPv6";
    EXPECT_EQ(tm_->stats().bad_requests, 0u);
}

TEST_F(TurnControl6, Ipv6ClientGetsAnIpv4RelayByDefault)
{
    const answer a = allocate_ok();
    ASSERT_EQ(a.relayed.size(), 1u);
    EXPECT_EQ(a.relayed[0].family, 4) << "no REQUESTED-ADDRESS-FAMILY: IPv4";
    EXPECT_EQ(a.relayed[0].ip4_be(), rte_cpu_to_be_32(r->ip(0)));
    EXPECT_TRUE(a.mapped == v6("2001:2::50", client_port));
    const ctl::turn_allocation* al = only();
    ASSERT_NE(al, nullptr);
    EXPECT_TRUE(al->installed);
    const dp::turn_alloc& d = *al->da;
    EXPECT_TRUE(dp::ep_is_v6(d.client));
    EXPECT_EQ(d.client, dp::pack_ep6(client6_, rte_cpu_to_be_16(client_port)));
    EXPECT_TRUE(d.client6 == client6_);
    EXPECT_EQ(d.listen_laddr, 1) << "the IPv6 listener slot";
    EXPECT_EQ(d.relay_laddr, 0);
    EXPECT_EQ(d.relay2_laddr, dp::no_laddr);
    EXPECT_EQ(d.owner, dp::owner_of_client(client6_.fold32(), rte_cpu_to_be_16(client_port),
                                           r->dp->nworkers()));
    EXPECT_EQ(tm_->relayed_text(*al, false),
              "198.18.0.1:" + std::to_string(rte_be_to_cpu_16(d.relay_port_be)));
    EXPECT_EQ(al->origin.client_text(), "[2001:2::50]:40000");

    // A retransmission gets the same answer; a Refresh from the same client
    // finds the allocation by its IPv6 5-tuple.
    const answer re = exchange(request(turn::method::refresh, nonce_, 30, [](turn::builder& b) {
        b.add_u32(turn::attr::lifetime, 600);
    }));
    EXPECT_EQ(re.cls, turn::msg_class::success) << "code " << re.code;
}

TEST_F(TurnControl6, RequestedFamilyIpv6)
{
    const size_t free1 = r->sm->relay_pool(1).free_count(0);
    const answer a = allocate_ok(6);
    ASSERT_EQ(a.relayed.size(), 1u);
    EXPECT_TRUE(a.relayed[0].family == 6 &&
                std::memcmp(a.relayed[0].ip, ip6("2001:2::1").b, 16) == 0);
    const ctl::turn_allocation* al = only();
    ASSERT_NE(al, nullptr);
    EXPECT_EQ(al->da->relay_laddr, 1) << "relayed from the IPv6 slot";
    EXPECT_EQ(rte_be_to_cpu_16(al->da->relay_port_be), a.relayed[0].port);
    EXPECT_EQ(r->sm->relay_pool(1).free_count(0), free1 - 1) << "a port of slot 1's pool";
    tm_->remove(al->id, nullptr);
    pump();
    EXPECT_EQ(r->sm->relay_pool(1).free_count(0), free1) << "released";
}

TEST_F(TurnControl6, DualAllocation)
{
    const size_t free0 = r->sm->relay_pool(0).free_count(0);
    const size_t free1 = r->sm->relay_pool(1).free_count(0);
    const answer a = allocate_ok(0, true);
    ASSERT_EQ(a.relayed.size(), 2u) << "two XOR-RELAYED-ADDRESS";
    EXPECT_EQ(a.relayed[0].family, 4);
    EXPECT_EQ(a.relayed[1].family, 6);
    EXPECT_EQ(a.addr_error_family, 0) << "both families could be had";
    const ctl::turn_allocation* al = only();
    ASSERT_NE(al, nullptr);
    EXPECT_EQ(al->da->relay_laddr, 0);
    EXPECT_EQ(al->da->relay2_laddr, 1);
    EXPECT_EQ(rte_be_to_cpu_16(al->da->relay2_port_be), a.relayed[1].port);
    EXPECT_EQ(r->sm->relay_pool(0).free_count(0), free0 - 1);
    EXPECT_EQ(r->sm->relay_pool(1).free_count(0), free1 - 1);
    tm_->remove(al->id, nullptr);
    pump();
    EXPECT_TRUE(tm_->allocations().empty());
    EXPECT_EQ(r->sm->relay_pool(0).free_count(0), free0) << "both ports released";
    EXPECT_EQ(r->sm->relay_pool(1).free_count(0), free1);
}

TEST_F(TurnControl6, PublicAddressInTheRelayedAddress)
{
    r->cfg.interfaces[0].public_addrs = {*ctl::parse_ip("198.19.0.7"),
                                         *ctl::parse_ip("2001:2:0:9::7")};
    const answer a = allocate_ok(0, true);
    ASSERT_EQ(a.relayed.size(), 2u);
    EXPECT_EQ(a.relayed[0].ip4_be(), rte_cpu_to_be_32(ip4("198.19.0.7")));
    EXPECT_EQ(std::memcmp(a.relayed[1].ip, ip6("2001:2:0:9::7").b, 16), 0);
}

TEST_F(TurnControl6, PeerOfAnotherFamilyIs443)
{
    allocate_ok(); // IPv4 relayed address only
    const answer a = exchange(create_permission(v6("2001:2::30", 0), 40));
    EXPECT_EQ(a.cls, turn::msg_class::error);
    EXPECT_EQ(a.code, 443);
    const answer b = exchange(create_permission(
            turn::transport_addr::v4(rte_cpu_to_be_32(ip4("198.18.0.30")), 0), 41));
    EXPECT_EQ(b.cls, turn::msg_class::success) << "code " << b.code;
}

TEST_F(TurnControl6, Ipv6PermissionAndChannel)
{
    allocate_ok(6);
    const answer a = exchange(create_permission(v6("2001:2::30", 0), 40));
    EXPECT_EQ(a.cls, turn::msg_class::success) << "code " << a.code;
    const ctl::turn_allocation* al = only();
    ASSERT_NE(al, nullptr);
    ASSERT_EQ(al->perms.size(), 1u);
    EXPECT_EQ(al->da->nperms, 0);
    ASSERT_EQ(al->da->nperms6, 1) << "the worker has the IPv6 permission";
    EXPECT_TRUE(al->da->perms6[0].ip == ip6("2001:2::30"));

    const answer c = exchange(request(turn::method::channel_bind, nonce_, 50, [](turn::builder& b) {
        b.add_u32(turn::attr::channel_number, 0x40000000);
        b.add_xor_address(turn::attr::xor_peer_address, v6("2001:2::31", 7000));
    }));
    EXPECT_EQ(c.cls, turn::msg_class::success) << "code " << c.code;
    ASSERT_EQ(al->da->nchans, 1);
    EXPECT_TRUE(al->da->chans[0].peer6 == ip6("2001:2::31"));
    EXPECT_EQ(al->da->chans[0].peer, dp::pack_ep6(ip6("2001:2::31"), rte_cpu_to_be_16(7000)));
    EXPECT_EQ(al->da->nperms6, 2);

    // Denied by policy (documentation prefix), and the relay's own IPv6
    // address outside the relay ports: 403.
    EXPECT_EQ(exchange(create_permission(v6("2001:db8::1", 0), 60)).code, 403);
    EXPECT_EQ(exchange(request(turn::method::channel_bind, nonce_, 61,
                               [](turn::builder& b) {
                                   b.add_u32(turn::attr::channel_number, 0x40010000);
                                   b.add_xor_address(turn::attr::xor_peer_address,
                                                     v6("2001:2::1", turn_port));
                               }))
                      .code,
              403);
}

TEST_F(TurnControl6, AllocateRatePerIpv6Address)
{
    r->cfg.turn.allocate_rate = 2;
    EXPECT_EQ(exchange(allocate("", 1)).code, 401);
    EXPECT_EQ(exchange(allocate("", 3)).code, 401);
    EXPECT_EQ(exchange(allocate("", 5)).code, 486) << "the third this second";
    EXPECT_EQ(tm_->stats().rate_rejected, 1u);
    client6_ = ip6("2001:2::51"); // another address has its own budget
    EXPECT_EQ(exchange(allocate("", 7)).code, 401);
}

TEST_F(TurnControl6, TurnGetShowsIpv6Addresses)
{
    r->cmds->set_turn(tm_.get());
    allocate_ok(6, false);
    const ctl::turn_allocation* al = only();
    ASSERT_NE(al, nullptr);
    const json j = r->call({{"cmd", "turn.get"}, {"id", 1}, {"allocation", al->id}});
    EXPECT_EQ(j.value("client", ""), "[2001:2::50]:40000") << j.dump();
    EXPECT_EQ(j.value("listener", ""), "[2001:2::1]:3478");
    EXPECT_EQ(j.value("relayed", ""),
              "[2001:2::1]:" + std::to_string(rte_be_to_cpu_16(al->da->relay_port_be)));
    r->cmds->set_turn(nullptr);
}

TEST_F(TurnControl6, DualAllocationShownWithBothRelayedAddresses)
{
    r->cmds->set_turn(tm_.get());
    allocate_ok(0, true);
    const ctl::turn_allocation* al = only();
    ASSERT_NE(al, nullptr);
    const json j = r->call({{"cmd", "turn.get"}, {"id", 1}, {"allocation", al->id}});
    EXPECT_EQ(j.value("relayed", ""),
              "198.18.0.1:" + std::to_string(rte_be_to_cpu_16(al->da->relay_port_be)));
    EXPECT_EQ(j.value("relayed2", ""),
              "[2001:2::1]:" + std::to_string(rte_be_to_cpu_16(al->da->relay2_port_be)));
    r->cmds->set_turn(nullptr);
}

TEST_F(TurnControl6, Ipv4ClientWithAnIpv6Relay)
{
    const answer a = allocate_ok(6, false, true);
    ASSERT_EQ(a.relayed.size(), 1u);
    EXPECT_EQ(a.relayed[0].family, 6);
    EXPECT_TRUE(a.mapped ==
                turn::transport_addr::v4(rte_cpu_to_be_32(ip4("198.18.0.50")), client_port));
    const ctl::turn_allocation* al = only();
    ASSERT_NE(al, nullptr);
    const dp::turn_alloc& d = *al->da;
    EXPECT_FALSE(dp::ep_is_v6(d.client));
    EXPECT_EQ(d.client,
              dp::pack_ep(rte_cpu_to_be_32(ip4("198.18.0.50")), rte_cpu_to_be_16(client_port)));
    EXPECT_EQ(d.listen_ip_be, rte_cpu_to_be_32(r->ip(0)));
    EXPECT_EQ(d.listen_laddr, 0) << "the IPv4 listener slot";
    EXPECT_EQ(d.relay_laddr, 1);
    // An IPv4 peer is of the other family: 443.
    EXPECT_EQ(exchange4(create_permission(
                                turn::transport_addr::v4(rte_cpu_to_be_32(ip4("198.18.0.30")), 0),
                                40))
                      .code,
              443);
}

TEST_F(TurnControl6, OwnIpv4AddressOnlyAtRelayPorts)
{
    allocate_ok(0, false, true);
    EXPECT_EQ(exchange4(request(turn::method::channel_bind, nonce_, 50,
                                [&](turn::builder& b) {
                                    b.add_u32(turn::attr::channel_number, 0x40000000);
                                    b.add_xor_address(
                                            turn::attr::xor_peer_address,
                                            turn::transport_addr::v4(rte_cpu_to_be_32(r->ip(0)),
                                                                     turn_port));
                                }))
                      .code,
              403)
            << "the listener is no peer";
    EXPECT_EQ(tm_->stats().peer_denied, 1u);
}

// EVEN-PORT with R on an IPv6 relayed address, then an Allocate with the
// RESERVATION-TOKEN (no family attribute, as RFC 8656 §7.2 wants): the odd
// port of the same IPv6 address (turnutils_uclient's RTP/RTCP pairs).
TEST_F(TurnControl6, ReservationTokenKeepsTheReservedFamily)
{
    const answer c = exchange(allocate("", 1, 6));
    ASSERT_EQ(c.code, 401);
    nonce_ = c.nonce;
    bytes m = request(turn::method::allocate, nonce_, 2, [](turn::builder& b) {
        const uint8_t udp[4] = {17, 0, 0, 0};
        b.add(turn::attr::requested_transport, udp, sizeof(udp));
        const uint8_t f[4] = {2, 0, 0, 0};
        b.add(turn::attr::requested_address_family, f, sizeof(f));
        const uint8_t r = 0x80;
        b.add(turn::attr::even_port, &r, 1);
    });
    // The answer carries the token; read it from the raw frame.
    udp6_spec q;
    q.dst_mac = r->mac(0);
    q.src_mac = client_mac;
    q.src = client6_;
    q.dst = ip6("2001:2::1");
    q.src_port = cport_;
    q.dst_port = turn_port;
    q.payload = m;
    r->inject(build(q));
    pump();
    const auto out = r->sent(0, r->dp->nworkers());
    ASSERT_EQ(out.size(), 1u);
    turn::message am;
    ASSERT_EQ(turn::parse(out[0].data() + 62, out[0].size() - 62, am), turn::parse_status::ok);
    ASSERT_EQ(am.cls, turn::msg_class::success);
    const turn::attr_view* tok = am.find(turn::attr::reservation_token);
    ASSERT_NE(tok, nullptr);
    ASSERT_EQ(tok->len, 8);
    turn::transport_addr first;
    ASSERT_TRUE(turn::read_xor_address(am, *am.find(turn::attr::xor_relayed_address), first));
    EXPECT_EQ(first.family, 6);
    EXPECT_EQ(first.port % 2, 0);

    cport_ = client_port + 1; // uclient's second socket
    const answer c2 = exchange(allocate("", 3));
    nonce_ = c2.nonce;
    const answer a = exchange(request(turn::method::allocate, nonce_, 4, [&](turn::builder& b) {
        const uint8_t udp[4] = {17, 0, 0, 0};
        b.add(turn::attr::requested_transport, udp, sizeof(udp));
        b.add(turn::attr::reservation_token, tok->value, 8);
    }));
    EXPECT_EQ(a.cls, turn::msg_class::success) << "code " << a.code;
    ASSERT_EQ(a.relayed.size(), 1u);
    EXPECT_EQ(a.relayed[0].family, 6) << "the reserved port's family";
    EXPECT_EQ(a.relayed[0].port, first.port + 1);
}
