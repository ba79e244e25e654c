// The SRTP fast path (worker::forward_srtp): a leg with SRTP on either side
// and a single target, both IPv4, forwards its remote's packets from line
// 0's copies of the target's remote, relay port and next hop's MAC, without
// forward()'s latching, target walk and emit's route and MAC lookups. These
// tests check that it sends, byte for byte, what an independent SRTP
// implementation (the libsrtp engine with the same keys) and the general path
// send; that it is the path taken (it uses line 0's MAC); that a packet it
// cannot finish - no MAC yet, a new source - reaches forward() untouched;
// that its drops and counters are the general path's, SRTCP included and
// across a call switched between plain and SRTP; and that conference and
// bridged legs stay with forward().
#include "crypto/srtp_context.h"
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/eal_env.h"
#include "tests/support/srtp_peer.h"
#include "tests/dataplane/v6_frames.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <rte_cycles.h>

ISAR_TEST_EAL_ENV("test_fast_srtp");

using namespace isar;
using namespace isar::test;
using dp::drop;

namespace {

constexpr uint16_t port_a = 30100, port_b = 30101;
constexpr uint32_t ssrc = 0x5151;

crypto::key_material key_of(crypto::suite s, uint8_t seed)
{
    crypto::key_material k;
    k.s = s;
    for (size_t i = 0; i < sizeof k.key; i++)
        k.key[i] = static_cast<uint8_t>(seed + 7 * i);
    for (size_t i = 0; i < sizeof k.salt; i++)
        k.salt[i] = static_cast<uint8_t>(seed ^ (13 * i));
    return k;
}

enum class mode { transcrypt, pass, decrypt, encrypt, plain };

class FastSrtp : public FlowRelayTest {
protected:
    void SetUp() override { begin({}); }
    void begin(const relay_options& o)
    {
        start(o);
        r->learn(alice);
        r->learn(bob);
    }
    // alice on relay port 30100 -> bob on 30101, with the keys `m` says;
    // `tweak(leg, i)` changes a leg before the install. The relay's contexts
    // are the auto engine's, the peers' (what alice protects with, what the
    // relay must send bob) libsrtp's.
    template <typename Tweak>
    void install(mode m, Tweak&& tweak)
    {
        const auto ka = key_of(crypto::suite::aes_cm_128_hmac_sha1_80, 1);
        const auto kb = m == mode::pass ? ka : key_of(crypto::suite::aes_cm_128_hmac_sha1_80, 99);
        const bool in = m != mode::encrypt && m != mode::plain;
        const bool out = m != mode::decrypt && m != mode::plain;
        in_a_ = in ? srtp_peer(ka, crypto::engine::auto_select) : nullptr;
        out_b_ = out ? srtp_peer(kb, crypto::engine::auto_select) : nullptr;
        alice_tx_ = in ? srtp_peer(ka) : nullptr;
        bob_ref_ = out ? srtp_peer(kb) : nullptr;
        mode_ = m;
        install_two_legs([&](dp::leg& l, unsigned i) {
            const peer& p = i == 0 ? alice : bob;
            l.laddr = 0;
            l.family = 4;
            l.local_port_be = rte_cpu_to_be_16(i == 0 ? port_a : port_b);
            l.remote.store(dp::pack_ep(rte_cpu_to_be_32(p.ip), rte_cpu_to_be_16(p.port)));
            if (i == 0) {
                l.in_ctx = in_a_.get();
                l.verify_only = m == mode::pass;
            } else {
                l.out_ctx = out_b_.get();
            }
            tweak(l, i);
        });
    }
    void install(mode m)
    {
        install(m, [](dp::leg&, unsigned) {});
    }
    // RTP packet `seq` as alice puts it on the wire, and as bob must get it.
    bytes wire(uint16_t seq, size_t len = 172)
    {
        const bytes pl = rtp(seq, ssrc, len);
        return alice_tx_ ? srtp_protect(*alice_tx_, pl) : pl;
    }
    bytes for_bob(const bytes& plain_rtp)
    {
        if (mode_ == mode::pass || mode_ == mode::decrypt || mode_ == mode::plain)
            return mode_ == mode::pass ? last_wire_ : plain_rtp;
        return srtp_protect(*bob_ref_, plain_rtp);
    }
    // Sends alice's packet `seq`; returns what the worker sent, and in
    // `want` the frame bob must get.
    std::vector<bytes> from_alice(uint16_t seq, bytes& want, size_t len = 172,
                                  const peer& src = alice)
    {
        const bytes pl = rtp(seq, ssrc, len);
        last_wire_ = alice_tx_ ? srtp_protect(*alice_tx_, pl) : pl;
        const auto out = run(r->from_peer(src, port_a, last_wire_));
        last_for_bob_ = for_bob(pl);
        want = r->expected(bob, port_b, last_for_bob_);
        return out;
    }
    dp::leg& leg(unsigned i) { return sess_->legs[i]; }

