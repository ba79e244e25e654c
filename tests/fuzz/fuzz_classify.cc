// libFuzzer target for frame classification (dataplane/classify.h): any
// frame, received on either interface or on a port that is none, in an
// exactly-sized external buffer (ASan sees a read past the frame) or as a
// chain of small segments; then the worker's UDP payload parsers (RFC 7983
// payload class, TURN ChannelData and Send indication framing, STUN parse)
// on whatever classify lets through. Checks what the worker relies on
// (abort if not): offsets and owner in range, the frame never written, only
// trimmed to the IPv4 total length (for any verdict reached after the UDP
// header checks: STUN exceptions and drops too).
//
// Input: byte 0 = receive port (bits 0-1: port 0, port 5, port 3 = no
// interface) and bit 2: as a chain of byte-1-sized segments (at least 16); the rest is the
// frame. tests/fuzz/make_seeds.py writes RTP, RTCP, STUN, DTLS, ChannelData,
// Send indication, ARP, ICMP, fragment and VLAN frames.
#include "dataplane/classify.h"
#include "dataplane/iface.h"
#include "tests/fuzz/fuzz_eal.h"
#include "tests/support/packet_builder.h"
#include "turn/stun.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <rte_byteorder.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

using namespace isar;

namespace {

constexpr uint16_t port0 = 0, port1 = 5, no_iface_port = 3;

rte_mempool* mp;
dp::iface ifaces[2];
dp::local_addr laddrs[3];
int16_t iface_of_port[8];
dp::classify_ctx ctx;
volatile uint32_t sink;

void check(bool cond, const char* what)
{
    if (!cond) {
        std::fprintf(stderr, "fuzz_classify: %s\n", what);
        std::abort();
    }
}

void init_once()
{
    if (mp != nullptr)
        return;
    fuzz::eal_init("fuzz_classify");
    mp = rte_pktmbuf_pool_create("fuzz_classify", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                 SOCKET_ID_ANY);
    check(mp != nullptr, "no mempool");
    for (auto& i : iface_of_port)
        i = -1;
    iface_of_port[port0] = 0;
    iface_of_port[port1] = 1;
    ifaces[0].index = 0;
    ifaces[0].port_id = port0;
    ifaces[0].ip_be = rte_cpu_to_be_32(0xc6120001); // 198.18.0.1/24
    ifaces[0].mask_be = rte_cpu_to_be_32(0xffffff00);
    ifaces[1].index = 1;
    ifaces[1].port_id = port1;
    ifaces[1].ip_be = rte_cpu_to_be_32(0xc6130001); // 198.19.0.1/24
    ifaces[1].mask_be = rte_cpu_to_be_32(0xffffff00);
    ifaces[1].rx_partial_cksum = true;
    // Slots: 0 198.18.0.1/24 and 1 2001:2::1/64 on interface 0, 2
    // 198.19.0.1/24 on interface 1.
    ifaces[0].laddr_first = ifaces[0].laddr4 = 0;
    ifaces[0].nladdr = 2;
    ifaces[1].laddr_first = ifaces[1].laddr4 = 2;
    ifaces[1].nladdr = 1;
    for (uint16_t i = 0; i < 2; i++) {
        dp::local_addr& a = laddrs[ifaces[i].laddr4];
        a.iface = i;
        a.ip4_be = ifaces[i].ip_be;
        a.mask4_be = ifaces[i].mask_be;
    }
    laddrs[1].family = 6;
    laddrs[1].prefix_len = 64;
    laddrs[1].ip6.b[0] = 0x20;
    laddrs[1].ip6.b[1] = 0x01;
    laddrs[1].ip6.b[3] = 0x02;
    laddrs[1].ip6.b[15] = 0x01;
    ctx.ifaces = ifaces;
    ctx.laddrs = laddrs;
    ctx.nladdrs = 3;
    ctx.iface_of_port = iface_of_port;
    ctx.nports = 8;
    ctx.nworkers = 2;
    ctx.relay_min = 30000;
    ctx.relay_max = 39999;
    ctx.turn_ports[0] = 3478;
    ctx.turn_ports[1] = 5349;
    ctx.nturn_ports = 2;
}

// The worker's parsers on the UDP payload of a frame classify let through.
void payload_parsers(const rte_mbuf* m, const dp::pkt_meta& meta)
{
    const uint32_t hl = meta.l4_off + 8u;
    check(rte_pktmbuf_is_contiguous(m), "a non-contiguous frame went on");
    check(meta.l3_off >= 14 && meta.l4_off >= meta.l3_off + (meta.family == 6 ? 40u : 20u),
          "bad offsets");
    check(hl <= rte_pktmbuf_pkt_len(m), "UDP header past the frame");
    const uint8_t* p = rte_pktmbuf_mtod_offset(m, const uint8_t*, hl);
    const uint32_t len = rte_pktmbuf_pkt_len(m) - hl;
    // Exact copy: the payload parsers' reads are checked against its end.
    std::vector<uint8_t> pl(p, p + len);
    const uint8_t* q = pl.empty() ? nullptr : pl.data();
    sink = static_cast<uint32_t>(dp::payload_class_of(q, len));
    uint16_t ch = 0, dlen = 0;
    if (turn::parse_channel_data(q, len, ch, dlen))
        check(4u + dlen <= len, "ChannelData length past the payload");
    turn::send_view sv;
    if (turn::parse_send_indication(q, len, sv))
        check(size_t{sv.data_off} + sv.data_len <= len, "Send DATA past the payload");
    turn::message msg;
    sink = static_cast<uint32_t>(turn::parse(q, len, msg));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    init_once();
    if (size < 2 || size > 9000 + 2)
        return 0;
    static const uint16_t ports[4] = {port0, port1, no_iface_port, port0};
    const uint16_t rx = ports[data[0] & 3];
    const bool chain = (data[0] & 4) != 0;
    const size_t seg = std::max<size_t>(16, data[1]);
    const test::bytes frame(data + 2, data + size);
    rte_mbuf* m = chain ? test::make_chain(mp, frame, seg, rx) : test::make_exact_mbuf(mp, frame, rx);
    if (m == nullptr)
        return 0; // frame > 64 KB or an over-long chain
    dp::pkt_meta meta;
    dp::classify_one(ctx, m, meta);
    const test::bytes after = test::mbuf_bytes(m);
    check(after.size() <= frame.size() && std::equal(after.begin(), after.end(), frame.begin()),
          "classify changed the frame");
    switch (meta.v) {
    case dp::verdict::lookup:
        check(meta.owner < ctx.nworkers, "owner out of range");
        check((meta.key >> 16) == meta.laddr && laddrs[meta.laddr].iface == iface_of_port[rx] &&
                      laddrs[meta.laddr].family == meta.family,
              "key is not a slot of the receiving interface and the packet's family");
        // (RTP to a port outside the relay range is looked up too, and misses.)
        check((meta.key & 0xffff) == rte_be_to_cpu_16(*reinterpret_cast<const uint16_t*>(
                                             after.data() + meta.l4_off + 2)),
              "key is not the destination port");
        payload_parsers(m, meta);
        break;
    case dp::verdict::turn_client:
        check(meta.owner < ctx.nworkers, "owner out of range");
        payload_parsers(m, meta);
        break;
    case dp::verdict::kernel: // (no kernel interface here: never)
    case dp::verdict::exception:
    case dp::verdict::drop:
        sink = static_cast<uint32_t>(meta.reason);
        break;
    }
    // Trimmed (Ethernet padding dropped) only once the UDP header checked
    // out, whatever the verdict after it, and then to exactly the datagram.
    if (after.size() != frame.size()) {
        check(meta.l4_off != 0, "trimmed before the UDP checks");
        if (meta.family == 4)
            check(after.size() == 14u + ((size_t{frame[16]} << 8) | frame[17]),
                  "not trimmed to the IPv4 total length");
        else
            check(after.size() == 14u + 40u + ((size_t{frame[18]} << 8) | frame[19]),
                  "not trimmed to the IPv6 payload length");
    }
    if (meta.v != dp::verdict::drop)
        check(iface_of_port[rx] >= 0, "a frame from a port with no interface went on");
    rte_pktmbuf_free(m);
    return 0;
}
