// The worker's side of the kernel interface (kernel_iface.h): frames from the
// wire to the kernel and what the kernel sends to the wire. Hot path: no
// allocation, lock, log or system call of ours per packet (net_tap's own
// RX/TX are a read/write on the tap per packet, which is what an exception
// path on net_tap costs; its RX is signal-driven, so an idle tap costs none).
#include <rte_ethdev.h>
#include <rte_ip.h>

#include "dataplane/worker.h"

namespace isar::dp {

void worker::to_kernel(rte_mbuf* m, const pkt_meta& meta) noexcept
{
    if (!kernel_police.allow(now_tsc_)) {
        drop_pkt(m, drop::policed_kernel);
        return;
    }
    m->ol_flags = 0; // no TX offload asked of the tap: the kernel checks the sums
    tx_buffer& b = ktx_[meta.iface];
    b.pkts[b.n++] = m;
    if (b.n == max_burst)
        kernel_flush(meta.iface);
}

void worker::kernel_flush(unsigned ifc) noexcept
{
    send_burst(ktx_[ifc], ifaces[ifc].kernel_port, stats.to_kernel_pkts, stats.to_kernel_bytes,
               drop::kernel_full);
}

// What the kernel sends on interface `ifc`'s kernel interface goes out of the
// port: IPv4 only (the kernel is NOARP and has no IPv6 there; anything else
// is counted and dropped, so the dataplane stays the only ARP speaker), with
// the port's MAC as source and the next hop's as destination - or, while that
// is unknown, held by control as emit() does.
void worker::from_kernel(unsigned ifc, rte_mbuf** pkts, unsigned n) noexcept
{
    const iface& out = ifaces[ifc];
    uint64_t bytes = 0;
    for (unsigned i = 0; i < n; i++)
        bytes += rte_pktmbuf_pkt_len(pkts[i]);
    bump(stats.from_kernel_pkts, n);
    bump(stats.from_kernel_bytes, bytes);
    for (unsigned i = 0; i < n; i++) {
        rte_mbuf* m = pkts[i];
        auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
        if (m->nb_segs != 1 ||
            rte_pktmbuf_data_len(m) < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) ||
            eth->ether_type != RTE_BE16(RTE_ETHER_TYPE_IPV4)) {
            drop_pkt(m, m->nb_segs != 1 ? drop::multi_seg : drop::kernel_not_ipv4);
            continue;
        }
        if (out.mtu != 0 && rte_pktmbuf_pkt_len(m) - sizeof(rte_ether_hdr) > out.mtu) {
            drop_pkt(m, drop::mtu_exceeded);
            continue;
        }
        const auto* ip = reinterpret_cast<const rte_ipv4_hdr*>(eth + 1);
        if (ip->src_addr != out.ip_be) {
            // Only the box's own traffic leaves this way: never what the
            // kernel routes for others (ip_forward on a docker host).
            drop_pkt(m, drop::kernel_bad_source);
            continue;
        }
        const uint32_t nh = out.next_hop(ip->dst_addr);
        if (nh == 0) {
            drop_pkt(m, drop::no_route);
            continue;
        }
        m->ol_flags = 0;
        eth->src_addr = out.mac;
        if (out.neigh->lookup(nh, &eth->dst_addr)) {
            tx_enqueue(ifc, m);
        } else {
            eth->dst_addr = out.mac; // placeholder; control fills it in
            m->port = out.port_id;
            to_control(m, exc_kind::hold);
        }
    }
}

} // namespace isar::dp