    // Destroyed after TearDown removed the session from the worker.
    std::unique_ptr<crypto::srtp_context> in_a_, out_b_, alice_tx_, bob_ref_;
    mode mode_ = mode::transcrypt;
    bytes last_wire_;
    bytes last_for_bob_; // the UDP payload bob must get for the last packet
};

} // namespace

TEST_F(FastSrtp, SendsWhatTheGeneralPathAndLibsrtpSend)
{
    for (mode m : {mode::transcrypt, mode::pass, mode::decrypt, mode::encrypt}) {
        SCOPED_TRACE(static_cast<int>(m));
        install(m);
        ASSERT_EQ(leg(0).hot & (dp::hot_fast | dp::hot_fast_srtp | dp::hot_mac),
                  dp::hot_fast_srtp | dp::hot_mac)
                << "single-target SRTP, resolved at install";
        EXPECT_FALSE(dp::leg_plain(leg(0))) << "the act pass must prefetch the contexts";
        uint64_t frames = 0;
        for (uint16_t seq = 1; seq <= 6; seq++) {
            // The last three on the general path: the same bytes.
            if (seq == 4)
                leg(0).hot &= static_cast<uint8_t>(~dp::hot_fast_srtp);
            bytes want;
            const auto out = from_alice(seq, want, 60 + 37 * seq); // odd lengths too
            ASSERT_EQ(out.size(), 1u) << "seq " << seq;
            EXPECT_EQ(hex(out[0]), hex(want)) << "seq " << seq;
            EXPECT_TRUE(udp4_cksum_ok(out[0])) << "seq " << seq;
            frames += out[0].size();
        }
        EXPECT_EQ(leg(0).ctr.in_pkts.load(), 6u);
        EXPECT_EQ(leg(0).unfwd_pkts.load(), 0u) << "not a hot_fast leg's counter";
        EXPECT_EQ(dp::leg_out(*sess_, 1).pkts, 6u);
        EXPECT_EQ(dp::leg_out(*sess_, 1).bytes, frames);
        // Every packet through the RTP statistics (after the probation).
        EXPECT_EQ(leg(0).stats.rtp.received.load(), 6u - (dp::rtp_min_sequential - 1));
        EXPECT_EQ(r->total_drops(), 0u);
        command(dp::cmd_op::del_session);
        sess_.reset();
    }
    EXPECT_EQ(r->sum(&dp::worker_stats::fwd_pkts), 24u);
    r->expect_accounted("fast srtp");
}

// Line 0's MAC, not the neighbour table's: set to another MAC at the same
// generation, it is the one the packet leaves with - so forward_srtp sent
// it. A change in the neighbour table is followed by the next packet, and
// a removed entry holds the packet (general path) undecrypted: once the MAC
// is back, the next packets are decrypted once and sent.
TEST_F(FastSrtp, TakesLineZerosMacAndFallsBackBeforeTouchingThePacket)
{
    install(mode::transcrypt);
    const rte_ether_addr marked = mac(0x77, 0x77);
    leg(0).fwd_mac = marked;
    bytes want;
    auto out = from_alice(1, want);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(hex(out[0]), hex(r->expected(bob, port_b, last_for_bob_, 0, marked)))
            << "line 0's MAC: the fast path";

    const rte_ether_addr moved = mac(0x99, 0x14);
    ASSERT_TRUE(r->dp->ifc(0).neigh->update(rte_cpu_to_be_32(bob.ip), moved));
    out = from_alice(2, want);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(hex(out[0]), hex(r->expected(bob, port_b, last_for_bob_, 0, moved)))
            << "the neighbour's new MAC";

    r->dp->ifc(0).neigh->invalidate(rte_cpu_to_be_32(bob.ip));
    const uint64_t held = r->sum(&dp::worker_stats::held_pkts);
    const bytes pl3 = rtp(3, ssrc, 172);
    EXPECT_TRUE(run(r->from_peer(alice, port_a, srtp_protect(*alice_tx_, pl3))).empty());
    EXPECT_EQ(r->sum(&dp::worker_stats::held_pkts), held + 1) << "held by the general path";
    EXPECT_EQ(leg(0).hot & dp::hot_mac, 0);
    EXPECT_EQ(r->total_drops(), 0u) << "not decrypted twice: no replay, no auth failure";
    r->settle();
    for (auto& p : r->ports)
        p->flush(); // the ARP request and the held packet control sent
    r->learn(bob);
    out = from_alice(4, want);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(hex(out[0]), hex(want));
    EXPECT_NE(leg(0).hot & dp::hot_mac, 0) << "resolved again";
    EXPECT_EQ(leg(0).ctr.in_pkts.load(), 4u);
    EXPECT_EQ(r->total_drops(), 0u);
}

