// isar-bench's software-RSS modes (bench/README.md, "Two workers and RSS"):
// two real workers (dp::worker::run()) behind one net_ring port with an RX
// ring per worker queue. The generator computes the Toeplitz hash of each
// packet (rte_softrss, dataplane/ownership.h: the key and RETA the dataplane
// programs into a NIC) and enqueues it into the ring of that RX queue:
//   rss-4tuple:  the hash of the 4-tuple, what a NIC without L4_DST_ONLY
//                does; ports owned by the pairs rule: about half of the
//                packets cross to the other worker (handoff).
//   rss-dstport: the hash of the destination address and port (L3_DST_ONLY |
//                L4_DST_ONLY); ports dealt per the Toeplitz map
//                (dp_config::soft_rss_reta): no handoff.
// Reports per-worker Mpps (forwarded packets per busy second of that
// worker), their sum, the wall-clock rate and the handoff share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace isar::bench_rss {

struct options {
    std::vector<unsigned> payloads{160};
    unsigned drain_pkts = 131072;
};

inline bool is_rss_mode(const std::string& m) { return m == "rss-4tuple" || m == "rss-dstport"; }

// EAL lcores these modes need: the main lcore (generator and sink) and two
// workers; on a 2-core machine the main lcore shares worker 0's core, and
// sleeps while the workers drain.
inline const char* eal_lcores(unsigned ncpus) { return ncpus >= 3 ? "0@0,1@1,2@2" : "0@0,1@0,2@1"; }

// One record per payload into `out`; failures into `errors`.
void run_mode(const options& o, const std::string& mode, unsigned legs, nlohmann::json& out,
              std::vector<std::string>& errors);

} // namespace isar::bench_rss
