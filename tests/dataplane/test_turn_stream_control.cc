// TURN over TCP/TLS on the control side: turn_manager answering what the
// stream threads post on the stream hub (control/stream_hub.h), over the
// real dataplane (relay fixture). The test plays the stream thread: it posts
// requests and "closed" events and reads the commands control sends back
// (send, bind, close), in order.
#include "control/stream_hub.h"
#include "control/turn_manager.h"
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"
#include "turn/auth.h"
#include "turn/stun.h"

#include <cstdio>
#include <gtest/gtest.h>
#include <string>
#include <vector>

ISAR_TEST_EAL_ENV("test_turn_stream_control");

using namespace isar;
using namespace isar::test;

namespace {

constexpr const char* realm = "meet.example.org";
constexpr const char* secret = "test-secret-for-the-stream-hub";
constexpr uint32_t tok1 = dp::make_stream_token(0, 1, 1);
constexpr uint32_t tok2 = dp::make_stream_token(0, 1, 2);

class TurnStreamControl : public RelayTest {
protected:
    void SetUp() override
    {
        ASSERT_NO_FATAL_FAILURE(secrets_.make("/tmp/isar_tsc_XXXXXX", secret));
        relay_options o;
        o.tweak = [this](dp::dp_config& d) {
            d.turn_ports = {3478};
            d.max_allocations = 64;
            d.stream_threads = 1;
            if (!with_v6_)
                return;
            dp::ip6_addr v6; // slot 1: 2001:2::1/64
            v6.b[0] = 0x20;
            v6.b[1] = 0x01;
            v6.b[3] = 0x02;
            v6.b[15] = 0x01;
            d.ifaces[0].addrs.push_back({6, 0, v6, 64});
        };
        start(o);
        r->cfg.turn.listen_tcp = {3478};
        r->cfg.turn.realm = realm;
        r->cfg.turn.auth_secret_file = secrets_.file;
        tm_ = std::make_unique<ctl::turn_manager>(*r->dp, r->cfg, *r->sm);
        tm_->set_hub(&hub_);
        std::string err;
        ASSERT_EQ(tm_->init(err), 0) << err;
        r->sm->on_other_ack = [this](dp::flow_cmd* c) { tm_->on_ack(c); };
        username_ = rest_credentials(secret, realm, key_);
    }
    void TearDown() override
    {
        // Every allocation ends before the dataplane goes.
        for (auto id : ids())
            tm_->remove(id, nullptr);
        pump();
        tm_.reset();
        RelayTest::TearDown();
        secrets_.remove();
    }

    std::vector<uint32_t> ids() const
    {
        std::vector<uint32_t> v;
        for (auto& [id, a] : tm_->allocations())
            v.push_back(id);
        return v;
    }

    // Control and workers until nothing moves; then what control commanded.
    std::vector<ctl::stream_command> pump()
    {
        for (unsigned i = 0; i < 50; i++) {
            tm_->poll();
            r->poll();
        }
        std::vector<ctl::stream_command> out;
        hub_.take_commands(0, out);
        return out;
    }

    void post_request(uint32_t token, const std::vector<uint8_t>& msg)
    {
        ctl::stream_event e;
        e.kind = ctl::stream_event::request;
        e.token = token;
        e.client_ip_be = rte_cpu_to_be_32(0xc6120032); // 198.18.0.50
        e.client_port_be = rte_cpu_to_be_16(static_cast<uint16_t>(50000 + (token & 0xff)));
        e.local_ip_be = rte_cpu_to_be_32(r->ip(0));
        e.local_port_be = rte_cpu_to_be_16(3478);
        e.tls = true;
        e.msg = msg;
        hub_.post(0, std::move(e));
    }
    void post_closed(uint32_t token)
    {
        ctl::stream_event e;
        e.kind = ctl::stream_event::closed;
        e.token = token;
        e.why = "peer closed";
        hub_.post(0, std::move(e));
    }

    // An Allocate (UDP relay), signed when `nonce` is given.
    std::vector<uint8_t> allocate(const std::string& nonce, uint8_t txid0)
    {
        return request(turn::method::allocate, nonce, txid0, [](turn::builder& b) {
            const uint8_t udp[4] = {17, 0, 0, 0};
            b.add(turn::attr::requested_transport, udp, sizeof(udp));
        });
    }
    template <typename Fill>
    std::vector<uint8_t> request(turn::method m, const std::string& nonce, uint8_t txid0,
                                 Fill&& fill)
    {
        return turn_request(m, nonce, txid0, std::forward<Fill>(fill), username_, realm, key_);
    }

