// Conferences through the real worker over net_ring: 200-leg fan-out with a
// key per receiver, ROC across pass-through <-> transcrypt switches after
// 65 536 packets, back-to-back leg.updates, SSRC quotas of a shared outbound
// context, and port exhaustion across workers. Every SRTP packet the relay
// emits is checked by an independent libsrtp context (the reference).
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <rte_ip.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_udp.h>

#include "crypto/srtp_context.h"
#include "crypto/suite.h"
#include "tests/dataplane/relay_fixture.h"
#include "tests/support/srtp_peer.h"
#include "tests/support/eal_env.h"

ISAR_TEST_EAL_ENV("test_conference");

using namespace isar;
using namespace isar::test;

namespace {

std::mt19937& rng()
{
    static std::mt19937 r(2026);
    return r;
}

std::string b64(const uint8_t* p, size_t n)
{
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = uint32_t(p[i]) << 16;
        if (i + 1 < n)
            v |= uint32_t(p[i + 1]) << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out += t[(v >> 18) & 63];
        out += t[(v >> 12) & 63];
        out += i + 1 < n ? t[(v >> 6) & 63] : '=';
        out += i + 2 < n ? t[v & 63] : '=';
    }
    return out;
}

struct key {
    std::string spec;
    crypto::key_material km;
};

key make_key(crypto::suite s)
{
    key k;
    k.km.s = s;
    uint8_t raw[crypto::max_master_key_len + crypto::max_master_salt_len];
    for (auto& b : raw)
        b = uint8_t(rng()());
    const size_t kl = crypto::suite_key_len(s), sl = crypto::suite_salt_len(s);
    std::memcpy(k.km.key, raw, kl);
    std::memcpy(k.km.salt, raw + kl, sl);
    k.spec = std::string(crypto::suite_name(s)) + ":" + b64(raw, kl + sl);
    return k;
}

// The reference: Debian's libsrtp2 behind Isar's libsrtp engine.
std::unique_ptr<crypto::srtp_context> libsrtp(const key& k)
{
    return srtp_peer(k.km);
}

bool unsrtp(crypto::srtp_context& c, bytes& p)
{
    size_t out = 0;
    if (c.unprotect_rtp(p.data(), p.size(), &out) != crypto::status::ok)
        return false;
    p.resize(out);
    return true;
}

peer participant(unsigned i) { return peer{alice.ip, uint16_t(10000 + i), alice.mac}; }

class Conference : public RelayTest {
protected:
    // Sends `payload` from `from` to relay port `port` and runs the relay.
    std::vector<udp4_view> relay_one(const peer& from, uint16_t port, const bytes& payload)
    {
        r->inject(r->from_peer(from, port, payload));
        r->settle();
        std::vector<udp4_view> out;
        for (const bytes& f : r->sent_by_workers(0)) {
            auto v = parse_udp4(f);
            EXPECT_TRUE(v);
            if (v)
                out.push_back(std::move(*v));
        }
        return out;
    }
    // `plain` from participant 0 to fan_of_ten's sender port `ps`: every one
    // of the ten receivers gets it, payload intact, both checksums right.
    void expect_fanned_to_ten(uint16_t ps, const bytes& plain)
    {
        auto out = relay_one(participant(0), ps, plain);
        ASSERT_EQ(out.size(), 10u);
        for (auto& v : out) {
            EXPECT_EQ(v.payload, plain);
            EXPECT_TRUE(v.udp_cksum_ok && v.ip_cksum_ok);
        }
    }
    // Sends every payload (in order) and returns what the relay emitted.
    std::vector<udp4_view> relay_many(const peer& from, uint16_t port, const std::vector<bytes>& ps)
    {
        std::vector<udp4_view> out;
        for (size_t i = 0; i < ps.size(); i += 256) {
            for (size_t j = i; j < std::min(ps.size(), i + 256); j++)
                r->inject(r->from_peer(from, port, ps[j]));
            r->settle();
            for (const bytes& f : r->sent_by_workers(0))
                if (auto v = parse_udp4(f))
                    out.push_back(std::move(*v));
        }
        return out;
    }
    json leg(const std::string& name, unsigned i, const std::string& in, const std::string& out)
    {
        json l = {{"name", name}, {"remote", participant(i).ep()}};
        if (!in.empty())
            l["in"] = in;
        if (!out.empty())
            l["out"] = out;
        return l;
    }
};

