// isar-bench: the load harness. Drives the REAL worker loop (dp::worker::run()
// on an EAL worker lcore, exactly what isard runs) through in-memory net_ring
// ports at full speed; the generator and the sink run on the main lcore.
//
// Honesty rules (see bench/README.md):
//  - every packet is built fresh for its leg (RTP sequence numbers increase per
//    leg; SRTP modes protect each packet with the sending endpoint's key using
//    isar::crypto contexts); nothing is replayed from a pool;
//  - the sink checks a sample of the output (addresses, ports, decrypts with
//    the receiving leg's key, RTP header and payload intact); a scenario whose
//    check fails, or that loses packets, reports an error instead of numbers;
//  - capacity is the worker's own busy TSC per packet (worker_stats::busy_tsc),
//    measured while its RX rings are never empty ("drain" phase: the rings are
//    filled while the worker is stopped, then it is started and the sink drains
//    its TX rings concurrently).
// Baselines measured in the same run: a minimal DPDK forwarder over the same
// ring ports, a kernel UDP relay (recvmmsg/sendmmsg on loopback), and each
// crypto engine's raw decrypt+encrypt cost.
//
// This file: the command line and main(); the rest of the harness is in
// load_*.cc (load_common.h, load_scenario.h).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf_dyn.h>

#include "bench/load/load_common.h"
#include "bench/load/rss_modes.h"
#include "bench/load/turn_load.h"
#include "dataplane/srtp_memory.h"

using namespace isar;
using namespace isar::bench_load;

namespace {

void usage()
{
    fprintf(stderr,
            "usage: isar-bench [--smoke] [--legs 1,1000,100000] [--modes plain,srtp-pass,...]\n"
            "                  [--payloads 160,1200] [--extra MODE:LEGS ...] [--phase S]\n"
            "                  [--drain N] [--drain-only] [--perf-ctl FIFO] [--no-baselines] [--no-control]\n"
            "                  [--no-fwd-alongside]\n"
            "                  [--memory-note TEXT] [--out FILE.json] [-- EAL args]\n"
            "                  [--turn-allocs N] [--tx-free worker|sink] [--srtp-contexts dpdk|cxx]\n"
            "       isar-bench --soak N [--soak-seconds S] [--soak-warmup N] [--soak-rate PPS]\n"
            "                  [--soak-inject-leak] [-- EAL args]\n"
            "modes: plain plain6 bridge46 srtp-pass transcrypt-cm80 transcrypt-gcm128 transcrypt-gcm128-compact\n       fanout10 fanout199\n"
            "       turn-channeldata turn-indication (legs = allocations)\n"
            "       rss-4tuple rss-dstport (2 workers, software RSS: bench/load/rss_modes.h)\n");
}

// The options into `o`, EAL arguments after "--" into `eal`. -1 to go on,
// otherwise the exit status.
int parse_args(int argc, char** argv, options& o, std::vector<std::string>& eal, bool& eal_given)
{
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
                exit(2);
            }
            return argv[++i];
        };
        if (a == "--smoke") {
            o.smoke = true;
            o.legs = {1, 100};
            o.payloads = {160};
            o.phase_s = 0.05;
            o.drain_pkts = 8192;
            o.turn_allocs = 500;
        } else if (a == "--turn-allocs") {
            o.turn_allocs = static_cast<unsigned>(std::stoul(val()));
        } else if (a == "--legs") {
            o.legs = parse_list(val());
        } else if (a == "--modes") {
            o.modes = parse_slist(val());
        } else if (a == "--payloads") {
            o.payloads = parse_list(val());
        } else if (a == "--extra") {
            std::string v = val();
            auto c = v.find(':');
            const auto c2 = v.find(':', c + 1);
            o.extra.push_back({v.substr(0, c), static_cast<unsigned>(std::stoul(v.substr(c + 1))),
                               c2 == std::string::npos
                                       ? 0u
                                       : static_cast<unsigned>(std::stoul(v.substr(c2 + 1)))});
        } else if (a == "--phase") {
            o.phase_s = std::stod(val());
        } else if (a == "--drain") {
            o.drain_pkts = static_cast<unsigned>(std::stoul(val()));
        } else if (a == "--tx-free") {
            const std::string v = val();
            if (v != "worker" && v != "sink") {
                usage();
                return 2;
            }
            o.tx_free_worker = v == "worker";
        } else if (a == "--srtp-contexts") {
            const std::string v = val();
            if (v != "dpdk" && v != "cxx") {
                usage();
                return 2;
            }
            o.srtp_dpdk_heap = v == "dpdk";
        } else if (a == "--drain-only") {
            o.drain_only = true;
        } else if (a == "--perf-ctl") {
            o.perf_ctl = val();
        } else if (a == "--no-baselines") {
            o.baselines = false;
        } else if (a == "--no-fwd-alongside") {
            o.fwd_alongside = false;
        } else if (a == "--no-control") {
            o.control = false;
        } else if (a == "--soak") {
            o.soak = true;
            o.soak_o.sessions = std::stoull(val());
        } else if (a == "--soak-seconds") {
            o.soak_o.seconds = std::stod(val());
        } else if (a == "--soak-inject-leak") {
            o.soak_o.inject_leak = true;
        } else if (a == "--soak-rate") {
            o.soak_o.rate_pps = std::stod(val());
        } else if (a == "--soak-warmup") {
            o.soak_o.warmup = static_cast<unsigned>(std::stoul(val()));
        } else if (a == "--memory-note") {
            o.memory_note = val();
        } else if (a == "--out") {
            o.out = val();
        } else if (a == "--") {
            eal_given = true;
            for (i++; i < argc; i++)
                eal.push_back(argv[i]);
        } else {
            usage();
            return 2;
        }
    }
    // The forwarder between a mode's repetitions is a baseline too: runs
    // for profiling or A/B (--no-baselines) keep the worker lcore to the mode.
    o.fwd_alongside = o.fwd_alongside && o.baselines;
    return -1;
}

