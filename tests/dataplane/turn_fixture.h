// The TURN fixture of the dataplane tests (test_turn_relay, test_turn_stream):
// a dataplane with TURN on over one net_ring port, stepped from the test
// thread; allocations installed the way control installs them; clients,
// peers and frame builders. One interface 198.18.0.1/24, TURN listener port
// 3478, relay pool 30000-30199, every host on the interface's subnet with a
// known MAC.
#pragma once

#include "dataplane/dataplane.h"
#include "dataplane/turn_alloc.h"
#include "tests/support/packet_builder.h"
#include "tests/support/ring_port.h"
#include "turn/stun.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <gtest/gtest.h>
#include <memory>
#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <string>
#include <vector>

namespace isar::test::turn_fixture {

using dp::drop;

constexpr uint16_t turn_port = 3478;
constexpr uint16_t relay_min = 30000;
constexpr uint16_t relay_max = 30199;
constexpr uint32_t relay_ip = 0xc6120001; // 198.18.0.1, host order

inline std::atomic<unsigned> next_instance{0};

inline dp::ip6_addr relay_ip6() // 2001:2::1
{
    dp::ip6_addr a;
    a.b[0] = 0x20;
    a.b[1] = 0x01;
    a.b[3] = 0x02;
    a.b[15] = 0x01;
    return a;
}

struct host {
    uint32_t ip; // host order
    uint16_t port;
    rte_ether_addr mac;
    uint32_t ip_be() const { return rte_cpu_to_be_32(ip); }
    uint16_t port_be() const { return rte_cpu_to_be_16(port); }
    dp::packed_ep ep() const { return dp::pack_ep(ip_be(), port_be()); }
};

inline dp::packed_ep pep(uint32_t ip_host, uint16_t port_host)
{
    return dp::pack_ep(rte_cpu_to_be_32(ip_host), rte_cpu_to_be_16(port_host));
}

// Clients of the TURN server and peers, all on 198.18.0.0/24.
const host client1{0xc6120032, 40000, mac(0x32, 1)}; // 198.18.0.50
const host client2{0xc6120033, 41000, mac(0x33, 1)}; // 198.18.0.51
const host peer_p{0xc612001e, 7000, mac(0x1e, 0x1e)}; // 198.18.0.30 (P)
const host other{0xc6120066, 6666, mac(0x66, 0x66)};  // 198.18.0.102: never permitted
const host alice{0xc612000a, 5000, mac(0x0a, 0x0a)};  // legs
const host bob{0xc6120014, 6000, mac(0x14, 0x14)};


inline bytes pattern(size_t n, uint8_t seed)
{
    bytes b(n);
    for (size_t i = 0; i < n; i++)
        b[i] = static_cast<uint8_t>(seed + i * 13);
    if (n > 0)
        b[0] = static_cast<uint8_t>(0x80 | (seed & 0x3f)); // not STUN, not ChannelData
    return b;
}

// ChannelData: number, length (default: the data's), data, `pad` zero bytes.
inline bytes channel_data(uint16_t ch, const bytes& data, size_t pad = 0, int length = -1)
{
    // Sized once (GCC 12 warns, wrongly, about vector::insert's reallocation).
    bytes b(4 + data.size() + pad, 0);
    const uint16_t len = length < 0 ? static_cast<uint16_t>(data.size())
                                    : static_cast<uint16_t>(length);
    b[0] = static_cast<uint8_t>(ch >> 8);
    b[1] = static_cast<uint8_t>(ch);
    b[2] = static_cast<uint8_t>(len >> 8);
    b[3] = static_cast<uint8_t>(len);
    std::copy(data.begin(), data.end(), b.begin() + 4);
    return b;
}

const uint8_t test_txid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

inline bytes send_indication(uint32_t ip_host, uint16_t port_host, const bytes& data)
{
    bytes buf(2048);
    turn::builder b(buf.data(), buf.size(), turn::send_indication_type, test_txid);
    b.add_xor_address(turn::attr::xor_peer_address,
                      turn::transport_addr::v4(rte_cpu_to_be_32(ip_host), port_host));
    b.add(turn::attr::data, data.data(), data.size());
    EXPECT_TRUE(b.ok());
    buf.resize(b.size());
    return buf;
}

inline bytes binding_request()
{
    bytes buf(256);
    turn::builder b(buf.data(), buf.size(),
                    turn::make_type(turn::method::binding, turn::msg_class::request), test_txid);
    b.add_fingerprint();
    EXPECT_TRUE(b.ok());
    buf.resize(b.size());
    return buf;
}

inline uint16_t be16_at(const bytes& b, size_t off)
{
    return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}

struct perm {
    uint32_t ip; // host order
    uint64_t expiry_tsc;
};
struct chan {
    uint16_t number;
    dp::packed_ep peer;
    uint64_t expiry_tsc;
};

using txid_t = std::array<uint8_t, 12>;
inline txid_t txid_of(const dp::turn_alloc& a)
{
    txid_t t;
    std::memcpy(t.data(), a.txid, t.size());
    return t;
}

inline uint64_t later()
{
    return rte_rdtsc() + 3600 * rte_get_tsc_hz();
}
constexpr uint64_t expired = 1;

// The dataplane with TURN on, stepped from the test thread.
class TurnRelay : public ::testing::Test {
protected:
    // `streams`: stream threads (TURN over TCP/TLS) whose rings the test
    // plays (test_turn_stream).
    void start(unsigned nworkers = 1, unsigned streams = 0)
    {
        nworkers_ = nworkers;
        const unsigned id = next_instance.fetch_add(1);
        port_ = std::make_unique<ring_port>("tt" + std::to_string(id) + "p0", nworkers + 1, 4096);
        ASSERT_TRUE(port_->ok());
        dp::dp_config dc;
        dc.ifaces.push_back({port_->id(), {{4, rte_cpu_to_be_32(relay_ip), {}, 24}}, 0});
        if (v6_slot_) // slot 1: 2001:2::1/64 (slot 0 stays the IPv4 address)
            dc.ifaces[0].addrs.push_back({6, 0, relay_ip6(), 64});
        dc.mbufs = 4095;
        dc.max_legs = 1024;
        dc.ring_size = 1024;
        dc.rx_desc = 512;
        dc.tx_desc = 512;
        dc.relay_min = relay_min;
        dc.relay_max = relay_max;
        dc.turn_ports = {turn_port};
        dc.max_allocations = 64;
        dc.stream_threads = streams;
        dp_ = std::make_unique<dp::dataplane>();
        std::string err;
        ASSERT_EQ(dp_->init(dc, nworkers, err), 0) << err;
        ASSERT_FALSE(dp_->ifc(0).tx_cksum_offload)
                << "net_ring computes no checksum: the worker must, and the test checks it";
        for (const host* h : {&client1, &client2, &peer_p, &other, &alice, &bob})
            ASSERT_TRUE(dp_->ifc(0).neigh->update(h->ip_be(), h->mac));
        baseline_ = dp_->mbufs_in_use();
        EXPECT_EQ(baseline_, 0u);
    }

