// The golden-table check of dataplane/classify.cc shared by test_classify
// and test_classify_turn: a row is a frame builder and the verdict, drop
// reason or exception kind the classifier must give it; ClassifyCtx is the
// context of two IPv4 interfaces (port0 and port1) the rows are classified
// with, and check_row also checks that classify never writes to the packet.
#pragma once

#include "dataplane/classify.h"
#include "dataplane/iface.h"
#include "dataplane/turn_alloc.h"
#include "tests/support/eal_env.h"
#include "tests/support/packet_builder.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <gtest/gtest.h>
#include <ostream>
#include <rte_byteorder.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <string>

namespace isar::test::classify_golden {

using dp::drop;
using dp::exc_kind;
using dp::verdict;

inline constexpr uint16_t port0 = 0, port1 = 5; // DPDK port ids of the two interfaces
inline const uint32_t relay0 = ip4("198.18.0.1");
inline const uint32_t relay1 = ip4("198.19.0.1");
inline const uint32_t peer = ip4("198.18.0.10");

// A valid RTP packet from a peer to relay0:30000.
inline udp4_spec rtp_to(uint16_t dport = 30000, size_t len = 172)
{
    udp4_spec s;
    s.src_ip = peer;
    s.dst_ip = relay0;
    s.src_port = 5004;
    s.dst_port = dport;
    s.payload = rtp(1, 0x11223344, len);
    return s;
}

struct row {
    std::string what;
    std::function<rte_mbuf*(rte_mempool*)> make;
    verdict v;
    drop reason = drop::bad_l2;   // for verdict::drop
    exc_kind exc = exc_kind::arp; // for verdict::exception
    uint32_t key = 0;             // for verdict::lookup
    uint16_t owner = 0;           // for verdict::lookup
    uint32_t len_after = 0;       // for verdict::lookup: frame length after trimming
    bool channel_data = false;    // for verdict::turn_client
    int pclass = -1;              // for verdict::lookup: the payload_class, -1 = not checked
};

// Frames sit in exactly-sized external buffers: under ASan, reading one byte
// past the frame is an error, not a silent read of the next mbuf.
inline rte_mbuf* on(rte_mempool* mp, const bytes& f, uint16_t port = port0)
{
    return make_exact_mbuf(mp, f, port);
}

inline row frame(std::string what, udp4_spec s, verdict v, drop d = drop::bad_l2)
{
    return row{std::move(what), [s](rte_mempool* mp) { return on(mp, build(s)); }, v, d};
}
inline row dropped(std::string what, udp4_spec s, drop d)
{
    return frame(std::move(what), std::move(s), verdict::drop, d);
}
inline row dropped_raw(std::string what, bytes f, drop d, uint16_t port = port0)
{
    return row{std::move(what), [f, port](rte_mempool* mp) { return on(mp, f, port); },
               verdict::drop, d};
}
inline row exception(std::string what, bytes f, exc_kind k)
{
    return row{std::move(what), [f](rte_mempool* mp) { return on(mp, f); }, verdict::exception,
               drop::bad_l2, k};
}
// The key is the receiving interface's index (0 for port0, 1 for port1) and
// the relay port.
inline row lookup(std::string what, udp4_spec s, uint16_t port_id, uint16_t dport, uint16_t owner,
                  uint32_t len_after, uint16_t rx_port = port0)
{
    const uint16_t ifc = port_id == port0 ? 0 : 1;
    return row{std::move(what), [s, rx_port](rte_mempool* mp) { return on(mp, build(s), rx_port); },
               verdict::lookup, drop::bad_l2,
               exc_kind::arp,   dp::flow_key(ifc, dport),
               owner,           len_after};
}

inline void PrintTo(const row& r, std::ostream* os)
{
    *os << r.what;
}

class ClassifyCtx : public ::testing::Test {
protected:
    static void SetUpTestSuite()
    {
        ASSERT_TRUE(eal_env::ready());
        mp_ = rte_pktmbuf_pool_create("classify_pool", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                      SOCKET_ID_ANY);
        ASSERT_NE(mp_, nullptr);
    }
    static void TearDownTestSuite()
    {
        rte_mempool_free(mp_);
        mp_ = nullptr;
    }
    void SetUp() override
    {
        ASSERT_NE(mp_, nullptr);
        for (auto& i : iface_of_port_)
            i = -1;
        iface_of_port_[port0] = 0;
        iface_of_port_[port1] = 1;
        ifaces_[0].index = 0;
        ifaces_[0].port_id = port0;
        ifaces_[0].ip_be = rte_cpu_to_be_32(relay0);
        ifaces_[0].mask_be = rte_cpu_to_be_32(0xffffff00);
        ifaces_[1].index = 1;
        ifaces_[1].port_id = port1;
        ifaces_[1].ip_be = rte_cpu_to_be_32(relay1);
        ifaces_[1].mask_be = rte_cpu_to_be_32(0xffffff00);
        for (uint16_t i = 0; i < 2; i++) { // one IPv4 slot each: slot i
            ifaces_[i].laddr_first = ifaces_[i].laddr4 = i;
            ifaces_[i].nladdr = 1;
            laddrs_[i].iface = i;
            laddrs_[i].ip4_be = ifaces_[i].ip_be;
            laddrs_[i].mask4_be = ifaces_[i].mask_be;
        }
        ctx_.ifaces = ifaces_;
        ctx_.laddrs = laddrs_;
        ctx_.nladdrs = 2;
        ctx_.iface_of_port = iface_of_port_;
        ctx_.nports = 8;
        ctx_.nworkers = 2;
        in_use_ = rte_mempool_in_use_count(mp_);
    }
    void TearDown() override { EXPECT_EQ(rte_mempool_in_use_count(mp_), in_use_); }

