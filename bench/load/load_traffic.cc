// isar-bench generator and sink (load_scenario.h): every packet built fresh
// for its sender (SRTP-protected with the sending endpoint's key), and a
// sample of the output checked (addresses, ports, MACs, decrypted with the
// receiving leg's key, RTP header and payload intact).
#include "bench/load/load_scenario.h"

#include <cstring>

#include <rte_cycles.h>
#include <rte_prefetch.h>
#include <rte_ring.h>

namespace isar::bench_load {

// ---- generator -------------------------------------------------------
// Builds one fresh packet for sender `x` in `mb`.
bool scenario::build(rte_mbuf* mb, sender& x)
{
    const unsigned rtp_len = 12 + payload;
    const unsigned trailer = crypto::max_trailer;
    const unsigned hl = bench_pkt::hdr_len(x.family);
    auto* p = reinterpret_cast<uint8_t*>(
            rte_pktmbuf_append(mb, static_cast<uint16_t>(hl + rtp_len)));
    if (p == nullptr)
        return false;
    uint8_t* rtp = p + hl;
    x.seq++;
    x.ts += 160;
    rtp[0] = 0x80;
    rtp[1] = 0x00; // PT 0
    rtp[2] = static_cast<uint8_t>(x.seq >> 8);
    rtp[3] = static_cast<uint8_t>(x.seq);
    const uint32_t ts_be = rte_cpu_to_be_32(x.ts), ssrc_be = rte_cpu_to_be_32(x.ssrc);
    memcpy(rtp + 4, &ts_be, 4);
    memcpy(rtp + 8, &ssrc_be, 4);
    memcpy(rtp + 12, pattern, payload);
    const uint32_t mark = x.ssrc ^ x.seq;
    memcpy(rtp + 12, &mark, 4);
    size_t len = rtp_len;
    if (x.ctx) {
        if (rte_pktmbuf_tailroom(mb) < trailer)
            return false;
        if (x.ctx->protect_rtp(rtp, rtp_len, rtp_len + trailer, &len) != crypto::status::ok)
            return false;
        rte_pktmbuf_append(mb, static_cast<uint16_t>(len - rtp_len));
    }
    bench_pkt::endpoint src, dst;
    src.family = dst.family = x.family;
    src.ip4_be = x.src_ip_be;
    src.ip6 = x.src_ip6;
    src.port_be = x.src_port_be;
    dst.ip4_be = rte_cpu_to_be_32(relay_ip(x.ifc));
    dst.ip6 = relay_ip6(x.ifc);
    dst.port_be = x.dst_port_be;
    bench_pkt::write_udp(p, remote_mac(x.leg), dp->ifc(x.ifc).mac, src, dst, len);
    mb->port = static_cast<uint16_t>(ports[x.ifc]->port);
    return true;
}

// Builds and enqueues up to n packets on iface `ifc`; returns how many.
unsigned scenario::gen(unsigned ifc, unsigned n, uint64_t st, uint64_t tg)
{
    auto& list = by_iface[ifc];
    if (list.empty())
        return 0;
    if (rte_pktmbuf_alloc_bulk(dp->pool(), gbuf, n) != 0)
        return 0;
    for (unsigned i = 0; i < n; i++) {
        sender& x = senders[list[list.size() == 1 ? 0 : rng.next() % list.size()]];
        if (!build(gbuf[i], x)) {
            gen_fail++;
            if (error.empty())
                error = "generator could not protect a packet";
        }
        stamp(gbuf[i]) = st;
        tag(gbuf[i]) = tg;
    }
    if (st != 0) { // stamp as close to the enqueue as we can
        const uint64_t now = rte_rdtsc();
        for (unsigned i = 0; i < n; i++)
            stamp(gbuf[i]) = now;
    }
    unsigned k = rte_ring_sp_enqueue_burst(ports[ifc]->rx, reinterpret_cast<void**>(gbuf), n,
                                           nullptr);
    if (k < n) {
        // Not sent: the sequence numbers they used are skipped (harmless).
        rte_pktmbuf_free_bulk(gbuf + k, n - k);
    }
    sent += k;
    return k;
}

void scenario::check(rte_mbuf* mb, unsigned ifc)
{
    checked++;
    auto fail = [&](const std::string& why) {
        check_fail++;
        if (first_fail.empty())
            first_fail = why;
    };
    if (mb->nb_segs != 1)
        return fail("multi-segment output");
    bench_pkt::udp_view v;
    if (const char* why = bench_pkt::parse_check(rte_pktmbuf_mtod(mb, uint8_t*),
                                                 rte_pktmbuf_pkt_len(mb), v))
        return fail(why);
    if (v.len < 12)
        return fail("short output");
    // The receiving leg j (its remote's host part) and its session (the
    // remote port).
    unsigned j = 200;
    if (v.dst.family == 4) {
        const uint32_t dip = rte_be_to_cpu_32(v.dst.ip4_be);
        if ((dip & 0xffffff00) == (relay_ip(ifc) & 0xffffff00))
            j = (dip & 255) - 10;
    } else {
        dp::ip6_addr base = v.dst.ip6;
        base.b[14] = base.b[15] = 0;
        if (base == ip6_of(ifc, 0))
            j = (v.dst.ip6.b[14] << 8 | v.dst.ip6.b[15]) - 10;
    }
    const unsigned k = rte_be_to_cpu_16(v.dst.port_be) - remote_port_base;
    if (j >= 200 || k >= sess_at[ifc].size() || sess_at[ifc][k] == UINT32_MAX)
        return fail("output to an address no leg has");
    const uint32_t s = sess_at[ifc][k];
    const sess_rec& sr = sess[s];
    if (j >= sr.nlegs)
        return fail("output to a leg index outside the session");
    if (v.dst.family != m.family(j))
        return fail("output in the wrong address family for the receiving leg");
    const bool src_ok = v.src.family == 4 ? rte_be_to_cpu_32(v.src.ip4_be) == relay_ip(ifc)
                                          : v.src.ip6 == relay_ip6(ifc);
    if (!src_ok || rte_be_to_cpu_16(v.src.port_be) != sr.local[j])
        return fail("wrong source address/port for the receiving leg");
    rte_ether_addr want = remote_mac(j);
    if (!rte_is_same_ether_addr(&v.dst_mac, &want) ||
        !rte_is_same_ether_addr(&v.src_mac, &dp->ifc(ifc).mac))
        return fail("wrong MAC addresses");
    uint8_t* rtp = v.payload;
    size_t len = v.len;
    if (m.s != crypto::suite::none) {
        const uint64_t key = static_cast<uint64_t>(s) * 256 + j;
        auto it = check_ctx.find(key);
        std::unique_ptr<crypto::srtp_context> tmp;
        crypto::srtp_context* c = nullptr;
        if (it != check_ctx.end()) {
            c = it->second.get();
        } else if (lat_on) {
            // No key derivation while latency is measured: it would
            // stall the sink and show up as the relay's latency.
            checked--;
            return;
        } else {
            crypto::key_material km;
            make_key(km, m.s, key_id(m, s, j, 1));
            std::string err;
            tmp = crypto::srtp_context::create(km, crypto::engine::boringssl, err);
            if (!tmp)
                return fail("cannot create check context: " + err);
            c = tmp.get();
            if (check_ctx.size() < 4096)
                c = (check_ctx[key] = std::move(tmp)).get();
        }
        size_t out = 0;
        crypto::status st = c->unprotect_rtp(rtp, len, &out);
        if (st != crypto::status::ok)
            return fail(std::string("receiving leg's key does not decrypt the output: ") +
                        crypto::status_name(st));
        len = out;
    }
    const unsigned sj = m.fan > 1 ? 0 : 1 - j;
    const uint32_t ssrc = static_cast<uint32_t>(splitmix(static_cast<uint64_t>(s) * 16 + sj));
    uint32_t got_ssrc;
    memcpy(&got_ssrc, rtp + 8, 4);
    if (len != 12 + payload || rte_be_to_cpu_32(got_ssrc) != ssrc)
        return fail("RTP length or SSRC wrong for the sending leg");
    const uint16_t seq = static_cast<uint16_t>(rtp[2] << 8 | rtp[3]);
    uint32_t mark;
    memcpy(&mark, rtp + 12, 4);
    if (mark != (ssrc ^ seq) || memcmp(rtp + 16, pattern + 4, payload - 4) != 0)
        return fail("payload changed");
}

unsigned scenario::sink()
{
    unsigned n = 0;
    rte_mbuf* b[64];
    const uint64_t now = rte_rdtsc();
    for (unsigned i = 0; i < nifaces; i++) {
        for (unsigned q = 0; q < ports[i]->tx.size(); q++) {
            rte_ring* r = ports[i]->tx[q];
            unsigned k = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(b), 64, nullptr);
            if (k == 0)
                continue;
            // The headers' misses overlap: the sink must outpace the worker,
            // as a NIC's wire does, or the worker's allocations wait for it.
            for (unsigned x = 0; x < k; x++)
                rte_prefetch0(b[x]);
            for (unsigned x = 0; x < k; x++) {
                out_bytes += rte_pktmbuf_pkt_len(b[x]);
                if (lat_on && lat.size() < (8u << 20) && stamp(b[x]) != 0)
                    lat.push_back(static_cast<uint32_t>(now - stamp(b[x])));
                if (tag(b[x]) != 0)
                    create_lat.push_back(static_cast<uint32_t>(now - tag(b[x])));
                // Checked contexts must follow every leg's ROC, so the
                // checks go on while latency is measured (check() then
                // skips legs whose context it would have to create).
                if (((sink_seen + x) & (sample_every - 1)) == 0 || sink_seen + x < 64)
                    check(b[x], i);
            }
            sink_seen += k;
            ports[i]->complete(q, b, k); // freed by the worker, as a NIC's would be
            n += k;
        }
    }
    received += n;
    return n;
}

uint64_t scenario::drops_total() const
{
    uint64_t d = 0;
    for (unsigned i = 0; i < dp::n_drops; i++)
        d += dp::read(dp->wk(0).stats.drops[i]);
    return d;
}
std::string scenario::drops_str() const
{
    std::string s;
    for (unsigned i = 0; i < dp::n_drops; i++) {
        uint64_t v = dp::read(dp->wk(0).stats.drops[i]);
        if (v)
            s += std::string(s.empty() ? "" : ",") + dp::drop_name(static_cast<dp::drop>(i)) +
                 "=" + std::to_string(v);
    }
    return s;
}
unsigned scenario::rx_pending() const
{
    unsigned n = 0;
    for (auto& p : ports)
        n += rte_ring_count(p->rx);
    return n;
}

} // namespace isar::bench_load
