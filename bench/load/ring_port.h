// One net_ring port for isar-bench's modes (load_setup.cc, turn_load.cc,
// soak.cc): 1 RX ring (generator -> worker) and `ntx` TX rings (worker
// queues, then the control queue -> sink).
//
// Transmit completion as a NIC has it (enable_completion): a real PMD frees
// the mbufs it sent inside rte_eth_tx_burst(), on the transmitting core,
// once the NIC has sent them, into that core's mempool cache, from which the
// core's next allocations (RX refill, fan-out copies) come back warm. A bare
// net_ring leaves them to whoever dequeues its TX ring - here the sink, on
// the main lcore - so every mbuf the worker allocated came from the pool's
// common ring, cold. With completion on, the sink (the wire) hands what it
// has read back through a `done` ring per queue, and a TX callback frees
// those on the queue's transmitting core at its next bursts (as a PMD frees
// its TX ring's completed descriptors).
#pragma once

#include <string>
#include <vector>

#include <rte_bus_vdev.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

namespace isar::bench {

struct ring_port {
    std::string name;
    int port = -1;
    rte_ring* rx = nullptr;
    std::vector<rte_ring*> tx;
    std::vector<rte_ring*> done;                        // per TX queue (enable_completion)
    std::vector<const rte_eth_rxtx_callback*> done_cbs; // their TX callbacks

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
    // After the port's TX queues are set up: what a queue sent is freed on
    // its transmitting core (see above). False: out of memory (completion
    // stays with the sink).
    bool enable_completion()
    {
        if (!done.empty()) // once per port (the rings stay until the end)
            return !done_cbs.empty();
        const int sock = static_cast<int>(rte_socket_id());
        for (unsigned q = 0; q < tx.size() && done.size() == q; q++) {
            rte_ring* r = rte_ring_create((name + "d" + std::to_string(q)).c_str(),
                                          rte_ring_get_size(tx[q]), sock,
                                          RING_F_SP_ENQ | RING_F_SC_DEQ);
            const rte_eth_rxtx_callback* cb =
                    r != nullptr ? rte_eth_add_tx_callback(static_cast<uint16_t>(port),
                                                           static_cast<uint16_t>(q), &free_done, r)
                                 : nullptr;
            if (cb == nullptr) {
                rte_ring_free(r);
                break;
            }
            done.push_back(r);
            done_cbs.push_back(cb);
        }
        return done.size() == tx.size();
    }
    // What the sink has read from TX queue `q`: back to the transmitting
    // core to free (completion on), else freed here.
    void complete(unsigned q, rte_mbuf** b, unsigned k)
    {
        if (q < done_cbs.size()) { // completion on, its callback installed
            const unsigned e = rte_ring_sp_enqueue_burst(done[q], reinterpret_cast<void**>(b),
                                                         k, nullptr);
            b += e;
            k -= e;
        }
        if (k != 0)
            rte_pktmbuf_free_bulk(b, k);
    }
    // Once nothing transmits on the port any more (the worker and the
    // control thread stopped) and before the port is closed: the callbacks
    // removed (DPDK leaves their memory to us); drain() frees what the done
    // rings still hold.
    void disable_completion()
    {
        for (unsigned q = 0; q < done_cbs.size(); q++)
            if (rte_eth_remove_tx_callback(static_cast<uint16_t>(port), static_cast<uint16_t>(q),
                                           done_cbs[q]) == 0)
                rte_free(const_cast<rte_eth_rxtx_callback*>(done_cbs[q]));
        done_cbs.clear();
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
        for (rte_ring* r : done)
            while ((k = rte_ring_dequeue_burst(r, o, 64, nullptr)) > 0)
                rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(o), k);
    }
    ~ring_port()
    {
        disable_completion();
        if (port >= 0)
            rte_vdev_uninit(("net_ring_" + name).c_str());
        drain();
        rte_ring_free(rx);
        for (auto* r : tx)
            rte_ring_free(r);
        for (auto* r : done)
            rte_ring_free(r);
    }

private:
    // The TX callback: before a burst is queued, frees up to two bursts'
    // worth of what the sink handed back (so that a backlog clears while
    // the core transmits).
    static uint16_t free_done(uint16_t, uint16_t, rte_mbuf**, uint16_t n, void* user)
    {
        rte_mbuf* o[64];
        const unsigned k = rte_ring_sc_dequeue_burst(static_cast<rte_ring*>(user),
                                                     reinterpret_cast<void**>(o), 64, nullptr);
        if (k != 0)
            rte_pktmbuf_free_bulk(o, k);
        return n;
    }
};

} // namespace isar::bench
