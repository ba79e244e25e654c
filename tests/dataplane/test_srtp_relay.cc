// SRTP through the dataplane: the real worker (poll_once) on a net_ring port,
// sessions made through the control protocol (commands + session_manager), and
// the peers' packets protected/unprotected with independent contexts (libsrtp
// engine) built from the same keys.
#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_memory.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_udp.h>
#include <unistd.h>

#include "control/commands.h"
#include "control/config.h"
#include "control/neighbor_manager.h"
#include "control/session_manager.h"
#include "crypto/srtp_context.h"
#include "crypto/suite.h"
#include "dataplane/dataplane.h"
#include "dataplane/srtp_memory.h"

using json = nlohmann::json;
using namespace isar;

namespace {

using bytes = std::vector<uint8_t>;

constexpr uint32_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    return (uint32_t(a) << 24) | (uint32_t(b) << 16) | (uint32_t(c) << 8) | d;
}
const uint32_t relay_ip = ip4(10, 9, 0, 1);
const uint32_t peer_a = ip4(10, 9, 0, 2);
const uint32_t peer_b = ip4(10, 9, 0, 3);
const uint32_t peer_c = ip4(10, 9, 0, 4);
const uint32_t peer_d = ip4(10, 9, 0, 5);
const uint32_t attacker = ip4(10, 9, 0, 66);

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

std::mt19937& rng()
{
    static std::mt19937 r(4711);
    return r;
}

// A direction's keys: the "SUITE:BASE64" string for the control protocol, and
// the key_material for the peer's own context.
struct key {
    std::string spec;
    std::string b64;
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
    k.b64 = b64(raw, kl + sl);
    k.spec = std::string(crypto::suite_name(s)) + ":" + k.b64;
    crypto::key_material check;
    std::string err;
    EXPECT_TRUE(crypto::parse_suite_key(k.spec, check, err)) << err;
    return k;
}

std::unique_ptr<crypto::srtp_context> peer_ctx(const key& k)
{
    std::string err;
    auto c = crypto::srtp_context::create(k.km, crypto::engine::libsrtp, err);
    EXPECT_TRUE(c) << err;
    return c;
}

bytes rtp(uint32_t ssrc, uint16_t seq, size_t payload = 160)
{
    bytes p(12 + payload);
    p[0] = 0x80;
    p[1] = 96;
    p[2] = uint8_t(seq >> 8);
    p[3] = uint8_t(seq);
    const uint32_t ts = seq * 160u;
    for (int i = 0; i < 4; i++) {
        p[4 + i] = uint8_t(ts >> (24 - 8 * i));
        p[8 + i] = uint8_t(ssrc >> (24 - 8 * i));
    }
    for (size_t i = 12; i < p.size(); i++)
        p[i] = uint8_t(rng()());
    return p;
}

// RTCP sender report without report blocks (28 bytes).
bytes rtcp_sr(uint32_t ssrc)
{
    bytes p(28);
    p[0] = 0x80;
    p[1] = 200;
    p[2] = 0;
    p[3] = 6;
    for (int i = 0; i < 4; i++)
        p[4 + i] = uint8_t(ssrc >> (24 - 8 * i));
    for (size_t i = 8; i < p.size(); i++)
        p[i] = uint8_t(rng()());
    return p;
}

bytes protect(crypto::srtp_context& c, bytes p)
{
    const bool rtcp = p[1] >= 192 && p[1] <= 223;
    const size_t len = p.size();
    p.resize(len + crypto::max_trailer);
    size_t out = 0;
    auto st = rtcp ? c.protect_rtcp(p.data(), len, p.size(), &out)
                   : c.protect_rtp(p.data(), len, p.size(), &out);
    EXPECT_EQ(st, crypto::status::ok) << crypto::status_name(st);
    p.resize(out);
    return p;
}

crypto::status unprotect(crypto::srtp_context& c, bytes& p)
{
    const uint8_t pt = p[1] & 0x7f;
    const bool rtcp = pt >= 64 && pt <= 95;
    size_t out = 0;
    auto st = rtcp ? c.unprotect_rtcp(p.data(), p.size(), &out)
                   : c.unprotect_rtp(p.data(), p.size(), &out);
    if (st == crypto::status::ok)
        p.resize(out);
    return st;
}

struct datagram {
    uint32_t src_ip, dst_ip;
    uint16_t src_port, dst_port;
    bytes payload;
};

