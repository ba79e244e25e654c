// isar-bench TURN modes (turn_load.cc, turn_allocs.cc): the address plan
// and the worker behind its ring ports.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <rte_ether.h>
#include <rte_launch.h>

#include "dataplane/dataplane.h"
#include "bench/load/ring_port.h"

namespace isar::bench_turn {

extern unsigned seq_no; // ring port names

// One net_ring port: 1 RX ring (generator -> worker), TX queue 0 (worker)
// and 1 (control) -> sink.
using tport = bench::ring_port;

constexpr uint16_t listen_port = 3478;
constexpr uint16_t relay_base = 4000;
constexpr unsigned relays_per_iface = 65535 - relay_base + 1;

// The dataplane configuration both TURN rigs use (relay ports from
// relay_base, the listener port, room for n allocations); interfaces are
// added by the caller.
inline dp::dp_config turn_dp_config(unsigned mbufs, unsigned max_legs, unsigned n)
{
    dp::dp_config dc;
    dc.mbufs = mbufs;
    dc.max_legs = max_legs;
    dc.ring_size = 4096;
    dc.rx_desc = 512;
    dc.tx_desc = 512;
    dc.relay_min = relay_base;
    dc.relay_max = 65535;
    dc.turn_ports = {listen_port};
    dc.max_allocations = n + 64;
    return dc;
}
constexpr uint32_t iface_ip(unsigned i) { return 0xc6120001 + (i << 8); } // 198.18.i.1
constexpr uint32_t client_ip(unsigned i, unsigned j) { return 0xc6120000 + (i << 8) + 20 + j % 16; }
constexpr uint16_t client_port(unsigned j) { return static_cast<uint16_t>(1024 + j / 16); }
constexpr uint32_t peer_ip(unsigned i, unsigned j) { return 0xc6120000 + (i << 8) + 60 + j % 16; }
constexpr uint16_t peer_port(unsigned j) { return static_cast<uint16_t>(10000 + j % 40000); }
constexpr uint16_t chan_of(unsigned j) { return static_cast<uint16_t>(0x4000 + j % 4096); }
inline rte_ether_addr host_mac(uint32_t ip)
{
    return rte_ether_addr{{0x02, 0x00, 0x00, static_cast<uint8_t>(ip >> 16),
                           static_cast<uint8_t>(ip >> 8), static_cast<uint8_t>(ip)}};
}
inline double secs(uint64_t t, uint64_t hz) { return static_cast<double>(t) / static_cast<double>(hz); }

// The dataplane's worker 0 on an EAL worker lcore, behind `ports`. Torn down
// (by the owner's destructor first where it holds more) in this order: the
// worker stopped, the rings drained, the dataplane, the ports.
struct worker_rig {
    unsigned lcore = 0;
    std::vector<std::unique_ptr<tport>> ports;
    std::unique_ptr<dp::dataplane> dp;
    bool running = false;

    ~worker_rig()
    {
        stop();
        for (auto& p : ports)
            p->drain();
        dp.reset();
        ports.clear();
    }
    dp::worker& wk() { return dp->wk(0); }
    static int wk_main(void* a) { return static_cast<dp::worker*>(a)->run(); }
    void start()
    {
        if (running)
            return;
        wk().stop.store(false);
        rte_eal_remote_launch(wk_main, &wk(), lcore);
        running = true;
    }
    void stop()
    {
        if (!running)
            return;
        wk().stop.store(true);
        rte_eal_wait_lcore(lcore);
        running = false;
    }
};

} // namespace isar::bench_turn