    void TearDown() override
    {
        if (!dp_)
            return;
        settle();
        rte_mbuf* m[64];
        unsigned n;
        while ((n = dp_->poll_turn(m, 64)) > 0)
            rte_pktmbuf_free_bulk(m, n);
        while ((n = dp_->poll_exceptions(m, 64)) > 0)
            rte_pktmbuf_free_bulk(m, n);
        for (unsigned w = 0; w < nworkers_; w++)
            for (unsigned t = 0; t < dp_->wk(w).nstreams; t++)
                while ((n = rte_ring_dequeue_burst(dp_->stream_out(w, t),
                                                   reinterpret_cast<void**>(m), 64, nullptr)) > 0)
                    rte_pktmbuf_free_bulk(m, n);
        port_->flush();
        EXPECT_EQ(dp_->mbufs_in_use(), baseline_) << "mbuf leak";
        dp_.reset();
        port_.reset();
        allocs_.clear();
        sessions_.clear();
    }

    // ---- commands ---------------------------------------------------------
    int run(dp::flow_cmd& c)
    {
        const int rc = dp_->submit(&c);
        EXPECT_EQ(rc, 0);
        if (rc != 0)
            return rc;
        const unsigned owner = c.alloc != nullptr ? c.alloc->owner : c.sess->owner;
        for (unsigned round = 0; round < 100; round++) {
            dp_->wk(owner).poll_once();
            dp::flow_cmd* done[16];
            const unsigned k = dp_->poll_done(done, 16);
            bool found = false;
            for (unsigned i = 0; i < k; i++) {
                if (done[i] == &c)
                    found = true;
                else
                    ADD_FAILURE() << "unexpected ack";
            }
            if (found)
                return c.status;
        }
        ADD_FAILURE() << "no ack";
        return -ETIMEDOUT;
    }