class SrtpRelay : public ::testing::Test {
protected:
    static inline dp::dataplane* dp_ = nullptr;
    static inline ctl::config* cfg_ = nullptr;
    static inline ctl::session_manager* sm_ = nullptr;
    static inline ctl::neighbor_manager* nm_ = nullptr;
    static inline ctl::commands* cmds_ = nullptr;
    static inline rte_ring* rx_ = nullptr;
    static inline rte_ring* tx_[2] = {};
    static inline uint16_t port_ = 0;
    static inline const rte_ether_addr peer_mac = {{0x02, 0, 0, 0, 0, 0x42}};

    static void SetUpTestSuite()
    {
        static std::string prefix = "--file-prefix=isar_srtp_relay_" + std::to_string(getpid());
        const char* argv[] = {"test_srtp_relay", "--no-huge", "-m", "256", "--no-pci",
                              prefix.c_str(), "--log-level=error", "-l", "0"};
        int argc = sizeof(argv) / sizeof(argv[0]);
        ASSERT_GE(rte_eal_init(argc, const_cast<char**>(argv)), 0);
        ASSERT_TRUE(crypto::prepare_thread());
        // As isard does with hugepages (these tests run without).
        ASSERT_TRUE(dp::place_srtp_contexts(true));
        const unsigned flags = RING_F_SP_ENQ | RING_F_SC_DEQ;
        rx_ = rte_ring_create("srtp_rx", 1024, 0, flags);
        tx_[0] = rte_ring_create("srtp_tx0", 1024, 0, flags);
        tx_[1] = rte_ring_create("srtp_tx1", 1024, 0, flags);
        ASSERT_TRUE(rx_ && tx_[0] && tx_[1]);
        int p = rte_eth_from_rings("net_ring_srtp", &rx_, 1, tx_, 2, 0);
        ASSERT_GE(p, 0);
        port_ = uint16_t(p);

        dp::dp_config dc;
        dp::iface_config ic;
        ic.port_id = port_;
        ic.addrs.push_back({4, rte_cpu_to_be_32(relay_ip), {}, 24});
        dc.ifaces.push_back(ic);
        dc.mbufs = 4095;
        dc.max_legs = 1024;
        dp_ = new dp::dataplane();
        std::string err;
        ASSERT_EQ(dp_->init(dc, 1, err), 0) << err;
        for (uint32_t ip : {peer_a, peer_b, peer_c, peer_d, attacker})
            dp_->ifc(0).neigh->update(rte_cpu_to_be_32(ip), peer_mac);
        cfg_ = new ctl::config();
        sm_ = new ctl::session_manager(*dp_, *cfg_);
        nm_ = new ctl::neighbor_manager(*dp_);
        cmds_ = new ctl::commands(*dp_, *sm_, *nm_, *cfg_);
    }

    static void TearDownTestSuite()
    {
        delete cmds_;
        delete nm_;
        delete sm_;
        delete cfg_;
        delete dp_;
        rte_eal_cleanup();
    }

    void TearDown() override { drain(); }

    static dp::worker& wk() { return dp_->wk(0); }

    // One request through the control protocol; polls the worker and the
    // acknowledgements until the answer comes.
    static json call(const json& req)
    {
        json out;
        bool got = false;
        cmds_->handle(req, [&](const json& r) {
            out = r;
            got = true;
        });
        for (int i = 0; i < 100 && !got; i++) {
            wk().poll_once();
            sm_->poll();
        }
        EXPECT_TRUE(got) << req.dump();
        return out;
    }

    static uint16_t local_port(const json& created, unsigned leg)
    {
        std::string l = created["legs"][leg]["local"];
        return uint16_t(std::stoul(l.substr(l.find(':') + 1)));
    }

