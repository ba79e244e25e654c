// dataplane/classify.cc as a golden table: each row is a frame builder and the
// verdict, drop reason or exception kind the classifier must give it. Plus the
// whole RFC 7983 first-byte map and "classify never writes to the packet".
#include "dataplane/classify.h"
#include "dataplane/iface.h"
#include "dataplane/turn_alloc.h"
#include "tests/support/eal_env.h"
#include "tests/support/packet_builder.h"

#include <cctype>
#include <functional>
#include <gtest/gtest.h>
#include <ostream>
#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <string>
#include <vector>

#include "turn/stun.h"

ISAR_TEST_EAL_ENV("test_classify");

using namespace isar;
using namespace isar::test;
using dp::drop;
using dp::exc_kind;
using dp::verdict;

namespace {

constexpr uint16_t port0 = 0, port1 = 5; // DPDK port ids of the two interfaces
const uint32_t relay0 = ip4("198.18.0.1");
const uint32_t relay1 = ip4("198.19.0.1");
const uint32_t peer = ip4("198.18.0.10");

// A valid RTP packet from a peer to relay0:30000.
udp4_spec rtp_to(uint16_t dport = 30000, size_t len = 172)
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
rte_mbuf* on(rte_mempool* mp, const bytes& f, uint16_t port = port0)
{
    return make_exact_mbuf(mp, f, port);
}

row frame(std::string what, udp4_spec s, verdict v, drop d = drop::bad_l2)
{
    return row{std::move(what), [s](rte_mempool* mp) { return on(mp, build(s)); }, v, d};
}
row dropped(std::string what, udp4_spec s, drop d)
{
    return frame(std::move(what), std::move(s), verdict::drop, d);
}
row dropped_raw(std::string what, bytes f, drop d, uint16_t port = port0)
{
    return row{std::move(what), [f, port](rte_mempool* mp) { return on(mp, f, port); },
               verdict::drop, d};
}
row exception(std::string what, bytes f, exc_kind k)
{
    return row{std::move(what), [f](rte_mempool* mp) { return on(mp, f); }, verdict::exception,
               drop::bad_l2, k};
}
// The key is the receiving interface's index (0 for port0, 1 for port1) and
// the relay port.
row lookup(std::string what, udp4_spec s, uint16_t port_id, uint16_t dport, uint16_t owner,
           uint32_t len_after, uint16_t rx_port = port0)
{
    const uint16_t ifc = port_id == port0 ? 0 : 1;
    return row{std::move(what), [s, rx_port](rte_mempool* mp) { return on(mp, build(s), rx_port); },
               verdict::lookup, drop::bad_l2,
               exc_kind::arp,   dp::flow_key(ifc, dport),
               owner,           len_after};
}

std::vector<row> golden_rows()
{
    std::vector<row> r;
    const uint32_t rtp_len = 14 + 20 + 8 + 172;

    // ---- the fast path --------------------------------------------------
    r.push_back(
            lookup("RTP to an even relay port: owner 0", rtp_to(30000), port0, 30000, 0, rtp_len));
    r.push_back(
            lookup("RTP to relay port 30002: owner 1 (ports go in pairs)", rtp_to(30002), port0,
                   30002, 1, rtp_len));
    {
        auto s = rtp_to(40002);
        s.dst_ip = relay1;
        r.push_back(lookup("RTP on the second interface: key has its index", s, port1, 40002, 1,
                           rtp_len, port1));
    }
    {
        auto s = rtp_to();
        s.payload[0] = 0x81;
        s.payload[1] = 200; // RTCP SR
        r.push_back(lookup("RTCP (PT 200) takes the fast path", s, port0, 30000, 0, rtp_len));
    }
    r.push_back(lookup(
            "first byte 128 (lowest RTP)",
            [] {
                auto s = rtp_to();
                s.payload = rtp(1, 1, 20, 128);
                return s;
            }(),
            port0, 30000, 0, 14 + 20 + 8 + 20));
    r.push_back(lookup(
            "first byte 191 (highest RTP)",
            [] {
                auto s = rtp_to();
                s.payload = rtp(1, 1, 20, 191);
                return s;
            }(),
            port0, 30000, 0, 14 + 20 + 8 + 20));
    r.push_back(lookup("8-byte RTP payload (shortest accepted)", rtp_to(30000, 8), port0, 30000, 0,
                       14 + 20 + 8 + 8));
    {
        auto s = rtp_to(30000, 12);
        s.eth_pad = 6; // 54-byte frame padded to the 60-byte minimum
        r.push_back(lookup("Ethernet padding is trimmed", s, port0, 30000, 0, 54));
    }
    {
        auto s = rtp_to();
        s.eth_pad = 100;
        r.push_back(lookup("long trailer is trimmed", s, port0, 30000, 0, rtp_len));
    }
    {
        auto s = rtp_to();
        s.ihl = 6; // one word of IP options
        r.push_back(lookup("IPv4 options (IHL 6)", s, port0, 30000, 0, rtp_len + 4));
    }
    {
        auto s = rtp_to();
        s.frag = RTE_IPV4_HDR_DF_FLAG;
        r.push_back(lookup("DF set is not a fragment", s, port0, 30000, 0, rtp_len));
    }
    {
        auto s = rtp_to();
        s.udp_cksum = 0;
        r.push_back(lookup("UDP checksum absent (0)", s, port0, 30000, 0, rtp_len));
    }
    {
        auto s = rtp_to();
        s.ttl = 1;
        r.push_back(lookup("TTL 1 is for us, not forwarded by IP", s, port0, 30000, 0, rtp_len));
    }

    // ---- exceptions ---------------------------------------------------------
    exc_kind arp = exc_kind::arp;
    r.push_back(exception("ARP request", build(arp_spec{.sip = peer, .tip = relay0}), arp));
    r.push_back(exception("ARP reply", build(arp_spec{.op = 2, .sip = peer, .tip = relay0}), arp));
    r.push_back(exception("truncated ARP (control validates it)",
                          build(arp_spec{.sip = peer, .tip = relay0, .truncate = 20}), arp));
    {
        udp4_spec s = rtp_to();
        s.proto = IPPROTO_ICMP;
        s.l4 = icmp_echo(8, 1, 1, bytes(56, 0xab));
        r.push_back(exception("ICMP echo request", build(s), exc_kind::icmp));
        s.l4 = icmp_echo(3, 0, 0, bytes(28, 0));
        r.push_back(exception("ICMP unreachable", build(s), exc_kind::icmp));
    }
    for (uint8_t b : {0, 1, 2, 3}) {
        auto s = rtp_to();
        s.payload = rtp(1, 1, 20, b);
        r.push_back(exception("STUN first byte " + std::to_string(b), build(s), exc_kind::stun));
    }
    {
        auto s = rtp_to();
        s.payload = {0};
        r.push_back(exception("1-byte STUN is still STUN", build(s), exc_kind::stun));
    }
    for (uint8_t b : {20, 22, 63}) {
        auto s = rtp_to();
        s.payload = rtp(1, 1, 20, b);
        r.push_back(exception("DTLS first byte " + std::to_string(b), build(s), exc_kind::dtls));
    }

    // ---- RFC 7983: everything else is not RTP -------------------------------
    for (uint8_t b : {4, 19, 64, 127, 192, 255}) {
        auto s = rtp_to();
        s.payload = rtp(1, 1, 20, b);
        r.push_back(dropped("first byte " + std::to_string(b), s, drop::not_rtp));
    }
    {
        auto s = rtp_to();
        s.payload.clear();
        r.push_back(dropped("empty UDP payload", s, drop::not_rtp));
    }
    r.push_back(dropped("7-byte RTP payload", rtp_to(30000, 7), drop::rtp_short));
    r.push_back(dropped("1-byte RTP payload", rtp_to(30000, 1), drop::rtp_short));

    // ---- L2 -------------------------------------------------------------------
    r.push_back(dropped_raw("empty frame", {}, drop::bad_l2));
    r.push_back(dropped_raw("13-byte frame", bytes(13, 0x08), drop::bad_l2));
    {
        auto f = build(rtp_to());
        f.resize(14);
        r.push_back(dropped_raw("Ethernet header only", f, drop::bad_ip));
    }
    {
        auto s = rtp_to();
        s.vlan_tci = 100;
        r.push_back(dropped("802.1Q tagged", s, drop::odd_ethertype));
    }
    {
        auto s = rtp_to();
        s.ether_type = RTE_ETHER_TYPE_IPV6;
        r.push_back(dropped("IPv6 EtherType on IPv4 bytes", s, drop::bad_ip6));
        s.ether_type = 0x88cc;
        r.push_back(dropped("LLDP EtherType", s, drop::odd_ethertype));
        s.ether_type = 0x0000;
        r.push_back(dropped("EtherType 0 (802.3 length)", s, drop::odd_ethertype));
    }
    r.push_back(row{"multi-segment mbuf",
                    [](rte_mempool* mp) { return make_chain(mp, build(rtp_to()), 64, port0); },
                    verdict::drop, drop::multi_seg});
    r.push_back(row{"multi-segment, split inside the Ethernet header",
                    [](rte_mempool* mp) { return make_chain(mp, build(rtp_to()), 10, port0); },
                    verdict::drop, drop::multi_seg});
    r.push_back(dropped_raw("received on a port that is no interface", build(rtp_to()),
                            drop::not_for_us, 3));
    r.push_back(dropped_raw("port id beyond the table", build(rtp_to()), drop::not_for_us, 200));

    // ---- IPv4 -----------------------------------------------------------------
    {
        auto f = build(rtp_to());
        f.resize(14 + 19);
        r.push_back(dropped_raw("truncated IPv4 header", f, drop::bad_ip));
    }
    {
        auto s = rtp_to();
        s.version = 6;
        r.push_back(dropped("IP version 6 under EtherType IPv4", s, drop::bad_ip));
        s.version = 5;
        r.push_back(dropped("IP version 5", s, drop::bad_ip));
    }
    for (uint8_t ihl : {0, 4}) {
        auto s = rtp_to();
        s.ihl = ihl;
        r.push_back(dropped("IHL " + std::to_string(ihl), s, drop::bad_ip));
    }
    {
        auto s = rtp_to();
        s.ihl = 15;
        s.total_length = 28; // total < IHL
        r.push_back(dropped("IHL 15 beyond total length", s, drop::bad_ip));
    }
    {
        auto s = rtp_to(30000, 12);
        s.ihl = 15;
        s.truncate = 14 + 40; // header claims 60 bytes, frame has 40
        r.push_back(dropped("IHL 15 beyond the frame", s, drop::bad_ip));
    }
    {
        auto s = rtp_to();
        s.total_length = 20 + 8 + 172 + 1;
        r.push_back(dropped("total length one past the frame", s, drop::bad_ip));
        s.total_length = 0xffff;
        r.push_back(dropped("total length 65535", s, drop::bad_ip));
        s.total_length = 19;
        r.push_back(dropped("total length below 20", s, drop::bad_ip));
        s.total_length = 0;
        r.push_back(dropped("total length 0", s, drop::bad_ip));
    }
    {
        auto s = rtp_to();
        s.ip_cksum_xor = 0x0001;
        r.push_back(dropped("IP checksum off by one bit", s, drop::bad_ip_cksum));
        s.ip_cksum_xor = 0xffff;
        r.push_back(dropped("IP checksum inverted", s, drop::bad_ip_cksum));
    }
    {
        auto s = rtp_to();
        s.frag = RTE_IPV4_HDR_MF_FLAG;
        r.push_back(dropped("first fragment (MF)", s, drop::ip_fragment));
        s.frag = 185; // offset 1480, last fragment
        r.push_back(dropped("last fragment (offset)", s, drop::ip_fragment));
        s.frag = RTE_IPV4_HDR_MF_FLAG | 1;
        r.push_back(dropped("middle fragment", s, drop::ip_fragment));
    }
    {
        auto s = rtp_to();
        s.dst_ip = ip4("198.18.0.99");
        r.push_back(dropped("another host's address", s, drop::not_for_us));
        s.dst_ip = ip4("198.18.0.255");
        r.push_back(dropped("subnet broadcast", s, drop::not_for_us));
        s.dst_ip = 0xffffffff;
        r.push_back(dropped("limited broadcast", s, drop::not_for_us));
        s.dst_ip = relay1;
        r.push_back(dropped("other interface's address arriving here", s, drop::not_for_us));
    }
    {
        auto s = rtp_to();
        s.proto = IPPROTO_TCP;
        s.l4 = bytes(40, 0);
        r.push_back(dropped("TCP", s, drop::not_udp));
        s.proto = 47;
        r.push_back(dropped("GRE", s, drop::not_udp));
        s.proto = IPPROTO_ICMP;
        s.dst_ip = ip4("198.18.0.99");
        r.push_back(dropped("ICMP for another host", s, drop::not_for_us));
    }

    // ---- UDP ------------------------------------------------------------------
    {
        auto s = rtp_to();
        s.l4 = bytes{0x13, 0x8c, 0x75};
        r.push_back(dropped("truncated UDP header", s, drop::bad_udp));
    }
    {
        auto s = rtp_to();
        s.udp_length = 8 + 172 + 1;
        r.push_back(dropped("UDP length above IP payload", s, drop::bad_udp));
        s.udp_length = 8 + 171;
        r.push_back(dropped("UDP length below IP payload", s, drop::bad_udp));
        s.udp_length = 7;
        r.push_back(dropped("UDP length 7", s, drop::bad_udp));
        s.udp_length = 0;
        r.push_back(dropped("UDP length 0", s, drop::bad_udp));
    }
    return r;
}

void PrintTo(const row& r, std::ostream* os)
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