    // The class and, for errors, the code of an answer; its NONCE if any.
    static void read_answer(const ctl::stream_command& c, turn::msg_class& cls, uint16_t& code,
                            std::string& nonce)
    {
        turn::message m;
        ASSERT_EQ(turn::parse(c.msg.data(), c.msg.size(), m), turn::parse_status::ok);
        cls = m.cls;
        code = 0;
        if (const turn::attr_view* e = m.find(turn::attr::error_code)) {
            ASSERT_TRUE(turn::read_error_code(*e, code));
        }
        if (const turn::attr_view* n = m.find(turn::attr::nonce))
            nonce.assign(reinterpret_cast<const char*>(n->value), n->len);
    }

    // 401 with a nonce, then the signed Allocate: the bind and the success.
    std::string allocate_on(uint32_t token)
    {
        post_request(token, allocate("", 1));
        auto cmds = pump();
        EXPECT_EQ(cmds.size(), 1u);
        if (cmds.size() != 1)
            return {};
        EXPECT_EQ(cmds[0].kind, ctl::stream_command::send);
        EXPECT_EQ(cmds[0].token, token);
        turn::msg_class cls;
        uint16_t code;
        std::string nonce;
        read_answer(cmds[0], cls, code, nonce);
        EXPECT_EQ(code, 401);
        EXPECT_FALSE(nonce.empty());

        post_request(token, allocate(nonce, 2));
        cmds = pump();
        EXPECT_EQ(cmds.size(), 2u);
        if (cmds.size() != 2)
            return nonce;
        EXPECT_EQ(cmds[0].kind, ctl::stream_command::bind) << "bind goes before the answer";
        EXPECT_EQ(cmds[0].token, token);
        EXPECT_EQ(cmds[0].worker, 0);
        EXPECT_EQ(cmds[0].iface, 0);
        EXPECT_EQ(cmds[1].kind, ctl::stream_command::send);
        read_answer(cmds[1], cls, code, nonce);
        EXPECT_EQ(cls, turn::msg_class::success);
        turn::message m;
        EXPECT_EQ(turn::parse(cmds[1].msg.data(), cmds[1].msg.size(), m), turn::parse_status::ok);
        const turn::attr_view* xr = m.find(turn::attr::xor_relayed_address);
        EXPECT_NE(xr, nullptr);
        if (xr != nullptr) {
            turn::transport_addr ra;
            EXPECT_TRUE(turn::read_xor_address(m, *xr, ra));
            EXPECT_EQ(ra.ip4_be(), rte_cpu_to_be_32(r->ip(0)));
            EXPECT_EQ(rte_cpu_to_be_16(ra.port), cmds[0].relay_port_be);
        }
        return nonce;
    }

    const ctl::turn_allocation* by_token(uint32_t token) const
    {
        for (auto& [id, a] : tm_->allocations())
            if (a->origin.stream == token)
                return a.get();
        return nullptr;
    }

    bool with_v6_ = false; // before SetUp: the interface gets 2001:2::1/64 too
    ctl::stream_hub hub_{1};
    std::unique_ptr<ctl::turn_manager> tm_;
    secret_dir secrets_;
    std::string username_;
    uint8_t key_[turn::long_term_key_len] = {};
};

} // namespace

TEST_F(TurnStreamControl, AllocateBindsTheConnection)
{
    allocate_on(tok1);
    const ctl::turn_allocation* a = by_token(tok1);
    ASSERT_NE(a, nullptr);
    EXPECT_TRUE(a->installed);
    EXPECT_EQ(a->da->stream, tok1) << "the worker knows the client is a connection";
    EXPECT_EQ(a->da->relay_laddr, r->dp->ifc(0).laddr4) << "relayed from the IPv4 slot";
    EXPECT_EQ(r->dp->laddr(a->da->relay_laddr).family, 4);
    EXPECT_STREQ(a->origin.transport(), "tls");
    EXPECT_EQ(r->dp->wk(0).turn_allocs.load(), 1u);
}

// The interface has an IPv6 address, but a TCP/TLS client's media reaches
// its worker keyed by the IPv4 slot: IPv6 relayed addresses are refused.
class TurnStreamControlV6 : public TurnStreamControl {
protected:
    TurnStreamControlV6() { with_v6_ = true; }
};