    static void send(uint32_t src_ip, uint16_t src_port, uint16_t dst_port, const bytes& payload)
    {
        rte_mbuf* m = rte_pktmbuf_alloc(dp_->pool());
        ASSERT_NE(m, nullptr);
        const size_t len = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr) +
                           payload.size();
        auto* eth = reinterpret_cast<rte_ether_hdr*>(rte_pktmbuf_append(m, uint16_t(len)));
        ASSERT_NE(eth, nullptr);
        eth->src_addr = peer_mac;
        eth->dst_addr = dp_->ifc(0).mac;
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
        auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
        std::memset(ip, 0, sizeof(*ip));
        ip->version_ihl = 0x45;
        ip->total_length = rte_cpu_to_be_16(uint16_t(len - sizeof(rte_ether_hdr)));
        ip->time_to_live = 64;
        ip->next_proto_id = IPPROTO_UDP;
        ip->src_addr = rte_cpu_to_be_32(src_ip);
        ip->dst_addr = rte_cpu_to_be_32(relay_ip);
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
        udp->src_port = rte_cpu_to_be_16(src_port);
        udp->dst_port = rte_cpu_to_be_16(dst_port);
        udp->dgram_len = rte_cpu_to_be_16(uint16_t(sizeof(rte_udp_hdr) + payload.size()));
        udp->dgram_cksum = 0;
        std::memcpy(udp + 1, payload.data(), payload.size());
        udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
        m->port = port_;
        // As a NIC that verified the checksum reports it: the relay may then
        // update it incrementally, which is only right if nothing else changed.
        m->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_GOOD;
        ASSERT_EQ(rte_ring_enqueue(rx_, m), 0);
    }

    // Runs the worker and collects what it transmitted.
    static std::vector<datagram> run()
    {
        for (int i = 0; i < 4; i++)
            wk().poll_once();
        std::vector<datagram> out;
        void* objs[64];
        unsigned n;
        while ((n = rte_ring_dequeue_burst(tx_[0], objs, 64, nullptr)) > 0) {
            for (unsigned i = 0; i < n; i++) {
                auto* m = static_cast<rte_mbuf*>(objs[i]);
                EXPECT_EQ(m->nb_segs, 1);
                auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
                auto* ip = reinterpret_cast<rte_ipv4_hdr*>(eth + 1);
                auto* udp = reinterpret_cast<rte_udp_hdr*>(ip + 1);
                const size_t tot = rte_be_to_cpu_16(ip->total_length);
                EXPECT_EQ(tot + sizeof(rte_ether_hdr), rte_pktmbuf_pkt_len(m));
                EXPECT_EQ(rte_be_to_cpu_16(udp->dgram_len), tot - sizeof(rte_ipv4_hdr));
                EXPECT_EQ(rte_ipv4_cksum(ip), 0); // sums to 0xffff: checksum ok
                const uint16_t ck = udp->dgram_cksum;
                udp->dgram_cksum = 0;
                EXPECT_EQ(rte_ipv4_udptcp_cksum(ip, udp), ck);
                datagram d;
                d.src_ip = rte_be_to_cpu_32(ip->src_addr);
                d.dst_ip = rte_be_to_cpu_32(ip->dst_addr);
                d.src_port = rte_be_to_cpu_16(udp->src_port);
                d.dst_port = rte_be_to_cpu_16(udp->dst_port);
                const auto* p = reinterpret_cast<const uint8_t*>(udp + 1);
                d.payload.assign(p, p + rte_be_to_cpu_16(udp->dgram_len) - sizeof(rte_udp_hdr));
                out.push_back(std::move(d));
                rte_pktmbuf_free(m);
            }
        }
        return out;
    }

    static void drain()
    {
        run();
        rte_mbuf* m[64];
        unsigned n;
        while ((n = dp_->poll_exceptions(m, 64)) > 0)
            rte_pktmbuf_free_bulk(m, n);
    }

    static uint64_t wdrop(dp::drop d) { return dp::read(wk().stats.drops[unsigned(d)]); }

    static json leg_json(const std::string& id, unsigned leg)
    {
        return call({{"cmd", "session.get"}, {"session", id}})["legs"][leg];
    }
    static uint64_t ldrop(const std::string& id, unsigned leg, const char* name)
    {
        return leg_json(id, leg)["drops"].value(name, uint64_t{0});
    }
};

TEST_F(SrtpRelay, SrtpToPlainAndRtcp)
{
    key ka = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    json r = call({{"cmd", "session.create"},
                   {"session", "s2p"},
                   {"legs",
                    {{{"name", "a"}, {"remote", "10.9.0.2:5000"}, {"in", ka.spec}},
                     {{"name", "b"}, {"remote", "10.9.0.3:6000"}}}}});
    ASSERT_FALSE(r.contains("error")) << r.dump();
    EXPECT_EQ(r.dump().find(ka.b64), std::string::npos);
    const uint16_t pa = local_port(r, 0), pb = local_port(r, 1);
    auto tx = peer_ctx(ka);
    std::vector<bytes> sent;
    for (uint16_t s = 0; s < 5; s++) {
        sent.push_back(rtp(0x1111, uint16_t(100 + s), 40 + 50 * s));
        send(peer_a, 5000, pa, protect(*tx, sent.back()));
    }
    sent.push_back(rtcp_sr(0x1111));
    send(peer_a, 5000, pa, protect(*tx, sent.back()));
    auto out = run();
    ASSERT_EQ(out.size(), sent.size());
    for (size_t i = 0; i < out.size(); i++) {
        EXPECT_EQ(out[i].payload, sent[i]) << i;
        EXPECT_EQ(out[i].src_ip, relay_ip);
        EXPECT_EQ(out[i].src_port, pb);
        EXPECT_EQ(out[i].dst_ip, peer_b);
        EXPECT_EQ(out[i].dst_port, 6000);
    }
    json g = leg_json("s2p", 0);
    EXPECT_EQ(g["srtp"]["in"], "AES_CM_128_HMAC_SHA1_80");
    EXPECT_TRUE(g["srtp"]["out"].is_null());
    EXPECT_EQ(g["srtp"]["passthrough"], false);
    EXPECT_EQ(call({{"cmd", "session.get"}, {"session", "s2p"}}).dump().find(ka.b64),
              std::string::npos);
    call({{"cmd", "session.delete"}, {"session", "s2p"}});
}