    // An allocation for `client` on relay port `relay_port`, owned by
    // owner_of_client (as control chooses it).
    // `stream`: the client is a TCP/TLS connection with this token.
    dp::turn_alloc* add_alloc(const host& client, uint16_t relay_port, uint32_t stream = 0)
    {
        auto a = std::make_unique<dp::turn_alloc>();
        a->stream = stream;
        a->client = client.ep();
        a->listen_ip_be = rte_cpu_to_be_32(relay_ip);
        a->listen_port_be = rte_cpu_to_be_16(turn_port);
        a->iface = 0;
        a->relay_ip_be = rte_cpu_to_be_32(relay_ip);
        a->relay_port_be = rte_cpu_to_be_16(relay_port);
        a->owner = dp::owner_of_client(client.ip_be(), client.port_be(), nworkers_);
        a->id = static_cast<uint32_t>(allocs_.size() + 1);
        for (unsigned i = 0; i < 12; i++)
            a->txid[i] = static_cast<uint8_t>(0xa0 + i + a->id);
        EXPECT_EQ(dp::owner_of_port(relay_port, nworkers_), a->owner)
                << "test bug: control deals the relayed port from the owner's share";
        dp::flow_cmd c;
        c.op = dp::cmd_op::add_alloc;
        c.alloc = a.get();
        EXPECT_EQ(run(c), 0);
        allocs_.push_back(std::move(a));
        return allocs_.back().get();
    }

    // An allocation set up by the test (IPv6 fields), installed as control does.
    dp::turn_alloc* add_alloc_raw(std::unique_ptr<dp::turn_alloc> a, int want = 0)
    {
        a->id = static_cast<uint32_t>(allocs_.size() + 1);
        for (unsigned i = 0; i < 12; i++)
            a->txid[i] = static_cast<uint8_t>(0xa0 + i + a->id);
        dp::flow_cmd c;
        c.op = dp::cmd_op::add_alloc;
        c.alloc = a.get();
        EXPECT_EQ(run(c), want);
        if (want != 0)
            return nullptr;
        allocs_.push_back(std::move(a));
        return allocs_.back().get();
    }

    // Permissions and channels with IPv6 peers too (chan6: peer6 set).
    struct chan6 {
        uint16_t number;
        dp::ip6_addr ip;
        uint16_t port; // host order
    };
    void set_peers6(dp::turn_alloc* a, std::vector<perm> perms, std::vector<dp::ip6_addr> perms6,
                    std::vector<chan> chans, std::vector<chan6> chans6)
    {
        dp::turn_peer_table t;
        for (const perm& p : perms)
            t.perms[t.nperms++] = {rte_cpu_to_be_32(p.ip), 0, p.expiry_tsc};
        for (const dp::ip6_addr& p : perms6)
            t.perms6[t.nperms6++] = {p, later()};
        for (const chan& c : chans)
            t.chans[t.nchans++] = {c.peer, c.expiry_tsc, c.number, {}};
        for (const chan6& c : chans6)
            t.chans[t.nchans++] = {dp::pack_ep6(c.ip, rte_cpu_to_be_16(c.port)), later(),
                                   c.number, c.ip};
        dp::flow_cmd c;
        c.op = dp::cmd_op::set_alloc_peers;
        c.alloc = a;
        c.peers = &t;
        EXPECT_EQ(run(c), 0);
    }