// Forged, replayed and rate-limited packets are the drops the general path
// counts, on the leg and the worker; none is sent.
TEST_F(FastSrtp, DropsAreTheGeneralPathsDrops)
{
    install(mode::transcrypt);
    const rte_ether_addr marked = mac(0x77, 0x77);
    leg(0).fwd_mac = marked; // the fast path's packets leave with it
    bytes want;
    auto out = from_alice(1, want);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(hex(out[0]), hex(r->expected(bob, port_b, last_for_bob_, 0, marked)));
    const bytes replay = last_wire_;
    EXPECT_TRUE(run(r->from_peer(alice, port_a, replay)).empty());
    bytes forged = srtp_protect(*alice_tx_, rtp(2, ssrc, 172));
    forged[30] ^= 1;
    EXPECT_TRUE(run(r->from_peer(alice, port_a, forged)).empty());
    EXPECT_EQ(r->drops(drop::srtp_replay), 1u);
    EXPECT_EQ(r->drops(drop::srtp_auth), 1u);
    EXPECT_EQ(leg(0).stats.drops[static_cast<unsigned>(drop::srtp_replay)].load(), 1u);
    EXPECT_EQ(leg(0).stats.drops[static_cast<unsigned>(drop::srtp_auth)].load(), 1u);
    EXPECT_EQ(leg(0).ctr.in_pkts.load(), 1u) << "a failed packet is not received";
    EXPECT_EQ(leg(0).hot & dp::hot_fast_srtp, dp::hot_fast_srtp);
    command(dp::cmd_op::del_session);
    sess_.reset();

    // One packet per hour, a burst of one: the second is dropped before
    // any crypto (alice_tx_ goes on: the relay's context never saw it).
    install(mode::transcrypt, [](dp::leg& l, unsigned i) {
        if (i == 0) {
            l.rl_interval_tsc = rte_get_tsc_hz() * 3600;
            l.rl_burst_tsc = 0;
        }
    });
    ASSERT_NE(leg(0).hot & dp::hot_rl, 0);
    ASSERT_NE(leg(0).hot & dp::hot_fast_srtp, 0);
    ASSERT_EQ(from_alice(1, want).size(), 1u);
    EXPECT_EQ(from_alice(2, want).size(), 0u);
    EXPECT_EQ(r->drops(drop::rate_limit), 1u);
    EXPECT_EQ(leg(0).stats.drops[static_cast<unsigned>(drop::rate_limit)].load(), 1u);
    EXPECT_EQ(leg(0).ctr.in_pkts.load(), 1u);
    r->expect_accounted("drops");
}

// The MTU is checked on what leaves, the SRTP trailer included: a packet
// that fits as received but not protected is a counted drop of the target.
TEST_F(FastSrtp, MtuIsCheckedWithTheTrailer)
{
    install(mode::encrypt);
    const uint32_t ip_len = 20 + 8 + 300;
    const uint32_t saved = r->dp->ifc(0).mtu;
    r->dp->ifc(0).mtu = ip_len + 10; // the 10-byte tag fits
    const rte_ether_addr marked = mac(0x77, 0x77);
    leg(0).fwd_mac = marked; // the fast path's packets leave with it
    bytes want;
    auto out = from_alice(1, want, 300);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(hex(out[0]), hex(r->expected(bob, port_b, last_for_bob_, 0, marked)));
    r->dp->ifc(0).mtu = ip_len + 9;
    out = from_alice(2, want, 300);
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(r->drops(drop::mtu_exceeded), 1u);
    EXPECT_EQ(leg(1).stats.drops[static_cast<unsigned>(drop::mtu_exceeded)].load(), 1u);
    r->dp->ifc(0).mtu = saved;
    r->expect_accounted("mtu");
}