// The contexts control builds for a session are on the DPDK heap
// (hugepages in isard), work there, and go back to it when the session ends.
TEST_F(SrtpRelay, ContextsLiveOnTheDpdkHeap)
{
    key ka = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    key kb = make_key(crypto::suite::aead_aes_128_gcm);
    const uint64_t before = dp::srtp_context_counts().dpdk_heap;
    json r = call({{"cmd", "session.create"},
                   {"session", "heap"},
                   {"legs",
                    {{{"name", "a"}, {"remote", "10.9.0.2:5000"}, {"in", ka.spec}},
                     {{"name", "b"}, {"remote", "10.9.0.3:6000"}, {"out", kb.spec}}}}});
    ASSERT_FALSE(r.contains("error")) << r.dump();
    EXPECT_EQ(dp::srtp_context_counts().dpdk_heap, before + 2);
    const ctl::session_info* si = sm_->find("heap");
    ASSERT_NE(si, nullptr);
    ASSERT_NE(si->ds, nullptr);
    for (const crypto::srtp_context* c : {si->ds->legs[0].in_ctx, si->ds->legs[1].out_ctx}) {
        ASSERT_NE(c, nullptr);
        EXPECT_NE(rte_mem_virt2memseg_list(dynamic_cast<const void*>(c)), nullptr);
    }
    {
        auto tx = peer_ctx(ka);
        auto rx = peer_ctx(kb);
        const bytes sent = rtp(0x5151, 3);
        send(peer_a, 5000, local_port(r, 0), protect(*tx, sent));
        auto out = run();
        ASSERT_EQ(out.size(), 1u);
        ASSERT_EQ(unprotect(*rx, out[0].payload), crypto::status::ok);
        EXPECT_EQ(out[0].payload, sent);
    }
    call({{"cmd", "session.delete"}, {"session", "heap"}});
    EXPECT_EQ(sm_->find("heap"), nullptr);
    EXPECT_EQ(dp::srtp_context_counts().dpdk_heap, before);
    EXPECT_EQ(dp::srtp_context_counts().cxx_fallbacks, 0u);
}

TEST_F(SrtpRelay, PlainToSrtp)
{
    key kb = make_key(crypto::suite::aead_aes_128_gcm);
    json r = call({{"cmd", "session.create"},
                   {"session", "p2s"},
                   {"legs",
                    {{{"name", "a"}, {"remote", "10.9.0.2:5000"}},
                     {{"name", "b"}, {"remote", "10.9.0.3:6000"}, {"out", kb.spec}}}}});
    ASSERT_FALSE(r.contains("error")) << r.dump();
    const uint16_t pa = local_port(r, 0);
    auto rx = peer_ctx(kb);
    std::vector<bytes> sent;
    for (uint16_t s = 0; s < 4; s++) {
        sent.push_back(rtp(0x2222, uint16_t(7 + s), 1200));
        send(peer_a, 5000, pa, sent.back());
    }
    sent.push_back(rtcp_sr(0x2222));
    send(peer_a, 5000, pa, sent.back());
    auto out = run();
    ASSERT_EQ(out.size(), sent.size());
    for (size_t i = 0; i < out.size(); i++) {
        EXPECT_GT(out[i].payload.size(), sent[i].size());
        ASSERT_EQ(unprotect(*rx, out[i].payload), crypto::status::ok) << i;
        EXPECT_EQ(out[i].payload, sent[i]) << i;
    }
    call({{"cmd", "session.delete"}, {"session", "p2s"}});
}

