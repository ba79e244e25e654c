// isar-bench --soak N: the churn soak (bench/README.md, "Churn soak"). N
// two-leg sessions created and deleted through the real control plane
// (commands::handle_line -> session_manager -> the worker's command ring)
// while the worker forwards the traffic of long-lived sessions; mbufs in use,
// DPDK heap, RSS, sessions/legs and the flow table compared start vs end.
#pragma once

#include <cstdint>

namespace isar::bench_soak {

struct options {
    uint64_t sessions = 1000000; // creates (and deletes) after the warm-up
    double seconds = 600;        // stop earlier at this wall time
    unsigned warmup = 20000;     // churned before the start sample
    unsigned base_sessions = 512; // long-lived, forwarding throughout
    unsigned window = 256;       // requests in flight
    double rate_pps = 1e6;       // background traffic aimed at (the main lcore also serves requests)
    double rss_slack_mib = 2.0;  // allocator caching
    bool inject_leak = false;    // test the verdict: leak an mbuf, a DPDK allocation, 4 MiB
};

// After rte_eal_init() with >= 2 lcores. Prints the table and the verdict;
// returns 0 (OK) or 1 (leak or failure).
int run(const options& o);

} // namespace isar::bench_soak