    static rte_mempool* mp_;
    dp::iface ifaces_[2];
    dp::local_addr laddrs_[2];
    int16_t iface_of_port_[8];
    dp::classify_ctx ctx_;
    unsigned in_use_ = 0;
};
rte_mempool* ClassifyCtx::mp_ = nullptr;

class Classify : public ClassifyCtx, public ::testing::WithParamInterface<row> {};

std::string meta_str(const dp::pkt_meta& m)
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
void check_row(const dp::classify_ctx& ctx, rte_mempool* mp, const row& r)
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

std::string row_name(const ::testing::TestParamInfo<row>& i)
{
    std::string n = std::to_string(i.index) + "_";
    for (char c : i.param.what)
        n += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    return n;
}

} // namespace

TEST_P(Classify, Golden)
{
    check_row(ctx_, mp_, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Table, Classify, ::testing::ValuesIn(golden_rows()), row_name);

// ---- TURN (RFC 8656): listener port 3478 and the relay pool ------------------
// The same golden check with TURN on: classify demultiplexes the listener
// port (ChannelData and Send indications to the allocation's owner, other
// STUN to control, the rest dropped) and looks up every relay-pool port
// whatever it carries (an allocation relays anything; a leg decides later).
namespace {

constexpr uint16_t turn_port = 3478;
constexpr uint16_t pool_min = 30000, pool_max = 39999;
constexpr uint16_t plain_port = 20000; // neither TURN nor pool

udp4_spec turn_to(const bytes& payload, uint16_t dport = turn_port, uint16_t sport = 5004)
{
    udp4_spec s;
    s.src_ip = peer;
    s.dst_ip = relay0;
    s.src_port = sport;
    s.dst_port = dport;
    s.payload = payload;
    return s;
}

bytes chan_data(uint16_t ch, size_t n, int length = -1)
{
    bytes b(4 + n, 0x5a);
    const uint16_t len = length < 0 ? static_cast<uint16_t>(n) : static_cast<uint16_t>(length);
    b[0] = static_cast<uint8_t>(ch >> 8);
    b[1] = static_cast<uint8_t>(ch);
    b[2] = static_cast<uint8_t>(len >> 8);
    b[3] = static_cast<uint8_t>(len);
    return b;
}

const uint8_t txid[12] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};

bytes stun_msg(uint16_t type, bool send_attrs)
{
    bytes buf(512);
    turn::builder b(buf.data(), buf.size(), type, txid);
    if (send_attrs) {
        b.add_xor_address(turn::attr::xor_peer_address,
                          turn::transport_addr::v4(rte_cpu_to_be_32(peer), 7000));
        b.add(turn::attr::data, "hello", 5);
    } else {
        b.add_fingerprint();
    }
    buf.resize(b.size());
    return buf;
}
bytes send_ind() { return stun_msg(turn::send_indication_type, true); }
bytes binding_req()
{
    return stun_msg(turn::make_type(turn::method::binding, turn::msg_class::request), false);
}

uint16_t client_owner(uint16_t sport)
{
    return static_cast<uint16_t>(
            dp::owner_of_client(rte_cpu_to_be_32(peer), rte_cpu_to_be_16(sport), 2));
}
// A source port whose client owner (2 workers) is `w`.
uint16_t sport_for(unsigned w)
{
    for (uint16_t p = 5004; p < 6000; p++)
        if (client_owner(p) == w)
            return p;
    return 0;
}

row turn_client(std::string what, udp4_spec s, bool channel_data)
{
    row r{std::move(what), [s](rte_mempool* mp) { return on(mp, build(s)); }, verdict::turn_client};
    r.owner = client_owner(s.src_port);
    r.channel_data = channel_data;
    return r;
}
row pool_lookup(std::string what, udp4_spec s, dp::payload_class pc)
{
    const uint32_t len = static_cast<uint32_t>(build(s).size());
    row r = lookup(std::move(what), s, port0, s.dst_port,
                   static_cast<uint16_t>(dp::owner_of_port(s.dst_port, 2)), len);
    r.pclass = static_cast<int>(pc);
    return r;
}

std::vector<row> turn_rows()
{
    std::vector<row> r;
    using pc = dp::payload_class;
    const uint16_t s0 = sport_for(0), s1 = sport_for(1);

    // ---- the listener port: the fast path ----------------------------------
    for (uint16_t sport : {s0, s1}) {
        const std::string w = " (client owner " + std::to_string(client_owner(sport)) + ")";
        r.push_back(turn_client("ChannelData 0x4001" + w, turn_to(chan_data(0x4001, 20), turn_port, sport),
                                true));
        r.push_back(turn_client("ChannelData 0x7fff" + w, turn_to(chan_data(0x7fff, 20), turn_port, sport),
                                true));
        r.push_back(turn_client("Send indication" + w, turn_to(send_ind(), turn_port, sport), false));
    }
    r.push_back(turn_client("ChannelData 0x4000 (lowest)", turn_to(chan_data(0x4000, 8)), true));
    r.push_back(turn_client("ChannelData 0x40ff", turn_to(chan_data(0x40ff, 8)), true));
    r.push_back(turn_client("ChannelData 0x4fff (RFC 8656 highest)", turn_to(chan_data(0x4fff, 8)), true));
    r.push_back(turn_client("ChannelData 0x7ffe (coturn's highest)", turn_to(chan_data(0x7ffe, 8)), true));
    r.push_back(turn_client("ChannelData with no data (4 bytes)", turn_to(chan_data(0x4001, 0)), true));
    r.push_back(turn_client("ChannelData whose length runs past the datagram: the worker judges it",
                            turn_to(chan_data(0x4001, 4, 100)), true));
    {
        bytes si = send_ind();
        si[4] ^= 0xff; // no magic cookie
        r.push_back(turn_client("Send indication type without the cookie: the worker judges it",
                                turn_to(si), false));
    }

    // ---- the listener port: to control, or dropped ---------------------------
    r.push_back(exception("Binding request to 3478", build(turn_to(binding_req())), exc_kind::turn));
    r.push_back(exception(
            "Allocate request to 3478",
            build(turn_to(stun_msg(turn::make_type(turn::method::allocate, turn::msg_class::request),
                                   false))),
            exc_kind::turn));
    r.push_back(exception(
            "Data indication from a client (not Send) to 3478",
            build(turn_to(stun_msg(turn::data_indication_type, true))), exc_kind::turn));
    r.push_back(dropped("RTP to 3478", turn_to(rtp(1, 1, 40)), drop::turn_malformed));
    r.push_back(dropped("DTLS to 3478", turn_to(rtp(1, 1, 40, 22)), drop::turn_malformed));
    r.push_back(dropped("first byte 0xc0 to 3478", turn_to(rtp(1, 1, 40, 0xc0)),
                        drop::turn_malformed));
    r.push_back(dropped("first byte 4 to 3478", turn_to(rtp(1, 1, 40, 4)), drop::turn_malformed));
    r.push_back(dropped("empty payload to 3478", turn_to({}), drop::turn_malformed));
    r.push_back(dropped("3-byte ChannelData to 3478", turn_to(bytes{0x40, 0x01, 0x00}),
                        drop::turn_malformed));

    // ---- relay-pool ports: looked up whatever they carry -----------------------
    for (uint16_t port : {pool_min, uint16_t{30003}, uint16_t{35555}, pool_max}) {
        const std::string p = " to pool port " + std::to_string(port);
        r.push_back(pool_lookup("RTP" + p, turn_to(rtp(1, 1, 40), port), pc::rtp));
        r.push_back(pool_lookup("Binding request" + p, turn_to(binding_req(), port), pc::stun));
        r.push_back(pool_lookup("DTLS" + p, turn_to(rtp(1, 1, 40, 22), port), pc::dtls));
        r.push_back(pool_lookup("junk" + p, turn_to(rtp(1, 1, 40, 0xc0), port), pc::other));
    }
    r.push_back(pool_lookup("Send indication to a pool port", turn_to(send_ind(), 30010), pc::stun));
    r.push_back(pool_lookup("ChannelData to a pool port", turn_to(chan_data(0x4001, 8), 30010),
                            pc::other));
    r.push_back(pool_lookup("1-byte STUN to a pool port", turn_to(bytes{0}, 30010), pc::stun));
    r.push_back(pool_lookup("empty payload to a pool port", turn_to({}, 30010), pc::other));
    r.push_back(pool_lookup("short RTP to a pool port", turn_to(rtp(1, 1, 5), 30010),
                            pc::rtp_short));

    // ---- any other port: as without TURN ---------------------------------------
    r.push_back(pool_lookup("RTP to a port neither TURN nor pool", turn_to(rtp(1, 1, 40), plain_port),
                            pc::rtp));
    r.push_back(exception("STUN to a port neither TURN nor pool",
                          build(turn_to(binding_req(), plain_port)), exc_kind::stun));
    r.push_back(exception("DTLS to a port neither TURN nor pool",
                          build(turn_to(rtp(1, 1, 40, 22), plain_port)), exc_kind::dtls));
    r.push_back(dropped("ChannelData to a port neither TURN nor pool",
                        turn_to(chan_data(0x4001, 8), plain_port), drop::not_rtp));
    r.push_back(dropped("short RTP to a port neither TURN nor pool",
                        turn_to(rtp(1, 1, 5), plain_port), drop::rtp_short));
    r.push_back(dropped("empty payload to a port neither TURN nor pool", turn_to({}, plain_port),
                        drop::not_rtp));
    r.push_back(dropped("ChannelData to 3479 (not a listener)", turn_to(chan_data(0x4001, 8), 3479),
                        drop::not_rtp));
    return r;
}

class ClassifyTurn : public ClassifyCtx, public ::testing::WithParamInterface<row> {
protected:
    void SetUp() override
    {
        ClassifyCtx::SetUp();
        ctx_.relay_min = pool_min;
        ctx_.relay_max = pool_max;
        ctx_.turn_ports[0] = 5349;
        ctx_.turn_ports[1] = turn_port;
        ctx_.nturn_ports = 2;
    }
};

} // namespace