TEST_F(TurnStreamControlV6, StreamClientsGetNoIpv6Relay)
{
    ASSERT_EQ(r->dp->nladdrs(), 2u);
    post_request(tok1, allocate("", 1));
    auto cmds = pump();
    ASSERT_EQ(cmds.size(), 1u);
    turn::msg_class cls;
    uint16_t code;
    std::string nonce;
    read_answer(cmds[0], cls, code, nonce);
    ASSERT_EQ(code, 401);
    auto with = [&](uint16_t type, uint8_t txid0) {
        return request(turn::method::allocate, nonce, txid0, [&](turn::builder& b) {
            const uint8_t udp[4] = {17, 0, 0, 0};
            b.add(turn::attr::requested_transport, udp, sizeof(udp));
            const uint8_t v6[4] = {2, 0, 0, 0};
            b.add(type, v6, sizeof(v6));
        });
    };
    post_request(tok1, with(turn::attr::requested_address_family, 3));
    cmds = pump();
    ASSERT_EQ(cmds.size(), 1u);
    std::string n;
    read_answer(cmds[0], cls, code, n);
    EXPECT_EQ(code, 440) << "REQUESTED-ADDRESS-FAMILY IPv6 over TLS";
    EXPECT_TRUE(tm_->allocations().empty());

    post_request(tok1, with(turn::attr::additional_address_family, 4));
    cmds = pump();
    ASSERT_EQ(cmds.size(), 2u) << "bind and the success";
    read_answer(cmds[1], cls, code, n);
    EXPECT_EQ(cls, turn::msg_class::success);
    turn::message m;
    ASSERT_EQ(turn::parse(cmds[1].msg.data(), cmds[1].msg.size(), m), turn::parse_status::ok);
    EXPECT_NE(m.find(turn::attr::address_error_code), nullptr) << "IPv4 only, with the reason";
    const ctl::turn_allocation* a = by_token(tok1);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->relay2_port, 0);
    EXPECT_EQ(a->da->relay2_laddr, dp::no_laddr);
}

TEST_F(TurnStreamControl, SecondAllocateOnTheConnectionIs437)
{
    const std::string nonce = allocate_on(tok1);
    post_request(tok1, allocate(nonce, 9));
    auto cmds = pump();
    ASSERT_EQ(cmds.size(), 1u);
    turn::msg_class cls;
    uint16_t code;
    std::string n;
    read_answer(cmds[0], cls, code, n);
    EXPECT_EQ(code, 437) << "one allocation per connection";
    // Another connection of the same client address gets its own.
    allocate_on(tok2);
    EXPECT_EQ(tm_->allocations().size(), 2u);
}

TEST_F(TurnStreamControl, ConnectionClosedEndsItsAllocation)
{
    allocate_on(tok1);
    ASSERT_EQ(tm_->allocations().size(), 1u);
    post_closed(tok1);
    auto cmds = pump();
    EXPECT_TRUE(cmds.empty()) << "no close for a connection that is gone";
    EXPECT_TRUE(tm_->allocations().empty());
    EXPECT_EQ(tm_->stats().allocations_ended, 1u);
    EXPECT_EQ(r->dp->wk(0).turn_allocs.load(), 0u);
    // A closed event of a connection without an allocation is nothing.
    post_closed(tok2);
    EXPECT_TRUE(pump().empty());
}

TEST_F(TurnStreamControl, RefreshToZeroAnswersThenCloses)
{
    const std::string nonce = allocate_on(tok1);
    post_request(tok1, request(turn::method::refresh, nonce, 5, [](turn::builder& b) {
                     b.add_u32(turn::attr::lifetime, 0);
                 }));
    auto cmds = pump();
    ASSERT_EQ(cmds.size(), 2u);
    EXPECT_EQ(cmds[0].kind, ctl::stream_command::send);
    turn::msg_class cls;
    uint16_t code;
    std::string n;
    read_answer(cmds[0], cls, code, n);
    EXPECT_EQ(cls, turn::msg_class::success);
    EXPECT_EQ(cmds[1].kind, ctl::stream_command::close);
    EXPECT_EQ(cmds[1].token, tok1);
    EXPECT_TRUE(tm_->allocations().empty());
}