// Without "-- EAL args": no hugepages, no PCI, the lcores the modes need.
void default_eal(const options& o, std::vector<std::string>& eal)
{
    cpu_set_t cs;
    sched_getaffinity(0, sizeof(cs), &cs);
    const bool two = CPU_COUNT(&cs) >= 2;
    eal.insert(eal.end(), {"--no-huge", "-m", o.smoke ? "512" : "3072", "--no-pci",
                           "--file-prefix", "isarbench" + std::to_string(getpid()),
                           "--lcores",
                           std::any_of(o.modes.begin(), o.modes.end(), bench_rss::is_rss_mode)
                                   ? bench_rss::eal_lcores(CPU_COUNT(&cs)) // 2 workers
                                   : two ? "0@0,1@1" : "0@0,1@0",
                           "--log-level", "*:warning"});
}

// rte_eal_init, the TSC rate and the mbuf stamp field: 0, or the exit status.
// `av` (pointers into `eal`) is the caller's: it outlives the EAL, as before.
int init_eal(std::vector<std::string>& eal, std::vector<char*>& av)
{
    for (auto& s : eal)
        av.push_back(s.data());
    if (rte_eal_init(static_cast<int>(av.size()), av.data()) < 0) {
        fprintf(stderr, "isar-bench: rte_eal_init failed: %s (hugepages? try --no-huge)\n",
                rte_strerror(rte_errno));
        return 1;
    }
    if (rte_lcore_count() < 2) {
        fprintf(stderr, "isar-bench: needs 2 lcores (main: generator+sink, worker)\n");
        return 1;
    }
    hz = rte_get_tsc_hz();
    rte_mbuf_dynfield df{};
    snprintf(df.name, sizeof(df.name), "isar_bench_stamp");
    df.size = 16;
    df.align = 8;
    stamp_off = rte_mbuf_dynfield_register(&df);
    if (stamp_off < 0) {
        fprintf(stderr, "isar-bench: cannot register the mbuf dynfield\n");
        return 1;
    }
    return 0;
}

bench_turn::options turn_opts(const options& o)
{
    bench_turn::options t;
    t.payloads = o.payloads;
    t.phase_s = o.phase_s;
    t.drain_pkts = o.drain_pkts;
    t.hz = hz;
    t.tx_free_worker = o.tx_free_worker;
    t.fwd_alongside = o.fwd_alongside;
    return t;
}

// Baselines, every mode at every leg count, the extra runs, the control plane.
void run_all(const options& o)
{
    if (o.baselines) {
        for (unsigned p : o.payloads)
            run_forwarder(o, p);
        for (unsigned p : o.payloads)
            run_kernel_relay(o, p);
        run_crypto(o);
        run_crypto_legs(o);
        run_leg_lines(o);
    }
    for (const auto& mode : o.modes)
        for (unsigned l : o.legs)
            if (bench_turn::is_turn_mode(mode))
                bench_turn::run_mode(turn_opts(o), mode, l, baselines, turn_j, errors);
            else if (bench_rss::is_rss_mode(mode))
                bench_rss::run_mode({o.payloads, o.drain_pkts}, mode, l, rss_j, errors);
            else
                run_scenario(o, mode, l);
    for (const auto& x : o.extra)
        run_scenario(o, x.mode, x.legs, x.payload);
    bench_ip6::add_plain_ratios(results);
    if (o.control) {
        run_control(o, "plain", o.smoke ? 500 : 20000);
        run_control(o, "transcrypt-cm80", o.smoke ? 200 : 10000);
    }
    if (o.turn_allocs != 0 && std::any_of(o.modes.begin(), o.modes.end(), bench_turn::is_turn_mode))
        turn_alloc_j = bench_turn::run_allocs(turn_opts(o), o.turn_allocs, errors);
}

} // namespace

int main(int argc, char** argv)
{
    options o;
    std::vector<std::string> eal{"isar-bench"};
    bool eal_given = false;
    if (const int rc = parse_args(argc, argv, o, eal, eal_given); rc >= 0)
        return rc;
    if (!o.perf_ctl.empty()) {
        perf_ctl_fd = open(o.perf_ctl.c_str(), O_WRONLY | O_CLOEXEC);
        if (perf_ctl_fd < 0)
            fprintf(stderr, "isar-bench: --perf-ctl %s: %s\n", o.perf_ctl.c_str(), strerror(errno));
    }
    if (!eal_given)
        default_eal(o, eal);
    std::vector<char*> av;
    if (const int rc = init_eal(eal, av); rc != 0)
        return rc;
    crypto::prepare_thread();
    // As isard does: on hugepages only (the JSON says where they went).
    o.srtp_dpdk_heap = o.srtp_dpdk_heap && dp::place_srtp_contexts();
    if (o.soak) {
        const int rc = bench_soak::run(o.soak_o);
        rte_eal_cleanup();
        return rc;
    }
    fprintf(stderr, "isar-bench: CPU %s, TSC %.3f GHz, memory %s\n", cpu_model().c_str(),
            static_cast<double>(hz) / 1e9, o.memory_note.c_str());
    run_all(o);
    write_report(o);
    fprintf(stderr, "isar-bench: %zu result(s), %zu error(s)\n", results.size(), errors.size());
    for (auto& e : errors)
        fprintf(stderr, "isar-bench: ERROR %s\n", e.c_str());
    rte_eal_cleanup();
    return errors.empty() ? 0 : 1;
}
