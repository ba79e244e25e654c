// isar-bench TURN modes (bench/README.md, "TURN"): the worker's TURN fast
// path (dataplane/turn_path.cc) at full speed over net_ring ports, and the
// Allocate rate of the real control plane (ctl::turn_manager) in-process.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace isar::bench_turn {

struct options {
    std::vector<unsigned> payloads{160, 1200};
    double phase_s = 1.0;
    unsigned drain_pkts = 131072;
    uint64_t hz = 0;
    bool tx_free_worker = false; // see bench_load::options, ring_port.h
    bool fwd_alongside = false;  // the forwarder between drain repetitions (bench_load::fwd_rig)
};

inline bool is_turn_mode(const std::string& m) { return m.rfind("turn-", 0) == 0; }

// Mode turn-channeldata or turn-indication with `nallocs` allocations: one
// record per payload into `out` (mpps_per_core, cycles_per_packet, ...;
// fwd_ratio when `baselines` holds the dpdk-forwarder of that payload).
void run_mode(const options& o, const std::string& mode, unsigned nallocs,
              const nlohmann::json& baselines, nlohmann::json& out,
              std::vector<std::string>& errors);

// Allocations per second: `n` clients each send Allocate (401 + NONCE), then
// Allocate with REST-secret MESSAGE-INTEGRITY, through the worker and the
// real ctl::turn_manager on the main lcore. Returns the record.
nlohmann::json run_allocs(const options& o, unsigned n, std::vector<std::string>& errors);

} // namespace isar::bench_turn