TEST_F(TurnStreamControl, DeleteByOperatorClosesTheConnection)
{
    allocate_on(tok1);
    ASSERT_EQ(ids().size(), 1u);
    bool done = false;
    ASSERT_TRUE(tm_->remove(ids()[0], [&](bool) { done = true; }));
    auto cmds = pump();
    EXPECT_TRUE(done);
    ASSERT_EQ(cmds.size(), 1u);
    EXPECT_EQ(cmds[0].kind, ctl::stream_command::close);
    EXPECT_EQ(cmds[0].token, tok1);
}

TEST_F(TurnStreamControl, GarbageIsABadRequest)
{
    post_request(tok1, {0x00, 0x01, 0x00, 0x00, 1, 2, 3});
    EXPECT_TRUE(pump().empty());
    EXPECT_EQ(tm_->stats().bad_requests, 1u);
}

// ---- RFC 8656 address families (the fixture's interface has IPv4 only) ----

namespace {

class TurnFamilies : public TurnStreamControl {
protected:
    // A NONCE for `token`'s client (the 401 of an unsigned Allocate).
    std::string nonce_for(uint32_t token)
    {
        post_request(token, allocate("", 1));
        auto cmds = pump();
        EXPECT_EQ(cmds.size(), 1u);
        std::string nonce;
        if (cmds.size() == 1) {
            turn::msg_class cls;
            uint16_t code = 0;
            read_answer(cmds[0], cls, code, nonce);
            EXPECT_EQ(code, 401);
        }
        return nonce;
    }
    // A signed Allocate with the family attributes `raf`/`aaf` (0 = absent);
    // the answer's bytes (the last command sent).
    std::vector<uint8_t> allocate_families(uint32_t token, const std::string& nonce, uint8_t raf,
                                           uint8_t aaf)
    {
        post_request(token, request(turn::method::allocate, nonce, 7, [&](turn::builder& b) {
                         const uint8_t udp[4] = {17, 0, 0, 0};
                         b.add(turn::attr::requested_transport, udp, sizeof(udp));
                         if (raf != 0)
                             b.add_address_family(turn::attr::requested_address_family, raf);
                         if (aaf != 0)
                             b.add_address_family(turn::attr::additional_address_family, aaf);
                     }));
        auto cmds = pump();
        EXPECT_FALSE(cmds.empty());
        if (cmds.empty())
            return {};
        EXPECT_EQ(cmds.back().kind, ctl::stream_command::send);
        return cmds.back().msg;
    }
    static uint16_t error_of(const std::vector<uint8_t>& msg)
    {
        turn::message m;
        EXPECT_EQ(turn::parse(msg.data(), msg.size(), m), turn::parse_status::ok);
        uint16_t code = 0;
        if (const turn::attr_view* e = m.find(turn::attr::error_code)) {
            EXPECT_TRUE(turn::read_error_code(*e, code));
        }
        return code;
    }
    // A signed CreatePermission for `peer`: the answer's error code (0 = success).
    uint16_t permit(uint32_t token, const std::string& nonce, const turn::transport_addr& peer)
    {
        post_request(token, request(turn::method::create_permission, nonce, 11,
                                    [&](turn::builder& b) {
                                        b.add_xor_address(turn::attr::xor_peer_address, peer);
                                    }));
        auto cmds = pump();
        EXPECT_EQ(cmds.size(), 1u);
        return cmds.empty() ? 0xffff : error_of(cmds.back().msg);
    }
};

turn::transport_addr v6_peer()
{
    uint8_t ip[16] = {0x20, 0x01, 0x00, 0x02}; // 2001:2::5
    ip[15] = 5;
    return turn::transport_addr::v6(ip, 4000);
}

} // namespace

TEST_F(TurnFamilies, RequestedIpv6WithoutAnIpv6AddressIs440)
{
    const std::string nonce = nonce_for(tok1);
    EXPECT_EQ(error_of(allocate_families(tok1, nonce, 6, 0)), 440);
    EXPECT_TRUE(tm_->allocations().empty());
}

TEST_F(TurnFamilies, RequestedIpv4IsAnOrdinaryAllocation)
{
    const std::string nonce = nonce_for(tok1);
    EXPECT_EQ(error_of(allocate_families(tok1, nonce, 4, 0)), 0);
    ASSERT_EQ(tm_->allocations().size(), 1u);
    EXPECT_EQ(by_token(tok1)->family, 4);
    EXPECT_EQ(by_token(tok1)->family2, 0);
}