    void set_peers(dp::turn_alloc* a, std::vector<perm> perms, std::vector<chan> chans)
    {
        dp::turn_peer_table t;
        for (const perm& p : perms)
            t.perms[t.nperms++] = {rte_cpu_to_be_32(p.ip), 0, p.expiry_tsc};
        for (const chan& c : chans) {
            dp::turn_channel& d = t.chans[t.nchans++];
            d.number = c.number;
            d.peer = c.peer;
            d.expiry_tsc = c.expiry_tsc;
        }
        dp::flow_cmd c;
        c.op = dp::cmd_op::set_alloc_peers;
        c.alloc = a;
        c.peers = &t;
        EXPECT_EQ(run(c), 0);
    }

    void del_alloc(dp::turn_alloc* a)
    {
        dp::flow_cmd c;
        c.op = dp::cmd_op::del_alloc;
        c.alloc = a;
        EXPECT_EQ(run(c), 0);
    }

    // A two-leg session: a on `pa` (remote ra), b on pa + 1 (remote rb),
    // each forwarding to the other.
    void add_session(uint16_t pa, const host& ra, const host& rb)
    {
        auto s = std::make_unique<dp::session>(2);
        s->owner = dp::owner_of_port(pa, nworkers_);
        ASSERT_EQ(dp::owner_of_port(static_cast<uint16_t>(pa + 1), nworkers_), s->owner);
        for (unsigned i = 0; i < 2; i++) {
            dp::leg& l = s->legs[i];
            l.sess = s.get();
            l.peers = s->legs.get();
            l.index = static_cast<uint8_t>(i);
            l.iface = 0;
            l.port_id = port_->id();
            l.laddr = 0; // the interface's one (IPv4) address
            l.local_port_be = rte_cpu_to_be_16(static_cast<uint16_t>(pa + i));
            l.remote.store(i == 0 ? ra.ep() : rb.ep());
            l.target_mask = static_cast<uint16_t>(1u << (1 - i));
            l.ntargets = 1;
            l.targets[0] = static_cast<uint8_t>(1 - i);
        }
        dp::flow_cmd c;
        c.op = dp::cmd_op::add_session;
        c.sess = s.get();
        EXPECT_EQ(run(c), 0);
        sessions_.push_back(std::move(s));
    }

    // A client whose owner_of_client is `w`.
    host client_on(unsigned w, const host& base) const
    {
        host h = base;
        for (unsigned i = 0; i < 1000; i++) {
            h.port = static_cast<uint16_t>(base.port + i);
            if (dp::owner_of_client(h.ip_be(), h.port_be(), nworkers_) == w)
                return h;
        }
        ADD_FAILURE() << "no client port for worker " << w;
        return base;
    }
    // The k-th relay port (from `from`) owned by worker w.
    uint16_t relay_port_on(unsigned w, uint16_t from = relay_min + 10) const
    {
        for (uint16_t p = from; p <= relay_max; p++)
            if (dp::owner_of_port(p, nworkers_) == w)
                return p;
        ADD_FAILURE() << "no relay port for worker " << w;
        return 0;
    }

    // ---- frames -------------------------------------------------------------
    bytes frame_from(uint32_t src_ip, uint16_t src_port, const rte_ether_addr& src_mac,
                     uint16_t dst_port, const bytes& payload) const
    {
        udp4_spec s;
        s.src_mac = src_mac;
        s.dst_mac = dp_->ifc(0).mac;
        s.src_ip = src_ip;
        s.dst_ip = relay_ip;
        s.src_port = src_port;
        s.dst_port = dst_port;
        s.ttl = 57;
        s.tos = 0xb8;
        s.ip_id = 0x4242;
        s.frag = 0x4000; // DF
        s.payload = payload;
        return build(s);
    }
    bytes from(const host& h, uint16_t dst_port, const bytes& payload) const
    {
        return frame_from(h.ip, h.port, h.mac, dst_port, payload);
    }
    // The frame the relay must emit from relay_ip:src_port to `to`.
    bytes expected(uint16_t src_port, const host& to, const bytes& payload) const
    {
        udp4_spec s;
        s.src_mac = dp_->ifc(0).mac;
        s.dst_mac = to.mac;
        s.src_ip = relay_ip;
        s.dst_ip = to.ip;
        s.src_port = src_port;
        s.dst_port = to.port;
        s.ttl = 64;
        s.tos = 0xb8;
        s.ip_id = 0x4242;
        s.frag = 0x4000;
        s.payload = payload;
        return build(s);
    }