TEST_P(ClassifyTurn, Golden)
{
    check_row(ctx_, mp_, GetParam());
}

INSTANTIATE_TEST_SUITE_P(TurnTable, ClassifyTurn, ::testing::ValuesIn(turn_rows()), row_name);

// The sources chosen above really do land on both workers.
TEST(ClassifyTurnOwners, BothWorkers)
{
    EXPECT_NE(sport_for(0), 0);
    EXPECT_NE(sport_for(1), 0);
}

// Every one of the 256 first-byte values lands where RFC 7983 says.
TEST_F(ClassifyCtx, Rfc7983FullMap)
{
    for (unsigned b = 0; b < 256; b++) {
        auto s = rtp_to();
        s.payload = rtp(1, 1, 40, static_cast<uint8_t>(b));
        rte_mbuf* m = make_mbuf(mp_, build(s), port0);
        ASSERT_NE(m, nullptr);
        dp::pkt_meta meta;
        dp::classify_one(ctx_, m, meta);
        if (b <= 3) {
            EXPECT_EQ(meta.v, verdict::exception) << b;
            EXPECT_EQ(meta.exc, exc_kind::stun) << b;
        } else if (b >= 20 && b <= 63) {
            EXPECT_EQ(meta.v, verdict::exception) << b;
            EXPECT_EQ(meta.exc, exc_kind::dtls) << b;
        } else if (b >= 128 && b <= 191) {
            EXPECT_EQ(meta.v, verdict::lookup) << b;
        } else {
            EXPECT_EQ(meta.v, verdict::drop) << b;
            EXPECT_EQ(meta.reason, drop::not_rtp) << b;
        }
        rte_pktmbuf_free(m);
    }
}