TEST_F(SrtpRelay, TranscryptOtherKeyAndOtherSuite)
{
    struct variant {
        crypto::suite in, out;
    };
    int n = 0;
    for (auto v : {variant{crypto::suite::aes_cm_128_hmac_sha1_80,
                           crypto::suite::aes_cm_128_hmac_sha1_80},
                   variant{crypto::suite::aes_cm_128_hmac_sha1_80, crypto::suite::aead_aes_256_gcm},
                   variant{crypto::suite::aead_aes_128_gcm, crypto::suite::aes_cm_128_hmac_sha1_32}}) {
        const std::string id = "tc" + std::to_string(n++);
        key ka = make_key(v.in), kb = make_key(v.out);
        json r = call({{"cmd", "session.create"},
                       {"session", id},
                       {"legs",
                        {{{"name", "a"}, {"remote", "10.9.0.2:5000"}, {"in", ka.spec}},
                         {{"name", "b"}, {"remote", "10.9.0.3:6000"}, {"out", kb.spec}}}}});
        ASSERT_FALSE(r.contains("error")) << r.dump();
        EXPECT_EQ(leg_json(id, 0)["srtp"]["passthrough"], false);
        const uint16_t pa = local_port(r, 0);
        auto tx = peer_ctx(ka);
        auto rx = peer_ctx(kb);
        std::vector<bytes> sent;
        for (uint16_t s = 0; s < 6; s++) {
            sent.push_back(rtp(0x3333, uint16_t(65533 + s), 20 + 97 * s)); // seq wraps: ROC 1
            send(peer_a, 5000, pa, protect(*tx, sent.back()));
        }
        sent.push_back(rtcp_sr(0x3333));
        send(peer_a, 5000, pa, protect(*tx, sent.back()));
        auto out = run();
        ASSERT_EQ(out.size(), sent.size()) << id;
        for (size_t i = 0; i < out.size(); i++) {
            ASSERT_EQ(unprotect(*rx, out[i].payload), crypto::status::ok) << id << " " << i;
            EXPECT_EQ(out[i].payload, sent[i]) << id << " " << i;
        }
        call({{"cmd", "session.delete"}, {"session", id}});
    }
}

TEST_F(SrtpRelay, SameKeyPassThroughLeavesBytesAndChecksReplay)
{
    key k = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    json r = call({{"cmd", "session.create"},
                   {"session", "pt"},
                   {"legs",
                    {{{"name", "a"}, {"remote", "10.9.0.2:5000"}, {"in", k.spec}},
                     {{"name", "b"}, {"remote", "10.9.0.3:6000"}, {"out", k.spec}}}}});
    ASSERT_FALSE(r.contains("error")) << r.dump();
    EXPECT_EQ(leg_json("pt", 0)["srtp"]["passthrough"], true);
    EXPECT_EQ(leg_json("pt", 1)["srtp"]["passthrough"], false);
    const uint16_t pa = local_port(r, 0);
    auto tx = peer_ctx(k);
    std::vector<bytes> wire;
    for (uint16_t s = 0; s < 3; s++) {
        wire.push_back(protect(*tx, rtp(0x4444, uint16_t(1 + s))));
        send(peer_a, 5000, pa, wire.back());
    }
    wire.push_back(protect(*tx, rtcp_sr(0x4444)));
    send(peer_a, 5000, pa, wire.back());
    auto out = run();
    ASSERT_EQ(out.size(), wire.size());
    for (size_t i = 0; i < out.size(); i++)
        EXPECT_EQ(out[i].payload, wire[i]) << i;

    // Replays and tampering are still caught in pass-through.
    const uint64_t rep = wdrop(dp::drop::srtp_replay), auth = wdrop(dp::drop::srtp_auth);
    send(peer_a, 5000, pa, wire[1]);
    send(peer_a, 5000, pa, wire[3]); // SRTCP replay
    bytes bad = protect(*tx, rtp(0x4444, 9));
    bad[20] ^= 1;
    send(peer_a, 5000, pa, bad);
    EXPECT_TRUE(run().empty());
    EXPECT_EQ(wdrop(dp::drop::srtp_replay), rep + 2);
    EXPECT_EQ(wdrop(dp::drop::srtp_auth), auth + 1);
    EXPECT_EQ(ldrop("pt", 0, "srtp_replay"), 2u);
    EXPECT_EQ(ldrop("pt", 0, "srtp_auth"), 1u);
    call({{"cmd", "session.delete"}, {"session", "pt"}});
}