TEST_F(TurnFamilies, BothFamilyAttributesAre400)
{
    const std::string nonce = nonce_for(tok1);
    EXPECT_EQ(error_of(allocate_families(tok1, nonce, 4, 6)), 400);
    EXPECT_EQ(error_of(allocate_families(tok1, nonce, 0, 4)), 400) << "ADDITIONAL IPv4";
    EXPECT_TRUE(tm_->allocations().empty());
}

TEST_F(TurnFamilies, DualAllocationWithoutIpv6GetsAddressErrorCode)
{
    const std::string nonce = nonce_for(tok1);
    const std::vector<uint8_t> ans = allocate_families(tok1, nonce, 0, 6);
    turn::message m;
    ASSERT_EQ(turn::parse(ans.data(), ans.size(), m), turn::parse_status::ok);
    EXPECT_EQ(m.cls, turn::msg_class::success);
    unsigned relayed = 0;
    for (unsigned i = 0; i < m.nattrs; i++) {
        if (m.attrs[i].type != turn::attr::xor_relayed_address)
            continue;
        turn::transport_addr ra;
        ASSERT_TRUE(turn::read_xor_address(m, m.attrs[i], ra));
        EXPECT_EQ(ra.family, 4);
        relayed++;
    }
    EXPECT_EQ(relayed, 1u) << "the IPv4 relayed address alone";
    const turn::attr_view* ae = m.find(turn::attr::address_error_code);
    ASSERT_NE(ae, nullptr);
    uint8_t fam = 0;
    uint16_t code = 0;
    ASSERT_TRUE(turn::read_address_error_code(*ae, fam, code));
    EXPECT_EQ(fam, 6);
    EXPECT_EQ(code, 440);
    ASSERT_NE(by_token(tok1), nullptr);
    EXPECT_EQ(by_token(tok1)->family2, 0);
}

TEST_F(TurnFamilies, Ipv6PeerOfAnIpv4AllocationIs443)
{
    r->cfg.turn.allowed_peer = {"2001:2::/48", "198.18.0.0/15"};
    std::string err;
    ASSERT_EQ(tm_->init(err), 0) << err;
    const std::string nonce = allocate_on(tok1);
    EXPECT_EQ(permit(tok1, nonce, v6_peer()), 443);
    EXPECT_EQ(tm_->permission_count(), 0u);
    EXPECT_EQ(permit(tok1, nonce, turn::transport_addr::v4(rte_cpu_to_be_32(0xc6120063), 4000)),
              0); // 198.18.0.99
    EXPECT_EQ(tm_->permission_count(), 1u);
}

TEST_F(TurnFamilies, ChannelBindChecksFamilyAndPeer)
{
    r->cfg.turn.allowed_peer = {"2001:2::/48", "198.18.0.0/15"};
    std::string err;
    ASSERT_EQ(tm_->init(err), 0) << err;
    const std::string nonce = allocate_on(tok1);
    auto bind = [&](uint16_t number, const turn::transport_addr& peer, uint8_t txid0) {
        post_request(tok1, request(turn::method::channel_bind, nonce, txid0,
                                   [&](turn::builder& b) {
                                       b.add_u32(turn::attr::channel_number,
                                                 uint32_t{number} << 16);
                                       b.add_xor_address(turn::attr::xor_peer_address, peer);
                                   }));
        auto cmds = pump();
        EXPECT_EQ(cmds.size(), 1u);
        return cmds.empty() ? uint16_t{0xffff} : error_of(cmds.back().msg);
    };
    const auto p1 = turn::transport_addr::v4(rte_cpu_to_be_32(0xc6120063), 4000); // 198.18.0.99
    const auto p2 = turn::transport_addr::v4(rte_cpu_to_be_32(0xc6120063), 4002);
    EXPECT_EQ(bind(0x4000, v6_peer(), 20), 443);
    EXPECT_EQ(bind(0x4000, p1, 21), 0);
    EXPECT_EQ(bind(0x4000, p1, 22), 0) << "a refresh of the same binding";
    EXPECT_EQ(bind(0x4000, p2, 23), 400) << "the number is bound to another peer";
    EXPECT_EQ(bind(0x4001, p1, 24), 400) << "the peer is bound to another number";
    EXPECT_EQ(bind(0x4001, p2, 25), 0);
    EXPECT_EQ(tm_->channel_count(), 2u);
    EXPECT_EQ(tm_->permission_count(), 1u) << "one permission per address";
}
