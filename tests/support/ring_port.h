// An in-memory DPDK port (net_ring) for driving the real worker loop from the
// test thread: one RX ring the test fills and `ntx` TX rings (one per worker
// plus the control lcore's) the test drains. Destroying it removes the port
// (RTE_MAX_ETHPORTS is small) and frees whatever mbufs are still queued.
#pragma once

#include <cstdint>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <string>
#include <vector>

namespace isar::test {

class ring_port {
public:
    ring_port(const std::string& name, unsigned ntx, unsigned ring_size = 4096);
    ~ring_port();
    ring_port(const ring_port&) = delete;
    ring_port& operator=(const ring_port&) = delete;

    bool ok() const { return port_ >= 0; }
    uint16_t id() const { return static_cast<uint16_t>(port_); }
    unsigned ntx() const { return static_cast<unsigned>(tx_.size()); }

    // Queues frames for the port's RX queue 0; returns how many fit.
    unsigned inject(rte_mbuf* const* pkts, unsigned n);
    unsigned inject(rte_mbuf* m) { return inject(&m, 1); }
    unsigned rx_pending() const { return rte_ring_count(rx_); }

    // What the dataplane sent on TX queue q (FIFO order), taken off the ring.
    std::vector<rte_mbuf*> take_tx(unsigned q);
    unsigned tx_pending(unsigned q) const { return rte_ring_count(tx_[q]); }
    unsigned tx_pending_total() const;
    // Frees everything queued on any ring; returns the number freed.
    unsigned flush();

private:
    std::string name_;
    int port_ = -1;
    rte_ring* rx_ = nullptr;
    std::vector<rte_ring*> tx_;
};

void free_all(std::vector<rte_mbuf*>& pkts);

} // namespace isar::test