// Owner is dealt by port number with the context's worker count.
TEST_F(ClassifyCtx, OwnerFollowsWorkerCount)
{
    for (uint16_t nw : {1, 2, 3, 7}) {
        ctx_.nworkers = nw;
        for (uint16_t port : {30000, 30001, 30002, 30005, 65535}) {
            rte_mbuf* m = make_mbuf(mp_, build(rtp_to(port)), port0);
            ASSERT_NE(m, nullptr);
            dp::pkt_meta meta;
            dp::classify_one(ctx_, m, meta);
            ASSERT_EQ(meta.v, verdict::lookup);
            EXPECT_EQ(meta.owner, (port / 2) % nw) << "port " << port << " nw " << nw;
            EXPECT_EQ(meta.key, dp::flow_key(0, port));
            EXPECT_EQ(meta.iface, 0);
            rte_pktmbuf_free(m);
        }
    }
}

// Every length from 0 to a full RTP frame, cut short: never a lookup unless
// the frame is whole, and never a read past the data (ASan checks that).
TEST_F(ClassifyCtx, EveryTruncation)
{
    const bytes full = build(rtp_to(30000, 20));
    for (size_t n = 0; n <= full.size(); n++) {
        bytes f(full.begin(), full.begin() + static_cast<long>(n));
        rte_mbuf* m = make_exact_mbuf(mp_, f, port0);
        ASSERT_NE(m, nullptr);
        dp::pkt_meta meta;
        dp::classify_one(ctx_, m, meta);
        if (n == full.size()) {
            EXPECT_EQ(meta.v, verdict::lookup);
        } else {
            EXPECT_EQ(meta.v, verdict::drop) << n << " bytes: " << meta_str(meta);
        }
        rte_pktmbuf_free(m);
    }
}

