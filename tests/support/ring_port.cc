#include "tests/support/ring_port.h"

#include <rte_bus_vdev.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

namespace isar::test {

namespace {
void drain(rte_ring* r, unsigned& n)
{
    void* objs[64];
    unsigned k;
    while ((k = rte_ring_dequeue_burst(r, objs, 64, nullptr)) > 0) {
        rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(objs), k);
        n += k;
    }
}
} // namespace

ring_port::ring_port(const std::string& name, unsigned ntx, unsigned ring_size) : name_(name)
{
    const int sock = static_cast<int>(rte_socket_id());
    const unsigned flags = RING_F_SP_ENQ | RING_F_SC_DEQ;
    rx_ = rte_ring_create((name + "_rx").c_str(), ring_size, sock, flags);
    for (unsigned q = 0; q < ntx; q++)
        tx_.push_back(rte_ring_create((name + "_tx" + std::to_string(q)).c_str(), ring_size, sock,
                                      flags));
    if (rx_ == nullptr)
        return;
    for (rte_ring* r : tx_)
        if (r == nullptr)
            return;
    port_ = rte_eth_from_rings(name.c_str(), &rx_, 1, tx_.data(), ntx, sock);
}

ring_port::~ring_port()
{
    if (port_ >= 0) {
        // The PMD registered itself as vdev "net_ring_<name>": removing it
        // closes the port and releases its id; the rings stay ours.
        rte_vdev_uninit(("net_ring_" + name_).c_str());
    }
    flush();
    rte_ring_free(rx_);
    for (rte_ring* r : tx_)
        rte_ring_free(r);
}

unsigned ring_port::inject(rte_mbuf* const* pkts, unsigned n)
{
    return rte_ring_enqueue_burst(rx_, reinterpret_cast<void* const*>(pkts), n, nullptr);
}

std::vector<rte_mbuf*> ring_port::take_tx(unsigned q)
{
    std::vector<rte_mbuf*> out;
    void* objs[64];
    unsigned k;
    while ((k = rte_ring_dequeue_burst(tx_[q], objs, 64, nullptr)) > 0)
        for (unsigned i = 0; i < k; i++)
            out.push_back(static_cast<rte_mbuf*>(objs[i]));
    return out;
}

unsigned ring_port::tx_pending_total() const
{
    unsigned n = 0;
    for (rte_ring* r : tx_)
        n += r ? rte_ring_count(r) : 0;
    return n;
}

unsigned ring_port::flush()
{
    unsigned n = 0;
    if (rx_)
        drain(rx_, n);
    for (rte_ring* r : tx_)
        if (r)
            drain(r, n);
    return n;
}

void free_all(std::vector<rte_mbuf*>& pkts)
{
    for (rte_mbuf* m : pkts)
        rte_pktmbuf_free(m);
    pkts.clear();
}

} // namespace isar::test