TEST_F(SrtpRelay, FanOutReprotectsPerTarget)
{
    key ka = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    key kb = make_key(crypto::suite::aead_aes_128_gcm);
    key kc = make_key(crypto::suite::aes_cm_128_hmac_sha1_32);
    json r = call({{"cmd", "session.create"},
                   {"session", "fan"},
                   {"legs",
                    {{{"name", "a"}, {"remote", "10.9.0.2:5000"}, {"in", ka.spec}},
                     {{"name", "b"}, {"remote", "10.9.0.3:6000"}, {"out", kb.spec}},
                     {{"name", "c"}, {"remote", "10.9.0.4:7000"}, {"out", kc.spec}},
                     {{"name", "d"}, {"remote", "10.9.0.5:8000"}}}}});
    ASSERT_FALSE(r.contains("error")) << r.dump();
    const uint16_t pa = local_port(r, 0);
    auto tx = peer_ctx(ka);
    auto rxb = peer_ctx(kb), rxc = peer_ctx(kc);
    std::vector<bytes> sent;
    for (uint16_t s = 0; s < 3; s++) {
        sent.push_back(rtp(0x5555, uint16_t(40 + s), 300));
        send(peer_a, 5000, pa, protect(*tx, sent.back()));
    }
    sent.push_back(rtcp_sr(0x5555));
    send(peer_a, 5000, pa, protect(*tx, sent.back()));
    auto out = run();
    ASSERT_EQ(out.size(), 3 * sent.size());
    size_t nb = 0, nc = 0, nd = 0;
    for (auto& d : out) {
        size_t* cnt;
        if (d.dst_ip == peer_b) {
            ASSERT_EQ(unprotect(*rxb, d.payload), crypto::status::ok);
            cnt = &nb;
        } else if (d.dst_ip == peer_c) {
            ASSERT_EQ(unprotect(*rxc, d.payload), crypto::status::ok);
            cnt = &nc;
        } else {
            ASSERT_EQ(d.dst_ip, peer_d);
            cnt = &nd;
        }
        ASSERT_LT(*cnt, sent.size());
        EXPECT_EQ(d.payload, sent[*cnt]);
        (*cnt)++;
    }
    EXPECT_EQ(nb, sent.size());
    EXPECT_EQ(nc, sent.size());
    EXPECT_EQ(nd, sent.size());
    call({{"cmd", "session.delete"}, {"session", "fan"}});
}

TEST_F(SrtpRelay, ForgedReplayedWrongKeyDroppedAndNeverLatch)
{
    key ka = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    key wrong = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    json r = call({{"cmd", "session.create"},
                   {"session", "forge"},
                   {"legs",
                    {{{"name", "a"}, {"in", ka.spec}}, // latches
                     {{"name", "b"}, {"remote", "10.9.0.3:6000"}}}}});
    ASSERT_FALSE(r.contains("error")) << r.dump();
    const uint16_t pa = local_port(r, 0);
    auto tx = peer_ctx(ka);
    auto evil = peer_ctx(wrong);
    const uint64_t w_auth = wdrop(dp::drop::srtp_auth), w_rep = wdrop(dp::drop::srtp_replay),
                   w_short = wdrop(dp::drop::srtp_short), w_src = wdrop(dp::drop::src_mismatch);

    // Before anything latched: forged (wrong key), tampered and short packets
    // from an attacker are dropped and do not latch.
    send(attacker, 9999, pa, protect(*evil, rtp(0x6666, 1)));
    bytes t = protect(*tx, rtp(0x6666, 2));
    t[t.size() - 1] ^= 0x80; // tag
    send(attacker, 9999, pa, t);
    bytes plain = rtp(0x6666, 3, 0); // 12-byte header, no tag
    send(attacker, 9999, pa, plain);
    EXPECT_TRUE(run().empty());
    EXPECT_TRUE(leg_json("forge", 0)["remote"].is_null());
    EXPECT_EQ(wdrop(dp::drop::srtp_auth), w_auth + 2);
    EXPECT_EQ(wdrop(dp::drop::srtp_short), w_short + 1);
    EXPECT_EQ(ldrop("forge", 0, "srtp_auth"), 2u);
    EXPECT_EQ(ldrop("forge", 0, "srtp_short"), 1u);

    // The real peer latches with an authenticated packet.
    bytes good = rtp(0x6666, 10);
    bytes good_w = protect(*tx, good);
    send(peer_a, 5000, pa, good_w);
    auto out = run();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].payload, good);
    EXPECT_EQ(leg_json("forge", 0)["remote"], "10.9.0.2:5000");
    EXPECT_EQ(leg_json("forge", 0)["latched"], true);

    // Replay from the peer's own address: dropped as replay, remote unchanged.
    send(peer_a, 5000, pa, good_w);
    EXPECT_TRUE(run().empty());
    EXPECT_EQ(wdrop(dp::drop::srtp_replay), w_rep + 1);
    EXPECT_EQ(ldrop("forge", 0, "srtp_replay"), 1u);
    // A replay (even of a valid packet) from elsewhere: source mismatch, no move.
    send(attacker, 9999, pa, good_w);
    EXPECT_TRUE(run().empty());
    EXPECT_EQ(wdrop(dp::drop::src_mismatch), w_src + 1);
    EXPECT_EQ(leg_json("forge", 0)["remote"], "10.9.0.2:5000");
    // Tampered and wrong-key packets from the latched address: dropped.
    bytes t2 = protect(*tx, rtp(0x6666, 11));
    t2[14] ^= 0x01; // payload
    send(peer_a, 5000, pa, t2);
    send(peer_a, 5000, pa, protect(*evil, rtp(0x6666, 12)));
    EXPECT_TRUE(run().empty());
    EXPECT_EQ(ldrop("forge", 0, "srtp_auth"), 4u);
    // The failed packets changed no replay state: a genuine seq 11 (protected
    // by a second sender context with the same key, since tx already used 11)
    // is still accepted.
    auto tx_again = peer_ctx(ka);
    bytes next = rtp(0x6666, 11);
    send(peer_a, 5000, pa, protect(*tx_again, next));
    out = run();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].payload, next);
    EXPECT_EQ(leg_json("forge", 0)["in"]["packets"], 2u);
    call({{"cmd", "session.delete"}, {"session", "forge"}});
}