// The port's own checksum verdicts: a bad one drops, a good IPv4 one is
// trusted without summing the header again.
TEST_F(ClassifyCtx, PortChecksumFlags)
{
    struct c {
        uint64_t flags;
        bool break_ip;
        verdict want;
        drop reason;
    };
    for (const c& x : std::initializer_list<c>{
                 {RTE_MBUF_F_RX_L4_CKSUM_BAD, false, verdict::drop, drop::bad_udp_cksum},
                 {RTE_MBUF_F_RX_L4_CKSUM_GOOD, false, verdict::lookup, drop::bad_l2},
                 {RTE_MBUF_F_RX_IP_CKSUM_BAD, false, verdict::drop, drop::bad_ip_cksum},
                 {RTE_MBUF_F_RX_IP_CKSUM_GOOD, true, verdict::lookup, drop::bad_l2},
                 {0, true, verdict::drop, drop::bad_ip_cksum},
         }) {
        bytes f = build(rtp_to(30000));
        if (x.break_ip)
            f[24] ^= 0x5a; // IPv4 header checksum
        rte_mbuf* m = make_mbuf(mp_, f, port0);
        ASSERT_NE(m, nullptr);
        m->ol_flags = x.flags;
        dp::pkt_meta meta;
        dp::classify_one(ctx_, m, meta);
        EXPECT_EQ(meta.v, x.want) << x.flags;
        if (x.want == verdict::drop) {
            EXPECT_EQ(meta.reason, x.reason) << x.flags;
        }
        rte_pktmbuf_free(m);
    }
}