    static inline rte_mempool* mp_ = nullptr;
    dp::iface ifaces_[2];
    dp::local_addr laddrs_[2];
    int16_t iface_of_port_[8];
    dp::classify_ctx ctx_;
    unsigned in_use_ = 0;
};

inline std::string meta_str(const dp::pkt_meta& m)
{
    switch (m.v) {
    case verdict::drop:
        return std::string("drop/") + dp::drop_name(m.reason);
    case verdict::exception:
        return "exception/" + std::to_string(static_cast<int>(m.exc));
    case verdict::lookup:
        return "lookup/key=" + std::to_string(m.key) + "/owner=" + std::to_string(m.owner);
    case verdict::turn_client:
        return std::string("turn_client/") + (m.channel_data ? "channel_data" : "send") +
               "/owner=" + std::to_string(m.owner);
    case verdict::kernel:
        return "kernel";
    }
    return "?";
}

// Classifies the row's frame with `ctx` and checks the verdict and what
// classify may change.
inline void check_row(const dp::classify_ctx& ctx, rte_mempool* mp, const row& r)
{
    rte_mbuf* m = r.make(mp);
    ASSERT_NE(m, nullptr) << r.what;
    const bytes before = mbuf_bytes(m);
    dp::pkt_meta meta;
    meta.v = verdict::lookup; // poison: classify must set every field it reports
    meta.reason = drop::tx_full;
    meta.channel_data = !r.channel_data;
    meta.pclass = r.pclass == static_cast<int>(dp::payload_class::rtp) ? dp::payload_class::other
                                                                       : dp::payload_class::rtp;
    dp::classify_one(ctx, m, meta);
    const bytes after = mbuf_bytes(m);

    EXPECT_EQ(meta.v, r.v) << r.what << ": got " << meta_str(meta);
    switch (r.v) {
    case verdict::drop:
        EXPECT_EQ(meta.reason, r.reason) << r.what << ": got " << meta_str(meta) << ", want drop/"
                                         << dp::drop_name(r.reason);
        break;
    case verdict::exception:
        EXPECT_EQ(meta.exc, r.exc) << r.what << ": got " << meta_str(meta);
        break;
    case verdict::turn_client:
        EXPECT_EQ(meta.owner, r.owner) << r.what;
        EXPECT_EQ(meta.channel_data, r.channel_data) << r.what << ": got " << meta_str(meta);
        // The worker finds the client's 5-tuple through these.
        EXPECT_EQ(meta.l3_off, 14) << r.what;
        EXPECT_EQ(meta.l4_off, 14 + (before[14] & 0xf) * 4) << r.what;
        break;
    case verdict::kernel:
        break;
    case verdict::lookup:
        EXPECT_EQ(meta.key, r.key) << r.what;
        EXPECT_EQ(meta.owner, r.owner) << r.what;
        EXPECT_EQ(meta.l3_off, 14) << r.what;
        EXPECT_EQ(meta.l4_off, 14 + (before[14] & 0xf) * 4) << r.what;
        EXPECT_EQ(rte_pktmbuf_pkt_len(m), r.len_after) << r.what;
        EXPECT_EQ(rte_pktmbuf_data_len(m), r.len_after) << r.what;
        if (r.pclass >= 0) {
            EXPECT_EQ(static_cast<int>(meta.pclass), r.pclass) << r.what;
        }
        break;
    }
    // Classification reads; the only change it may make is dropping a trailer.
    ASSERT_LE(after.size(), before.size()) << r.what;
    EXPECT_TRUE(std::equal(after.begin(), after.end(), before.begin())) << r.what;
    if (r.v != verdict::lookup) {
        EXPECT_EQ(after.size(), before.size()) << r.what << ": only forwarded packets are trimmed";
    }
    rte_pktmbuf_free(m);
}

inline std::string row_name(const ::testing::TestParamInfo<row>& i)
{
    std::string n = std::to_string(i.index) + "_";
    for (char c : i.param.what)
        n += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return n;
}

} // namespace isar::test::classify_golden