TEST_F(SrtpRelay, RekeyViaLegUpdate)
{
    key k1 = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    key kout = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    json r = call({{"cmd", "session.create"},
                   {"session", "rekey"},
                   {"legs",
                    {{{"name", "a"}, {"remote", "10.9.0.2:5000"}, {"in", k1.spec}},
                     {{"name", "b"}, {"remote", "10.9.0.3:6000"}, {"out", kout.spec}}}}});
    ASSERT_FALSE(r.contains("error")) << r.dump();
    const uint16_t pa = local_port(r, 0);
    auto tx1 = peer_ctx(k1);
    auto rx = peer_ctx(kout);
    bytes p1 = rtp(0x7777, 1);
    send(peer_a, 5000, pa, protect(*tx1, p1));
    auto out = run();
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(unprotect(*rx, out[0].payload), crypto::status::ok);
    EXPECT_EQ(out[0].payload, p1);

    // Re-key both directions of the path: a.in and b.out.
    key k2 = make_key(crypto::suite::aead_aes_256_gcm);
    key kout2 = make_key(crypto::suite::aead_aes_128_gcm);
    json u = call({{"cmd", "leg.update"}, {"session", "rekey"}, {"leg", "a"}, {"in", k2.spec}});
    ASSERT_FALSE(u.contains("error")) << u.dump();
    EXPECT_EQ(u.dump().find(k2.b64), std::string::npos);
    EXPECT_EQ(u["legs"][0]["srtp"]["in"], "AEAD_AES_256_GCM");
    u = call({{"cmd", "leg.update"}, {"session", "rekey"}, {"leg", "b"}, {"out", kout2.spec}});
    ASSERT_FALSE(u.contains("error")) << u.dump();
    EXPECT_EQ(u["legs"][1]["srtp"]["out"], "AEAD_AES_128_GCM");
    EXPECT_EQ(u["legs"][0]["remote"], "10.9.0.2:5000");

    // Old key: dropped. New key: relayed under the new outbound key.
    send(peer_a, 5000, pa, protect(*tx1, rtp(0x7777, 2)));
    EXPECT_TRUE(run().empty());
    EXPECT_EQ(ldrop("rekey", 0, "srtp_auth"), 1u);
    auto tx2 = peer_ctx(k2);
    auto rx2 = peer_ctx(kout2);
    bytes p3 = rtp(0x7777, 3);
    send(peer_a, 5000, pa, protect(*tx2, p3));
    out = run();
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(unprotect(*rx2, out[0].payload), crypto::status::ok);
    EXPECT_EQ(out[0].payload, p3);

    // Re-key b.out to a.in's key: pass-through switches on; then plain.
    u = call({{"cmd", "leg.update"}, {"session", "rekey"}, {"leg", "b"}, {"out", k2.spec}});
    ASSERT_FALSE(u.contains("error")) << u.dump();
    EXPECT_EQ(u["legs"][0]["srtp"]["passthrough"], true);
    bytes w4 = protect(*tx2, rtp(0x7777, 4));
    send(peer_a, 5000, pa, w4);
    out = run();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].payload, w4);
    u = call({{"cmd", "leg.update"}, {"session", "rekey"}, {"leg", "b"}, {"out", nullptr},
              {"remote", "10.9.0.4:7000"}});
    ASSERT_FALSE(u.contains("error")) << u.dump();
    EXPECT_EQ(u["legs"][0]["srtp"]["passthrough"], false);
    EXPECT_TRUE(u["legs"][1]["srtp"]["out"].is_null());
    EXPECT_EQ(u["legs"][1]["remote"], "10.9.0.4:7000");
    bytes p5 = rtp(0x7777, 5);
    send(peer_a, 5000, pa, protect(*tx2, p5));
    out = run();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].payload, p5);
    EXPECT_EQ(out[0].dst_ip, peer_c);
    call({{"cmd", "session.delete"}, {"session", "rekey"}});
}