// ---- the kernel interface (TURN over TCP/TLS) --------------------------------
// With a kernel interface on interface 0, TCP to the stream ports goes up
// (verdict::kernel); kernel_forward = "all" also sends any other TCP and the
// UDP that is neither relay nor TURN. Interface 1 has none: TCP stays a
// counted drop there, as it is without any kernel interface.
namespace {

udp4_spec tcp_to(uint16_t dport, uint32_t dst = relay0)
{
    udp4_spec s;
    s.src_ip = peer;
    s.dst_ip = dst;
    s.proto = IPPROTO_TCP;
    bytes h(20, 0);
    h[0] = 0xc3; // source port 50000
    h[1] = 0x50;
    h[2] = static_cast<uint8_t>(dport >> 8);
    h[3] = static_cast<uint8_t>(dport);
    h[12] = 0x50; // data offset 5
    h[13] = 0x02; // SYN
    s.l4 = h;
    return s;
}

struct kcase {
    const char* what;
    udp4_spec s;
    uint16_t rx_port;
    verdict v;
    drop reason = drop::bad_l2;
    exc_kind exc = exc_kind::arp;
};

void check_kernel(const dp::classify_ctx& ctx, rte_mempool* mp, const kcase& c)
{
    rte_mbuf* m = make_exact_mbuf(mp, build(c.s), c.rx_port);
    ASSERT_NE(m, nullptr) << c.what;
    const size_t frame = 14 + (c.s.l4 ? c.s.l4->size() : 8 + c.s.payload.size()) + 20;
    dp::pkt_meta meta;
    dp::classify_one(ctx, m, meta);
    EXPECT_EQ(meta.v, c.v) << c.what << ": got " << meta_str(meta);
    if (c.v == verdict::drop) {
        EXPECT_EQ(meta.reason, c.reason) << c.what << ": got " << meta_str(meta);
    }
    if (c.v == verdict::exception) {
        EXPECT_EQ(meta.exc, c.exc) << c.what << ": got " << meta_str(meta);
    }
    if (c.v == verdict::kernel) {
        EXPECT_EQ(meta.iface, c.rx_port == port0 ? 0 : 1) << c.what;
        EXPECT_EQ(rte_pktmbuf_pkt_len(m), frame) << c.what << ": Ethernet padding trimmed";
    }
    rte_pktmbuf_free(m);
}

std::vector<kcase> kernel_cases(bool has_kernel, bool all)
{
    const verdict up = verdict::kernel, dr = verdict::drop, lk = verdict::lookup;
    const verdict ex = verdict::exception;
    auto tcp_padded = tcp_to(3478);
    tcp_padded.eth_pad = 6; // 54-byte frame padded to 60
    auto tcp_short = tcp_to(3478);
    tcp_short.l4 = bytes{0xc3, 0x50, 0x0d}; // no whole destination port
    auto tcp_other_host = tcp_to(3478, ip4("198.18.0.99"));
    auto tcp_if1 = tcp_to(3478, relay1);
    auto udp_dns = turn_to(bytes(30, 0x12), 53);
    auto udp_turn_stun = turn_to(stun_msg(0x0001, false), turn_port);
    udp4_spec icmp = rtp_to();
    icmp.proto = IPPROTO_ICMP;
    icmp.l4 = icmp_echo(8, 1, 1, bytes(56, 0xab));
    // ICMP errors quoting a TCP datagram (the kernel's) and quoting UDP.
    auto icmp_err = [&](uint8_t type, uint8_t code, uint8_t quoted_proto) {
        udp4_spec e = rtp_to();
        e.proto = IPPROTO_ICMP;
        bytes q = build(tcp_to(443)); // the quoted IPv4 header + 8 bytes
        q = bytes(q.begin() + 14, q.begin() + 14 + 28);
        q[9] = quoted_proto;
        bytes l4 = {type, code, 0, 0, 0, 0, 0x05, 0xdc}; // next-hop MTU 1500
        l4.insert(l4.end(), q.begin(), q.end());
        e.l4 = l4;
        return e;
    };
    const verdict turn_up = has_kernel ? up : dr;
    const verdict all_up = has_kernel && all ? up : dr;
    return {
            {"TCP to listen_tcp 3478", tcp_to(3478), port0, turn_up, drop::not_udp},
            {"TCP to listen_tls 443", tcp_to(443), port0, turn_up, drop::not_udp},
            {"TCP padded to 60 bytes", tcp_padded, port0, turn_up, drop::not_udp},
            {"TCP to port 22 (SSH)", tcp_to(22), port0, all_up, drop::not_udp},
            {"TCP too short for its ports", tcp_short, port0, dr, drop::not_udp},
            {"TCP for another host", tcp_other_host, port0, dr, drop::not_for_us},
            {"TCP on the interface without a kernel interface", tcp_if1, port1, dr,
             drop::not_udp},
            {"UDP to port 53 (neither relay nor TURN)", udp_dns, port0,
             has_kernel && all ? up : dr, drop::not_rtp},
            {"RTP to a relay port", rtp_to(30000), port0, lk},
            {"UDP STUN to the TURN port", udp_turn_stun, port0, ex, drop::bad_l2, exc_kind::turn},
            {"ICMP echo stays with control", icmp, port0, ex, drop::bad_l2, exc_kind::icmp},
            {"ICMP frag needed quoting TCP", icmp_err(3, 4, IPPROTO_TCP), port0,
             has_kernel ? up : ex, drop::bad_l2, exc_kind::icmp},
            {"ICMP time exceeded quoting TCP", icmp_err(11, 0, IPPROTO_TCP), port0,
             has_kernel ? up : ex, drop::bad_l2, exc_kind::icmp},
            {"ICMP port unreachable quoting UDP stays with control", icmp_err(3, 3, IPPROTO_UDP),
             port0, ex, drop::bad_l2, exc_kind::icmp},
    };
}

class ClassifyKernel : public ClassifyCtx,
                       public ::testing::WithParamInterface<std::pair<bool, bool>> {};

} // namespace

TEST_P(ClassifyKernel, Verdicts)
{
    const auto [has_kernel, all] = GetParam();
    ifaces_[0].kernel = has_kernel;
    ifaces_[0].kernel_all = has_kernel && all;
    ifaces_[0].kernel_port = 7;
    ctx_.relay_min = pool_min;
    ctx_.relay_max = pool_max;
    ctx_.turn_ports[0] = turn_port;
    ctx_.nturn_ports = 1;
    ctx_.stream_ports[0] = 3478;
    ctx_.stream_ports[1] = 443;
    ctx_.nstream_ports = 2;
    for (const kcase& c : kernel_cases(has_kernel, all))
        check_kernel(ctx_, mp_, c);
}

INSTANTIATE_TEST_SUITE_P(Modes, ClassifyKernel,
                         ::testing::Values(std::pair{false, false}, std::pair{true, false},
                                           std::pair{true, true}),
                         [](const ::testing::TestParamInfo<std::pair<bool, bool>>& p) {
                             return std::string(!p.param.first   ? "no_kernel_iface"
                                                : p.param.second ? "forward_all"
                                                                 : "forward_turn");
                         });