    void inject(const bytes& f)
    {
        rte_mbuf* m = make_mbuf(dp_->pool(), f, port_->id());
        ASSERT_NE(m, nullptr);
        if (port_->inject(m) != 1) {
            rte_pktmbuf_free(m);
            ADD_FAILURE() << "RX ring full";
        }
    }

    unsigned poll()
    {
        unsigned work = 0;
        for (unsigned w = 0; w < nworkers_; w++)
            work += dp_->wk(w).poll_once();
        return work;
    }
    void settle()
    {
        for (unsigned i = 0; i < 1000; i++)
            if (poll() == 0 && port_->rx_pending() == 0)
                return;
        ADD_FAILURE() << "the dataplane did not settle";
    }

    std::vector<bytes> sent(unsigned q)
    {
        std::vector<bytes> out;
        auto pkts = port_->take_tx(q);
        for (rte_mbuf* m : pkts) {
            EXPECT_EQ(m->nb_segs, 1);
            out.push_back(mbuf_bytes(m));
        }
        free_all(pkts);
        return out;
    }
    std::vector<bytes> sent_all()
    {
        std::vector<bytes> out;
        for (unsigned q = 0; q <= nworkers_; q++) {
            auto v = sent(q);
            out.insert(out.end(), v.begin(), v.end());
        }
        return out;
    }
    // Injects `f`, runs the workers until idle, returns what went out.
    std::vector<bytes> roundtrip(const bytes& f)
    {
        inject(f);
        settle();
        return sent_all();
    }

    // ---- counters -------------------------------------------------------------
    uint64_t drops(drop d) const
    {
        uint64_t n = 0;
        for (unsigned w = 0; w < nworkers_; w++)
            n += dp::read(dp_->wk(w).stats.drops[static_cast<unsigned>(d)]);
        return n;
    }
    uint64_t total_drops() const
    {
        uint64_t n = 0;
        for (unsigned i = 0; i < dp::n_drops; i++)
            n += drops(static_cast<drop>(i));
        return n;
    }
    uint64_t sum(dp::counter dp::worker_stats::*c) const
    {
        uint64_t n = 0;
        for (unsigned w = 0; w < nworkers_; w++)
            n += dp::read(dp_->wk(w).stats.*c);
        return n;
    }
    // Every received packet ended as a TX, a drop, an exception, a TURN
    // request or a frame for a stream thread (handoffs are counted once, by
    // the receiving worker).
    void expect_accounted(const char* where) const
    {
        const uint64_t rx = sum(&dp::worker_stats::rx_pkts);
        const uint64_t tx = sum(&dp::worker_stats::tx_pkts);
        const uint64_t exc = sum(&dp::worker_stats::exception_pkts) +
                             sum(&dp::worker_stats::held_pkts);
        const uint64_t req = sum(&dp::worker_stats::turn_requests) +
                             sum(&dp::worker_stats::turn_stream_out);
        EXPECT_EQ(total_drops() + tx + exc + req, rx)
                << where << ": drops " << total_drops() << " tx " << tx << " exc " << exc
                << " turn requests " << req << " rx " << rx;
    }
    // Exactly one counted drop, of reason `d`, since `before` (total drops).
    void expect_only_drop(drop d, uint64_t before_total, uint64_t before_d, const char* what)
    {
        EXPECT_EQ(drops(d) - before_d, 1u) << what << ": want one " << dp::drop_name(d);
        EXPECT_EQ(total_drops() - before_total, 1u) << what << ": other drops moved";
    }