TEST_F(SrtpRelay, SsrcLimitAndProtectFailuresAreCountedDrops)
{
    key ka = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    key kb = make_key(crypto::suite::aead_aes_128_gcm);
    json r = call({{"cmd", "session.create"},
                   {"session", "limits"},
                   {"legs",
                    {{{"name", "a"}, {"remote", "10.9.0.2:5000"}, {"in", ka.spec}},
                     {{"name", "b"}, {"remote", "10.9.0.3:6000"}, {"out", kb.spec}},
                     {{"name", "c"}, {"remote", "10.9.0.4:7000"}}}}});
    ASSERT_FALSE(r.contains("error")) << r.dump();
    const uint16_t pa = local_port(r, 0), pc = local_port(r, 2);
    // Inbound: one SSRC more than the context has slots for (the peer needs a
    // second context for the 17th: its own table is as small).
    auto tx = peer_ctx(ka);
    auto tx2 = peer_ctx(ka);
    for (uint32_t i = 0; i < crypto::max_ssrcs; i++)
        send(peer_a, 5000, pa, protect(*tx, rtp(0x100 + i, 1)));
    send(peer_a, 5000, pa, protect(*tx2, rtp(0x100 + crypto::max_ssrcs, 1)));
    auto out = run();
    EXPECT_EQ(out.size(), 2 * crypto::max_ssrcs); // to b and c
    EXPECT_EQ(ldrop("limits", 0, "srtp_ssrc_limit"), 1u);
    // Outbound: b is a conference target (3 legs): its out context has
    // reserved slots (README "Conferences"), so a's 8 SSRCs leave room for
    // c's (plain) new ones: protected for b, nothing dropped.
    const uint64_t w_prot = wdrop(dp::drop::srtp_protect);
    send(peer_c, 7000, pc, rtp(0x900, 1));
    send(peer_c, 7000, pc, rtp(0x901, 1));
    out = run();
    ASSERT_EQ(out.size(), 4u); // to a and b each
    EXPECT_EQ(ldrop("limits", 1, "srtp_protect"), 0u);
    EXPECT_EQ(wdrop(dp::drop::srtp_protect), w_prot);
    call({{"cmd", "session.delete"}, {"session", "limits"}});
}

TEST_F(SrtpRelay, KeyErrorsNameTheFieldAndNeverEchoTheKey)
{
    key k = make_key(crypto::suite::aes_cm_128_hmac_sha1_80);
    // A valid key for another suite: wrong length.
    const std::string bad = "AEAD_AES_256_GCM:" + k.b64;
    json r = call({{"cmd", "session.create"},
                   {"session", "bad"},
                   {"legs", {{{"name", "a"}}, {{"name", "b"}, {"in", bad}}}}});
    ASSERT_TRUE(r.contains("error"));
    const std::string msg = r["error"]["message"];
    EXPECT_EQ(msg.rfind("legs[1].in", 0), 0u) << msg;
    EXPECT_EQ(r.dump().find(k.b64), std::string::npos);
    EXPECT_EQ(sm_->find("bad"), nullptr);

    r = call({{"cmd", "session.create"},
              {"session", "bad"},
              {"legs", {{{"name", "a"}, {"out", "NOPE:" + k.b64}}, {{"name", "b"}}}}});
    ASSERT_TRUE(r.contains("error"));
    EXPECT_EQ(std::string(r["error"]["message"]).rfind("legs[0].out", 0), 0u) << r.dump();
    EXPECT_EQ(r.dump().find(k.b64), std::string::npos);

    // Malformed JSON holding a key: the parse error does not quote it.
    json pr;
    cmds_->handle_line("{\"cmd\":\"session.create\",\"in\":\"" + k.spec + "\" x}",
                       [&](const json& j) { pr = j; });
    ASSERT_TRUE(pr.contains("error"));
    EXPECT_EQ(pr.dump().find(k.b64), std::string::npos) << pr.dump();

    json ok = call({{"cmd", "session.create"},
                    {"session", "good"},
                    {"legs", {{{"name", "a"}}, {{"name", "b"}}}}});
    ASSERT_FALSE(ok.contains("error")) << ok.dump();
    r = call({{"cmd", "leg.update"}, {"session", "good"}, {"leg", "b"}, {"out", bad}});
    ASSERT_TRUE(r.contains("error"));
    EXPECT_EQ(std::string(r["error"]["message"]).rfind("out", 0), 0u) << r.dump();
    EXPECT_EQ(r.dump().find(k.b64), std::string::npos);
    call({{"cmd", "session.delete"}, {"session", "good"}});
}

} // namespace
