// isar-bench baseline "leg-lines": what this machine charges for reaching
// per-flow state at a given number of legs, measured in the same run as the
// modes it explains.
//
// The bare forwarder touches no per-flow state; a relay must read, for every
// packet, the lines of the leg it belongs to, and with many legs those are
// cache misses whatever the code around them does. This loop does nothing
// else: on the worker's lcore it visits legs in random order, each visit
// reading and writing two adjacent 64-byte lines (a plain leg's line 0 and
// RTP line) allocated on the DPDK heap as isard's legs are, with the visit
// `distance` ahead prefetched (as a pipelined relay would) or not (a miss's
// whole latency). cycles/visit prefetched is a floor: a relay that reads
// these lines per packet pays at least that much more than the forwarder.
#include "bench/load/load_common.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

#include <rte_cycles.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_prefetch.h>

namespace isar::bench_load {
namespace {

struct alignas(64) leg_pair {
    uint64_t w[16]; // two lines
};

struct floor_job {
    leg_pair* legs = nullptr;
    const uint32_t* order = nullptr;
    uint32_t n = 0;        // visits
    unsigned distance = 0; // prefetch distance in visits (0: none)
    uint64_t cycles = 0;
    uint64_t sink = 0;
};

int floor_main(void* arg)
{
    auto* j = static_cast<floor_job*>(arg);
    uint64_t s = 0;
    const uint64_t t0 = rte_rdtsc_precise();
    for (uint32_t i = 0; i < j->n; i++) {
        if (j->distance != 0 && i + j->distance < j->n) {
            const leg_pair* p = &j->legs[j->order[i + j->distance]];
            rte_prefetch0(p);
            rte_prefetch0(&p->w[8]);
        }
        leg_pair& l = j->legs[j->order[i]];
        l.w[1] += 1;       // a counter in line 0
        s += l.w[0] ^ l.w[9]; // a field of each line
    }
    j->cycles = rte_rdtsc_precise() - t0;
    j->sink = s;
    return 0;
}

// Cycles per visit over the visits in `order`; -1 if the lcore cannot be launched.
double measure(unsigned lcore, leg_pair* legs, const std::vector<uint32_t>& order, unsigned distance)
{
    floor_job j;
    j.legs = legs;
    j.order = order.data();
    j.n = static_cast<uint32_t>(order.size());
    j.distance = distance;
    if (rte_eal_remote_launch(floor_main, &j, lcore) != 0)
        return -1; // the lcore is busy
    rte_eal_wait_lcore(lcore);
    return static_cast<double>(j.cycles) / static_cast<double>(j.n);
}

} // namespace

void run_leg_lines(const options& o)
{
    const unsigned lcore = rte_get_next_lcore(-1, 1, 0);
    if (lcore >= RTE_MAX_LCORE) {
        errors.push_back("leg-lines: no worker lcore");
        return;
    }
    // Every leg count of the run: --legs and the --extra runs'.
    std::vector<unsigned> counts(o.legs.begin(), o.legs.end());
    for (const auto& x : o.extra)
        counts.push_back(x.legs);
    std::sort(counts.begin(), counts.end());
    counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
    for (unsigned nlegs : counts) {
        if (nlegs == 0)
            continue;
        auto* legs = static_cast<leg_pair*>(
                rte_zmalloc("bench_leg_lines", size_t{nlegs} * sizeof(leg_pair), 64));
        if (legs == nullptr) {
            errors.push_back("leg-lines: cannot allocate " + std::to_string(nlegs) + " legs");
            continue;
        }
        // Bounded: at most 4M visits (a few hundred ms even uncached), and
        // every leg at least once before the timed pass (the first touch of
        // a page is not a packet's cost).
        const uint32_t visits = std::max(1u << 20, std::min(4u << 20, nlegs * 2u));
        std::vector<uint32_t> order(visits);
        std::mt19937 rng(nlegs);
        std::uniform_int_distribution<uint32_t> pick(0, nlegs - 1);
        for (auto& v : order)
            v = pick(rng);
        std::vector<uint32_t> warm(nlegs);
        for (uint32_t i = 0; i < nlegs; i++)
            warm[i] = i;
        const double warmed = measure(lcore, legs, warm, 0);
        const double lat = warmed < 0 ? -1 : measure(lcore, legs, order, 0);
        const double pf = lat < 0 ? -1 : measure(lcore, legs, order, 16);
        rte_free(legs);
        if (pf < 0) {
            errors.push_back("leg-lines: cannot launch on lcore " + std::to_string(lcore));
            continue;
        }
        json j{{"name", "leg-lines"},
               {"legs", nlegs},
               {"bytes", uint64_t{nlegs} * sizeof(leg_pair)},
               {"cycles_per_visit", lat},
               {"cycles_per_visit_prefetched", pf},
               {"prefetch_distance", 16}};
        fprintf(stderr,
                "isar-bench: baseline leg-lines %u legs (%.1f MiB): %.1f cycles/visit, %.1f prefetched\n",
                nlegs, static_cast<double>(nlegs) * sizeof(leg_pair) / 1048576.0, lat, pf);
        baselines.push_back(j);
    }
}

} // namespace isar::bench_load