// Not for the fast path: a leg whose source is not its remote (it goes to
// forward(), which latches or drops it untouched), and a leg with more than
// one target or an IPv6 side (never hot_fast_srtp).
TEST_F(FastSrtp, NewSourcesAndOtherLegsStayGeneral)
{
    install(mode::transcrypt, [](dp::leg& l, unsigned i) {
        if (i == 0)
            l.remote.store(0); // alice latches
    });
    ASSERT_NE(leg(0).hot & dp::hot_fast_srtp, 0);
    bytes want;
    auto out = from_alice(1, want);
    ASSERT_EQ(out.size(), 1u) << "latched by forward()";
    EXPECT_EQ(hex(out[0]), hex(want));
    EXPECT_EQ(leg(0).remote.load(),
              dp::pack_ep(rte_cpu_to_be_32(alice.ip), rte_cpu_to_be_16(alice.port)));
    out = from_alice(2, want, 172, mallory);
    EXPECT_TRUE(out.empty()) << "strict source";
    EXPECT_EQ(r->drops(drop::src_mismatch), 1u);
    EXPECT_EQ(r->drops(drop::srtp_auth) + r->drops(drop::srtp_replay), 0u)
            << "dropped before its SRTP was checked";
    out = from_alice(3, want);
    ASSERT_EQ(out.size(), 1u);
    command(dp::cmd_op::del_session);
    sess_.reset();

    install(mode::transcrypt, [](dp::leg& l, unsigned i) {
        if (i == 1)
            l.remote.store(0); // bob not known yet: nothing to send to
    });
    EXPECT_EQ(leg(0).hot & dp::hot_mac, 0);
    EXPECT_TRUE(from_alice(1, want).empty());
    EXPECT_EQ(r->drops(drop::target_no_remote), 1u);
    r->expect_accounted("general");
}

// SRTCP takes the fast path too: decrypted with alice's key, protected with
// bob's (what bob's own libsrtp context accepts), with line 0's MAC.
TEST_F(FastSrtp, SrtcpTakesTheFastPath)
{
    install(mode::transcrypt);
    const rte_ether_addr marked = mac(0x77, 0x77);
    leg(0).fwd_mac = marked;
    bytes sr(28, 0x33); // a sender report without report blocks
    sr[0] = 0x80;
    sr[1] = 200;
    sr[2] = 0;
    sr[3] = 6;
    bytes wire = sr;
    wire.resize(sr.size() + crypto::max_trailer);
    size_t len = 0;
    ASSERT_EQ(alice_tx_->protect_rtcp(wire.data(), sr.size(), wire.size(), &len), crypto::status::ok);
    wire.resize(len);
    const auto out = run(r->from_peer(alice, port_a, wire));
    ASSERT_EQ(out.size(), 1u);
    const auto v = parse_udp4(out[0]);
    ASSERT_TRUE(v);
    bytes got = v->payload;
    EXPECT_TRUE(udp4_cksum_ok(out[0]));
    EXPECT_EQ(hex(out[0]), hex(r->expected(bob, port_b, got, 0, marked))) << "line 0's MAC";
    const auto bob_rx = srtp_peer(key_of(crypto::suite::aes_cm_128_hmac_sha1_80, 99));
    size_t plain = 0;
    ASSERT_EQ(bob_rx->unprotect_rtcp(got.data(), got.size(), &plain), crypto::status::ok);
    got.resize(plain);
    EXPECT_EQ(got, sr);
    EXPECT_EQ(r->total_drops(), 0u);
}

// A live call switched from plain to SRTP and back (set_crypto) moves
// between hot_fast and hot_fast_srtp; what control reports bob was sent
// counts every packet across both paths (leg_out: the fast path's in_* -
// unfwd_* while hot_fast, out_* otherwise).
TEST_F(FastSrtp, SwitchingPlainAndSrtpKeepsTheCounts)
{
    install(mode::plain);
    ASSERT_EQ(leg(0).hot & (dp::hot_fast | dp::hot_fast_srtp), dp::hot_fast);
    bytes want;
    for (uint16_t seq = 1; seq <= 3; seq++) {
        const auto out = from_alice(seq, want);
        ASSERT_EQ(out.size(), 1u);
        EXPECT_EQ(hex(out[0]), hex(want));
    }
    const auto ka = key_of(crypto::suite::aes_cm_128_hmac_sha1_80, 1);
    const auto kb = key_of(crypto::suite::aes_cm_128_hmac_sha1_80, 99);
    in_a_ = srtp_peer(ka, crypto::engine::auto_select);
    out_b_ = srtp_peer(kb, crypto::engine::auto_select);
    alice_tx_ = srtp_peer(ka);
    bob_ref_ = srtp_peer(kb);
    mode_ = mode::transcrypt;
    set_crypto(0, dp::crypto_set_in, in_a_.get(), nullptr);
    set_crypto(1, dp::crypto_set_out, nullptr, out_b_.get());
    ASSERT_EQ(leg(0).hot & (dp::hot_fast | dp::hot_fast_srtp), dp::hot_fast_srtp);
    for (uint16_t seq = 4; seq <= 5; seq++) {
        const auto out = from_alice(seq, want);
        ASSERT_EQ(out.size(), 1u);
        EXPECT_EQ(hex(out[0]), hex(want));
    }
    EXPECT_EQ(dp::leg_out(*sess_, 1).pkts, 5u);

    set_crypto(0, dp::crypto_set_in, nullptr, nullptr);
    set_crypto(1, dp::crypto_set_out, nullptr, nullptr);
    ASSERT_EQ(leg(0).hot & (dp::hot_fast | dp::hot_fast_srtp), dp::hot_fast);
    alice_tx_.reset();
    mode_ = mode::plain;
    const auto out = from_alice(6, want);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(hex(out[0]), hex(want));
    EXPECT_EQ(dp::leg_out(*sess_, 1).pkts, 6u);
    EXPECT_EQ(leg(0).ctr.in_pkts.load(), 6u);
    EXPECT_EQ(r->total_drops(), 0u);
}

