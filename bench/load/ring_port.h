// One net_ring port for isar-bench's modes (load_setup.cc, turn_load.cc,
// soak.cc): 1 RX ring (generator -> worker) and `ntx` TX rings (worker
// queues, then the control queue -> sink).
#pragma once

#include <string>
#include <vector>

#include <rte_bus_vdev.h>
#include <rte_eth_ring.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

namespace isar::bench {

struct ring_port {
    std::string name;
    int port = -1;
    rte_ring* rx = nullptr;
    std::vector<rte_ring*> tx;

    ring_port(const std::string& n, unsigned ntx, unsigned rx_size, unsigned tx_size) : name(n)
    {
        const int sock = static_cast<int>(rte_socket_id());
        const unsigned f = RING_F_SP_ENQ | RING_F_SC_DEQ;
        rx = rte_ring_create((n + "r").c_str(), rx_size, sock, f);
        for (unsigned q = 0; q < ntx; q++)
            tx.push_back(rte_ring_create((n + "t" + std::to_string(q)).c_str(), tx_size, sock, f));
        if (rx == nullptr)
            return;
        for (auto* r : tx)
            if (r == nullptr)
                return;
        port = rte_eth_from_rings(n.c_str(), &rx, 1, tx.data(), ntx, sock);
    }
    // Frees whatever the rings still hold (before the mempool goes away).
    void drain()
    {
        void* o[64];
        unsigned k;
        while (rx && (k = rte_ring_dequeue_burst(rx, o, 64, nullptr)) > 0)
            rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(o), k);
        for (rte_ring* r : tx)
            while (r && (k = rte_ring_dequeue_burst(r, o, 64, nullptr)) > 0)
                rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(o), k);
    }
    ~ring_port()
    {
        if (port >= 0)
            rte_vdev_uninit(("net_ring_" + name).c_str());
        drain();
        rte_ring_free(rx);
        for (auto* r : tx)
            rte_ring_free(r);
    }
};

} // namespace isar::bench