    // Checks a Data indication: type 0x0017, cookie, length, XOR-PEER-ADDRESS
    // = peer, DATA = data padded with zeros to 4 bytes, and the transaction
    // id the allocation held when it was sent (txid_of() just before).
    void expect_data_indication(const bytes& p, dp::packed_ep peer, const bytes& data,
                                const txid_t& txid)
    {
        ASSERT_GE(p.size(), turn::header_len);
        EXPECT_EQ(be16_at(p, 0), 0x0017);
        EXPECT_EQ(be16_at(p, 2) + turn::header_len, p.size()) << "message length field";
        EXPECT_EQ(p.size() % 4, 0u);
        EXPECT_EQ(p.size(), turn::data_indication_overhead(4) + data.size() + turn::pad4(data.size()));
        EXPECT_EQ(p[4], 0x21);
        EXPECT_EQ(p[5], 0x12);
        EXPECT_EQ(p[6], 0xa4);
        EXPECT_EQ(p[7], 0x42);
        turn::message m;
        ASSERT_EQ(turn::parse(p.data(), p.size(), m), turn::parse_status::ok);
        EXPECT_EQ(m.type, turn::data_indication_type);
        EXPECT_EQ(m.method, static_cast<uint16_t>(turn::method::data));
        EXPECT_EQ(m.cls, turn::msg_class::indication);
        EXPECT_EQ(std::memcmp(m.txid, txid.data(), 12), 0) << "the allocation's transaction id";
        const turn::attr_view* xa = m.find(turn::attr::xor_peer_address);
        ASSERT_NE(xa, nullptr);
        turn::transport_addr pa;
        ASSERT_TRUE(turn::read_xor_address(m, *xa, pa));
        EXPECT_EQ(pa.family, 4);
        EXPECT_EQ(pa.ip4_be(), dp::ep_ip(peer));
        EXPECT_EQ(pa.port, rte_be_to_cpu_16(dp::ep_port(peer)));
        const turn::attr_view* d = m.find(turn::attr::data);
        ASSERT_NE(d, nullptr);
        EXPECT_EQ(bytes(d->value, d->value + d->len), data);
        const size_t end = d->offset + 4u + d->len;
        ASSERT_EQ(end + turn::pad4(d->len), p.size()) << "DATA is last and padded";
        for (size_t i = end; i < p.size(); i++)
            EXPECT_EQ(p[i], 0) << "padding byte " << i;
    }

    // A frame that left towards `to` from (relay_ip, src_port) with valid
    // checksums; returns its payload.
    bytes expect_out(const bytes& f, uint16_t src_port, const host& to)
    {
        auto v = parse_udp4(f);
        EXPECT_TRUE(v.has_value()) << hex(f);
        if (!v)
            return {};
        EXPECT_EQ(v->src_ip, relay_ip);
        EXPECT_EQ(v->src_port, src_port);
        EXPECT_EQ(v->dst_ip, to.ip);
        EXPECT_EQ(v->dst_port, to.port);
        EXPECT_TRUE(mac_eq(v->dst_mac, to.mac));
        EXPECT_TRUE(mac_eq(v->src_mac, dp_->ifc(0).mac));
        EXPECT_TRUE(v->ip_cksum_ok) << "IPv4 header checksum";
        EXPECT_TRUE(v->udp_cksum_ok) << "UDP checksum";
        EXPECT_EQ(v->udp_length, v->payload.size() + 8);
        EXPECT_EQ(v->total_length, v->payload.size() + 28);
        return v->payload;
    }

    unsigned nworkers_ = 1;
    bool v6_slot_ = false; // set before start(): the interface gets relay_ip6() too
    unsigned baseline_ = 0;
    std::unique_ptr<ring_port> port_;
    std::unique_ptr<dp::dataplane> dp_;
    std::vector<std::unique_ptr<dp::turn_alloc>> allocs_;
    std::vector<std::unique_ptr<dp::session>> sessions_;
};

} // namespace isar::test::turn_fixture