// A leg with two targets is not for the fast path: each gets its copy from
// forward().
TEST_F(FastSrtp, ConferenceLegsStayGeneral)
{
    const auto ka = key_of(crypto::suite::aes_cm_128_hmac_sha1_80, 1);
    in_a_ = srtp_peer(ka, crypto::engine::auto_select);
    alice_tx_ = srtp_peer(ka);
    mode_ = mode::decrypt;
    r->learn(carol);
    sess_ = std::make_unique<dp::session>(3);
    const peer* who[3] = {&alice, &bob, &carol};
    for (unsigned i = 0; i < 3; i++) {
        dp::leg& l = sess_->legs[i];
        l.sess = sess_.get();
        l.peers = sess_->legs.get();
        l.index = static_cast<uint8_t>(i);
        l.port_id = r->ports[0]->id();
        l.local_port_be = rte_cpu_to_be_16(static_cast<uint16_t>(port_a + i));
        l.remote.store(dp::pack_ep(rte_cpu_to_be_32(who[i]->ip), rte_cpu_to_be_16(who[i]->port)));
        l.target_mask = static_cast<uint16_t>(7u & ~(1u << i));
        l.ntargets = 2;
        for (unsigned k = 0, t = 0; t < 3; t++)
            if (t != i)
                l.targets[k++] = static_cast<uint8_t>(t);
    }
    sess_->legs[0].in_ctx = in_a_.get();
    command(dp::cmd_op::add_session);
    EXPECT_EQ(leg(0).hot & (dp::hot_fast | dp::hot_fast_srtp), 0);
    bytes want;
    const auto out = from_alice(1, want);
    ASSERT_EQ(out.size(), 2u);
    std::vector<std::string> got{hex(out[0]), hex(out[1])};
    std::vector<std::string> exp{hex(want), hex(r->expected(carol, port_a + 2, last_for_bob_))};
    std::sort(got.begin(), got.end());
    std::sort(exp.begin(), exp.end());
    EXPECT_EQ(got, exp) << "bob's and carol's copies, decrypted";
}

// An IPv6 side (a bridged call) is not for it either.
class FastSrtpDual : public FastSrtp {
protected:
    void SetUp() override
    {
        relay_options o;
        o.tweak = [](dp::dp_config& c) { c.ifaces[0].addrs.push_back(slot6(relay6)); };
        begin(o);
        ASSERT_TRUE(r->dp->ifc(0).neigh->update6(bob6.ip, bob6.mac));
    }
};

TEST_F(FastSrtpDual, BridgedLegsStayGeneral)
{
    install(mode::transcrypt, [](dp::leg& l, unsigned i) {
        if (i == 1) { // bob on the IPv6 slot
            l.laddr = 1;
            l.family = 6;
            l.remote6 = bob6.ip;
            l.remote.store(bob6.ep());
        }
    });
    EXPECT_EQ(leg(0).hot & (dp::hot_fast | dp::hot_fast_srtp), 0);
    EXPECT_EQ(leg(1).hot & (dp::hot_fast | dp::hot_fast_srtp), 0);
    bytes want;
    const auto out = from_alice(1, want);
    ASSERT_EQ(out.size(), 1u) << "bridged and transcrypted by forward()";
    EXPECT_EQ(out[0][12], 0x86);
    EXPECT_EQ(out[0][13], 0xdd);
    EXPECT_EQ(r->total_drops(), 0u);
}
