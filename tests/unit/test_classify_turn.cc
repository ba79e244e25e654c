// dataplane/classify.cc's golden table with TURN on (the listener port and
// the relay pool), and the verdicts with a kernel interface (TURN over
// TCP/TLS). The rows and their check are test_classify's (classify_golden.h).
#include "dataplane/classify.h"
#include "dataplane/iface.h"
#include "dataplane/turn_alloc.h"
#include "tests/support/eal_env.h"
#include "tests/support/packet_builder.h"
#include "tests/unit/classify_golden.h"

#include <gtest/gtest.h>
#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <string>
#include <utility>
#include <vector>

#include "turn/stun.h"

ISAR_TEST_EAL_ENV("test_classify_turn");

using namespace isar;
using namespace isar::test;
using namespace isar::test::classify_golden;

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