// Item 3: one sender, 199 receivers, each with its own outbound key.
TEST_F(Conference, FanOutTo199ReceiversEachWithItsOwnKey)
{
    relay_options o;
    o.port_max = 30999;
    o.mbufs = 8191;
    start(o);
    r->learn(alice);
    const key kin = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    std::vector<key> kout;
    json legs = json::array({leg("s", 0, kin.spec, "")});
    for (unsigned i = 1; i < 200; i++) {
        kout.push_back(make_key(i % 2 ? crypto::suite::aead_aes_128_gcm
                                      : crypto::suite::aes_cm_128_hmac_sha1_80));
        json l = leg("r" + std::to_string(i), i, "", kout.back().spec);
        l["targets"] = json::array(); // receivers only
        legs.push_back(l);
    }
    json rep = r->call({{"cmd", "session.create"}, {"session", "conf"}, {"legs", legs}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump().substr(0, 300);
    const uint16_t ps = relay::local_port(rep, "s");
    auto tx = libsrtp(kin);
    std::vector<std::unique_ptr<crypto::srtp_context>> rx;
    for (auto& k : kout)
        rx.push_back(libsrtp(k));
    for (uint32_t ssrc : {0x1111u, 0x2222u, 0x3333u}) { // audio, video, RTX
        for (uint16_t seq = 1; seq <= 2; seq++) {
            const bytes plain = rtp(seq, ssrc, 172);
            auto out = relay_one(participant(0), ps, srtp_protect(*tx, plain));
            ASSERT_EQ(out.size(), 199u);
            std::vector<bool> got(200, false);
            for (auto& v : out) {
                const unsigned i = v.dst_port - 10000;
                ASSERT_TRUE(i >= 1 && i < 200 && !got[i]) << v.dst_port;
                got[i] = true;
                ASSERT_TRUE(unsrtp(*rx[i - 1], v.payload)) << "receiver " << i;
                EXPECT_EQ(v.payload, plain);
            }
        }
    }
    json g = r->call({{"cmd", "session.get"}, {"session", "conf"}});
    ASSERT_EQ(g["legs"].size(), 200u);
    EXPECT_EQ(g["legs"][0]["targets"].size(), 199u);
    EXPECT_EQ(g["legs"][0]["targets"][198], "r199");
    EXPECT_EQ(r->total_drops(), 0u);
    r->call({{"cmd", "session.delete"}, {"session", "conf"}});
}

TEST_F(Conference, SessionsTakeTwoTo256Legs)
{
    relay_options o;
    o.port_max = 30999;
    start(o);
    json legs = json::array();
    for (unsigned i = 0; i < 257; i++)
        legs.push_back({{"name", "l" + std::to_string(i)}});
    json rep = r->call({{"cmd", "session.create"}, {"session", "big"}, {"legs", legs}});
    ASSERT_TRUE(rep.contains("error"));
    EXPECT_NE(rep.dump().find("2 to 256 legs"), std::string::npos) << rep.dump();
    legs.erase(legs.size() - 1);
    rep = r->call({{"cmd", "session.create"}, {"session", "big"}, {"legs", legs}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump().substr(0, 300);
    r->call({{"cmd", "session.delete"}, {"session", "big"}});
}

// Item 2: a leg that was in authenticated pass-through for 66 000 packets
// (ROC 1) switches to transcrypting and back. The receiver whose key never
// changed must decrypt every packet with its one libsrtp context: the relay
// protects for it with the sender's index, not a fresh guess (ROC 0).
TEST_F(Conference, RocStaysRightAcrossPassThroughTranscryptSwitches)
{
    start();
    r->learn(alice);
    const key ka = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    const key kc = make_key(crypto::suite::aead_aes_128_gcm);
    json rep = r->call({{"cmd", "session.create"},
                        {"session", "roc"},
                        {"legs", {leg("a", 0, ka.spec, ""), leg("b", 1, "", ka.spec),
                                  leg("c", 2, "", ka.spec)}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    ASSERT_EQ(r->call({{"cmd", "session.get"}, {"session", "roc"}})["legs"][0]["srtp"]["passthrough"],
              true);
    const uint16_t pa = relay::local_port(rep, "a");
    auto tx = libsrtp(ka);
    auto rb = libsrtp(ka), rc = libsrtp(ka);
    auto set_c = [&](const key& k, bool pass) {
        json u = r->call({{"cmd", "leg.update"}, {"session", "roc"}, {"leg", "c"}, {"out", k.spec}});
        ASSERT_FALSE(u.contains("error")) << u.dump();
        ASSERT_EQ(u["legs"][0]["srtp"]["passthrough"], pass);
    };
    uint32_t n = 0, to_b = 0, to_c = 0;
    auto phase = [&](uint32_t end, bool pass) {
        while (n < end) {
            std::vector<bytes> in;
            for (; n < end && in.size() < 4096; n++)
                in.push_back(srtp_protect(*tx, rtp(uint16_t(n), 0xc0ffee, 60)));
            for (auto& v : relay_many(participant(0), pa, in)) {
                if (v.dst_port == participant(1).port) {
                    ASSERT_TRUE(unsrtp(*rb, v.payload)) << "b, packet " << to_b;
                    to_b++;
                } else {
                    ASSERT_EQ(v.dst_port, participant(2).port);
                    if (pass) { // under kc in between: rc keeps ka's state
                        ASSERT_TRUE(unsrtp(*rc, v.payload)) << "c, packet " << to_c;
                    }
                    to_c++;
                }
            }
        }
    };
    phase(66000, true);
    set_c(kc, false); // transcrypt: b's outbound context starts here, at ROC 1
    phase(68000, false);
    set_c(ka, true);
    phase(70000, true);
    EXPECT_EQ(to_b, 70000u);
    EXPECT_EQ(to_c, 70000u);
    EXPECT_EQ(r->total_drops(), 0u);
    r->call({{"cmd", "session.delete"}, {"session", "roc"}});
}

// Item 2: two leg.updates of one session sent before either is acknowledged.
// The second's pass-through flags must account for the first (a.in changes
// to kb), or leg a would be left verifying and passing packets under kb to
// targets that expect ka.
TEST_F(Conference, BackToBackLegUpdatesNeverLeaveAStalePassThrough)
{
    start();
    r->learn(alice);
    const key ka = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    const key kb = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    const key kc = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    json rep = r->call({{"cmd", "session.create"},
                        {"session", "upd"},
                        {"legs", {leg("a", 0, ka.spec, ""), leg("b", 1, "", ka.spec),
                                  leg("c", 2, "", kc.spec)}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    ASSERT_EQ(r->call({{"cmd", "session.get"}, {"session", "upd"}})["legs"][0]["srtp"]["passthrough"],
              false);
    auto u1 = r->start({{"cmd", "leg.update"}, {"session", "upd"}, {"leg", "a"}, {"in", kb.spec}});
    auto u2 = r->start({{"cmd", "leg.update"}, {"session", "upd"}, {"leg", "c"}, {"out", ka.spec}});
    for (int i = 0; i < 200 && !(*u1 && *u2); i++)
        r->poll();
    ASSERT_TRUE(*u1 && *u2);
    ASSERT_FALSE((*u1)->contains("error")) << (*u1)->dump();
    ASSERT_FALSE((*u2)->contains("error")) << (*u2)->dump();
    json g = r->call({{"cmd", "session.get"}, {"session", "upd"}});
    EXPECT_EQ(g["legs"][0]["srtp"]["passthrough"], false);
    // Every leg's flag equals what its keys call for, in the dataplane too.
    EXPECT_FALSE(r->sm->find("upd")->ds->legs[0].verify_only);
    auto tx = libsrtp(kb);
    auto rb = libsrtp(ka), rc = libsrtp(ka);
    const bytes plain = rtp(1, 0xabc, 100);
    auto out = relay_one(participant(0), relay::local_port(rep, "a"), srtp_protect(*tx, plain));
    ASSERT_EQ(out.size(), 2u);
    for (auto& v : out) {
        ASSERT_TRUE(unsrtp(v.dst_port == participant(1).port ? *rb : *rc, v.payload));
        EXPECT_EQ(v.payload, plain);
    }
    r->call({{"cmd", "session.delete"}, {"session", "upd"}});
}

// Item 1: a plain sender spraying new SSRCs at a conference target recycles
// only its own slots of the target's outbound context (quota), so another
// participant's new SSRCs still get slots.
TEST_F(Conference, SsrcSprayOfOneSenderLeavesOthersTheirSlots)
{
    start();
    r->learn(alice);
    const key ka = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    const key kb = make_key(crypto::suite::aead_aes_128_gcm);
    json rep = r->call({{"cmd", "session.create"},
                        {"session", "spray"},
                        {"legs", {leg("a", 0, ka.spec, ""), leg("b", 1, "", kb.spec),
                                  leg("c", 2, "", "")}}});
    ASSERT_FALSE(rep.contains("error")) << rep.dump();
    std::vector<bytes> spray;
    for (uint32_t s = 0; s < 1000; s++)
        spray.push_back(rtp(1, 0x50000 + s, 40));
    auto out = relay_many(participant(2), relay::local_port(rep, "c"), spray);
    EXPECT_EQ(out.size(), 2000u); // to a (plain) and b (SRTP)
    auto tx = libsrtp(ka);
    auto rb = libsrtp(kb);
    for (uint32_t s = 0; s < 5; s++) {
        const bytes plain = rtp(1, 0x100 + s, 100);
        auto o = relay_one(participant(0), relay::local_port(rep, "a"), srtp_protect(*tx, plain));
        ASSERT_EQ(o.size(), 2u) << "SSRC " << s;
        for (auto& v : o)
            if (v.dst_port == participant(1).port) {
                ASSERT_TRUE(unsrtp(*rb, v.payload));
                EXPECT_EQ(v.payload, plain);
            }
    }
    EXPECT_EQ(r->drops(dp::drop::srtp_protect), 0u);
    r->call({{"cmd", "session.delete"}, {"session", "spray"}});
}

// Item 4: ports are dealt to workers in pairs; a session is refused only when
// no worker's share can take it, not when the least loaded one's cannot.
TEST_F(Conference, ExhaustedOnlyWhenNoWorkerHasThePorts)
{
    relay_options o;
    o.nworkers = 2;
    o.port_min = 30000;
    o.port_max = 30007; // worker 0: 30000-1, 30004-5; worker 1: 30002-3, 30006-7
    start(o);
    auto create = [&](const std::string& id, unsigned nlegs) {
        json legs = json::array();
        for (unsigned i = 0; i < nlegs; i++)
            legs.push_back({{"name", "l" + std::to_string(i)}});
        return r->call({{"cmd", "session.create"}, {"session", id}, {"legs", legs}});
    };
    ASSERT_FALSE(create("s1", 3).contains("error")); // worker 0: 1 port left
    ASSERT_FALSE(create("s2", 2).contains("error")); // worker 1: 2 left
    // Both own one session; worker 0 (first of the tie) has 1 port, worker 1 two.
    json s3 = create("s3", 2);
    ASSERT_FALSE(s3.contains("error")) << s3.dump();
    EXPECT_EQ(r->sm->find("s3")->ds->owner, 1u);
    json s4 = create("s4", 2);
    ASSERT_TRUE(s4.contains("error"));
    EXPECT_EQ(s4["error"]["code"], "exhausted") << s4.dump();
    r->call({{"cmd", "session.delete"}, {"session", "s1"}});
    EXPECT_FALSE(create("s4", 3).contains("error"));
    for (const char* id : {"s2", "s3", "s4"})
        r->call({{"cmd", "session.delete"}, {"session", id}});
}

} // namespace

// Fan-out copies come from the mbuf pool (dataplane/fanout.cc, which keeps
// up to 128 prefetched ones in a stash): with the pool short, the receivers beyond
// what it has are counted as no_mbuf drops and the last one still gets the
// packet itself; with the pool full again every receiver gets every packet,
// byte for byte, and (TearDown) no mbuf stays parked in the stash.
// Takes every mbuf but `left` out of the pool; gives them back when it goes.
struct pool_hold {
    rte_mempool* mp;
    std::vector<void*> held;
    pool_hold(rte_mempool* p, unsigned left) : mp(p)
    {
        void* o = nullptr;
        while (rte_mempool_avail_count(mp) > left && rte_mempool_get(mp, &o) == 0)
            held.push_back(o);
    }
    pool_hold(const pool_hold&) = delete;
    pool_hold& operator=(const pool_hold&) = delete;
    ~pool_hold() { rte_mempool_put_bulk(mp, held.data(), static_cast<unsigned>(held.size())); }
};

// Session "fan": participant 0 sends, participants 1-10 receive (plain).
// Returns the sender's relay port, 0 on error.
static uint16_t fan_of_ten(relay& r)
{
    json legs = json::array({json{{"name", "s"}, {"remote", participant(0).ep()}}});
    for (unsigned i = 1; i <= 10; i++)
        legs.push_back({{"name", "r" + std::to_string(i)},
                        {"remote", participant(i).ep()},
                        {"targets", json::array()}});
    json rep = r.call({{"cmd", "session.create"}, {"session", "fan"}, {"legs", legs}});
    EXPECT_FALSE(rep.contains("error")) << rep.dump().substr(0, 300);
    return rep.contains("error") ? 0 : relay::local_port(rep, "s");
}

TEST_F(Conference, FanOutCopiesWhenThePoolRunsShort)
{
    start();
    r->learn(alice);
    const uint16_t ps = fan_of_ten(*r);
    ASSERT_NE(ps, 0);

    // Every mbuf but 3 out of the pool, the packet already in its RX ring.
    r->inject(r->from_peer(participant(0), ps, rtp(1, 0x4242, 172)));
    auto held = std::make_unique<pool_hold>(r->dp->pool(), 3);
    ASSERT_EQ(rte_mempool_avail_count(r->dp->pool()), 3u);
    r->settle();
    auto out = r->sent_by_workers(0);
    EXPECT_EQ(out.size(), 4u); // 3 copies and the packet itself
    EXPECT_EQ(r->drops(dp::drop::no_mbuf), 6u);
    std::vector<bool> got(11, false);
    for (const bytes& f : out) {
        auto v = parse_udp4(f);
        ASSERT_TRUE(v);
        const unsigned i = v->dst_port - 10000;
        ASSERT_TRUE(i >= 1 && i <= 10 && !got[i]) << v->dst_port;
        got[i] = true;
    }
    EXPECT_TRUE(got[10]) << "the last receiver gets the packet itself";
    held.reset();

    // Enough mbufs again: every receiver, every packet, the payload intact.
    for (uint16_t seq = 2; seq < 40; seq++) {
        SCOPED_TRACE(seq);
        expect_fanned_to_ten(ps, rtp(seq, 0x4242, 100 + seq * 7));
    }
    EXPECT_EQ(r->drops(dp::drop::no_mbuf), 6u);

    // A copy carries the mbuf's dynamic fields, as rte_pktmbuf_copy() does
    // (a NIC's RX timestamp; isar-bench's latency stamp).
    rte_mbuf_dynfield df{};
    snprintf(df.name, sizeof(df.name), "isar_test_fanout_stamp");
    df.size = sizeof(uint64_t);
    df.align = alignof(uint64_t);
    const int off = rte_mbuf_dynfield_register(&df);
    ASSERT_GE(off, 0);
    rte_mbuf* m = r->mbuf(r->from_peer(participant(0), ps, rtp(50, 0x4242, 172)));
    ASSERT_NE(m, nullptr);
    *RTE_MBUF_DYNFIELD(m, off, uint64_t*) = 0x1234567890abcdefull;
    ASSERT_EQ(r->ports[0]->inject(m), 1u);
    r->settle();
    auto sent = r->ports[0]->take_tx(0);
    EXPECT_EQ(sent.size(), 10u);
    for (rte_mbuf* x : sent) {
        EXPECT_EQ(*RTE_MBUF_DYNFIELD(x, off, uint64_t*), 0x1234567890abcdefull);
        rte_pktmbuf_free(x);
    }
    r->call({{"cmd", "session.delete"}, {"session", "fan"}});
}

// A pool with room for the stash's lead but not for a whole stash
// (fanout.cc: take_copies then refills to copy_stash_ahead only): every
// receiver still gets every packet, byte for byte, nothing is counted as
// no_mbuf, and (TearDown) no mbuf is lost or left parked.
TEST_F(Conference, FanOutWithAPoolShortOfAWholeStash)
{
    start();
    r->learn(alice);
    const uint16_t ps = fan_of_ten(*r);
    ASSERT_NE(ps, 0);
    pool_hold held(r->dp->pool(), 100);
    ASSERT_EQ(rte_mempool_avail_count(r->dp->pool()), 100u);
    for (uint16_t seq = 1; seq <= 60; seq++) {
        SCOPED_TRACE(seq);
        expect_fanned_to_ten(ps, rtp(seq, 0x4242, 100 + seq * 3));
    }
    EXPECT_EQ(r->drops(dp::drop::no_mbuf), 0u);
    r->call({{"cmd", "session.delete"}, {"session", "fan"}});
}

// Fan-out takes the UDP checksum way once for all of a packet's copies
// (rewrite_sums::ck, send_to_inl): a field the port marks as not a checksum
// (RX_L4_CKSUM_NONE: a virtio peer's partial sum) gets a full sum in every
// output; with TX checksum offload on the output port every output is
// flagged for it and carries the pseudo-header sum; a verified checksum is
// updated, not offloaded. Then the copies as a CPU without AVX2 makes them
// (copy_into alone), for frames of one to five lines and more.
TEST_F(Conference, FanOutCopiesTakeThePacketsChecksumWay)
{
    start();
    r->learn(alice);
    const uint16_t ps = fan_of_ten(*r);
    ASSERT_NE(ps, 0);
    // One packet from participant 0 with receive flags `rx` (its UDP
    // checksum field garbled when `garble`): the worker's outputs.
    auto fan = [&](uint16_t seq, uint64_t rx, bool garble) {
        rte_mbuf* m = r->mbuf(r->from_peer(participant(0), ps, rtp(seq, 0x4242, 172)));
        EXPECT_NE(m, nullptr);
        if (m == nullptr)
            return std::vector<rte_mbuf*>{};
        if (garble)
            rte_pktmbuf_mtod_offset(m, rte_udp_hdr*, 34)->dgram_cksum ^= 0x5a5a;
        m->ol_flags |= rx;
        EXPECT_EQ(r->ports[0]->inject(m), 1u);
        r->settle();
        return r->ports[0]->take_tx(0);
    };
    auto headers = [](rte_mbuf* x) {
        return std::pair{rte_pktmbuf_mtod_offset(x, rte_ipv4_hdr*, 14),
                         rte_pktmbuf_mtod_offset(x, rte_udp_hdr*, 34)};
    };

    auto out = fan(1, RTE_MBUF_F_RX_L4_CKSUM_NONE, true);
    ASSERT_EQ(out.size(), 10u);
    for (rte_mbuf* x : out) {
        auto v = parse_udp4(mbuf_bytes(x));
        ASSERT_TRUE(v);
        EXPECT_TRUE(v->udp_cksum_ok && v->ip_cksum_ok) << "to port " << v->dst_port;
        EXPECT_EQ(x->ol_flags & RTE_MBUF_F_TX_UDP_CKSUM, 0u);
        rte_pktmbuf_free(x);
    }

    r->dp->ifc(0).tx_cksum_offload = true;
    out = fan(2, RTE_MBUF_F_RX_L4_CKSUM_NONE, true);
    ASSERT_EQ(out.size(), 10u);
    for (rte_mbuf* x : out) {
        auto [ip, udp] = headers(x);
        EXPECT_NE(x->ol_flags & RTE_MBUF_F_TX_UDP_CKSUM, 0u) << "to port " << rte_be_to_cpu_16(udp->dst_port);
        EXPECT_NE(x->ol_flags & RTE_MBUF_F_TX_IP_CKSUM, 0u);
        EXPECT_EQ(ip->hdr_checksum, 0) << "the port's to fill in";
        EXPECT_EQ(udp->dgram_cksum, rte_ipv4_phdr_cksum(ip, x->ol_flags));
        rte_pktmbuf_free(x);
    }
    out = fan(3, RTE_MBUF_F_RX_L4_CKSUM_GOOD, false);
    ASSERT_EQ(out.size(), 10u);
    for (rte_mbuf* x : out) {
        auto v = parse_udp4(mbuf_bytes(x));
        ASSERT_TRUE(v);
        EXPECT_TRUE(v->udp_cksum_ok && v->ip_cksum_ok) << "to port " << v->dst_port;
        EXPECT_EQ(x->ol_flags & RTE_MBUF_F_TX_UDP_CKSUM, 0u) << "updated, not offloaded";
        rte_pktmbuf_free(x);
    }
    r->dp->ifc(0).tx_cksum_offload = false;

    r->dp->wk(0).use_baseline_copies();
    for (uint16_t seq = 4; seq < 40; seq++) { // 64-439 B frames
        SCOPED_TRACE(seq);
        expect_fanned_to_ten(ps, rtp(seq, 0x4242, 10 + (seq - 4) * 11));
    }
    r->call({{"cmd", "session.delete"}, {"session", "fan"}});
}
