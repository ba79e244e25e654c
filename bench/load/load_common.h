// isar-bench (isar_load.cc and its parts): the options, the run-wide state
// (TSC rate, mbuf stamp field, perf control, the JSON records), the modes
// and their address and key plan, and the runs main() calls.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include <nlohmann/json.hpp>

#include "crypto/srtp_context.h"
#include "crypto/suite.h"
#include "dataplane/ip6.h"
#include "bench/load/bench_util.h"
#include "bench/load/ip6_modes.h"
#include "bench/load/ring_port.h"
#include "bench/load/soak.h"

namespace isar::bench_load {

using json = nlohmann::json;
using bench::ring_port;
using namespace isar::bench_util;

// ---------------------------------------------------------------- options --
struct options {
    std::vector<unsigned> legs{1, 1000, 100000};
    std::vector<std::string> modes{"plain", "plain6", "bridge46", "srtp-pass", "transcrypt-cm80", "transcrypt-gcm128",
                                   "fanout10", "turn-channeldata", "turn-indication"};
    std::vector<unsigned> payloads{160, 1200};
    struct extra_run {
        std::string mode;
        unsigned legs;
        unsigned payload; // 0 = every payload of --payloads
    };
    std::vector<extra_run> extra; // MODE:LEGS[:PAYLOAD] (e.g. plain:1000000)
    double phase_s = 0.3;
    unsigned drain_pkts = 131072;
    bool baselines = true;
    bool control = true;
    bool smoke = false;
    unsigned turn_allocs = 20000; // Allocate requests timed through turn_manager (0 = off)
    // --tx-free worker: sent mbufs freed on the transmitting core, as a
    // NIC's TX completion does (ring_port.h); default (sink): by the sink on
    // the main lcore, as every earlier run measured.
    bool tx_free_worker = false;
    // --srtp-contexts cxx: SRTP contexts on the C++ heap (4 KiB pages), as
    // before isard placed them on the DPDK heap (dataplane/srtp_memory.h).
    bool srtp_dpdk_heap = true;
    bool drain_only = false; // capacity only (for profiling the worker: no idle phases)
    // The bare forwarder run between a mode's drain repetitions, its ratio
    // in the row (--no-fwd-alongside: off).
    bool fwd_alongside = true;
    std::string perf_ctl;    // perf record --control fifo: enabled only while draining
    std::string out;
    std::string memory_note = "--no-huge";
    bool soak = false; // --soak N: only the churn soak (bench/soak.h)
    bench_soak::options soak_o;
};

// ------------------------------------------------------------------ utils --
// `perf record -D -1 --control fifo:FIFO` samples only between enable and
// disable: the worker's capacity phase, not session set-up or idle loops.
extern int perf_ctl_fd;
void perf_ctl(const char* cmd);
extern uint64_t hz;
extern int stamp_off; // mbuf dynfield: generator TSC (0 = do not measure)

inline uint64_t& stamp(rte_mbuf* m) { return *RTE_MBUF_DYNFIELD(m, stamp_off, uint64_t*); }
inline uint64_t& tag(rte_mbuf* m) { return *RTE_MBUF_DYNFIELD(m, stamp_off + 8, uint64_t*); }

inline double secs(uint64_t tsc) { return static_cast<double>(tsc) / static_cast<double>(hz); }

extern unsigned port_seq;

// ------------------------------------------------------------------ modes --
struct mode_info {
    std::string name;
    crypto::suite s = crypto::suite::none;
    bool pass = false; // same keys both sides (authenticated pass-through)
    unsigned fan = 1;  // receivers per sender
    // Family of leg a and of leg b (plain6: both IPv6; bridge46: a IPv4, b
    // IPv6, so half the packets are bridged v4 -> v6 and half v6 -> v4).
    uint8_t fam[2] = {4, 4};
    // GCM contexts with the compact key schedule ([relay] srtp_compact_keys,
    // crypto::set_compact_gcm) while this mode's sessions are created.
    bool compact = false;
    bool v6() const { return fam[0] == 6 || fam[1] == 6; }
    uint8_t family(unsigned leg) const { return fam[leg == 0 ? 0 : 1]; }
};

bool mode_of(const std::string& n, mode_info& m);

constexpr uint32_t relay_ip(unsigned ifc) { return 0xc6120001 + (ifc << 8); } // 198.18.i.1
constexpr uint32_t remote_ip(unsigned ifc, unsigned leg) { return 0xc6120000 + (ifc << 8) + 10 + leg; }
inline rte_ether_addr remote_mac(unsigned leg)
{
    rte_ether_addr a{{0x02, 0x00, 0x00, 0x00, 0x01, static_cast<uint8_t>(leg)}};
    return a;
}
// IPv6 modes: interface i also has 2001:2:0:i::1/64; leg j's remote is
// 2001:2:0:i::(10 + j).
using bench_ip6::ip6_of;
inline dp::ip6_addr relay_ip6(unsigned ifc) { return ip6_of(ifc, 1); }
inline dp::ip6_addr remote_ip6(unsigned ifc, unsigned leg) { return ip6_of(ifc, 10 + leg); }
constexpr uint16_t remote_port_base = 1024;
// "a".."z", then "l26".. (fanout199)
inline std::string leg_name(unsigned j)
{
    return j < 26 ? std::string(1, static_cast<char>('a' + j)) : "l" + std::to_string(j);
}

void make_key(crypto::key_material& km, crypto::suite s, uint64_t seed);
std::string key_spec(crypto::suite s, uint64_t seed);
// key ids: session s, leg j, direction (0 in = how the remote protects, 1 out)
uint64_t key_id(const mode_info& m, uint64_t s, unsigned j, unsigned dir);

// ---------------------------------------------------------------- results --
// The records of the run (load_report.cc), written to --out by write_report().
extern json results;
extern json baselines;
extern json control_j;
extern json crypto_j;
extern json crypto_legs_j; // run_crypto_legs (crypto_legs.cc)
extern json turn_j;       // bench_turn::run_mode records (turn_load.cc)
extern json rss_j;        // bench_rss::run_mode records (rss_modes.cc)
extern json turn_alloc_j; // bench_turn::run_allocs
extern std::vector<std::string> errors;

std::string cpu_model();
// The JSON document of the run into o.out (when given).
void write_report(const options& o);

// ------------------------------------------------------------------- runs --
// A mode at `legs` legs, every payload of o.payloads (or only `only_payload`)
// (load_phases.cc).
void run_scenario(const options& o, const std::string& mode, unsigned legs, unsigned only_payload = 0);
// Session creates per second while forwarding (load_control.cc).
void run_control(const options& o, const std::string& mode, unsigned n);
// Baselines (load_baselines.cc).
void run_forwarder(const options& o, unsigned payload);
// The bare forwarder one drain at a time, on the worker lcore (while the
// worker is stopped): run_forwarder's, and the one a mode's drain phase runs
// between its own repetitions, so that the ratio of a row compares cycles
// measured in the same seconds, in the same state of a virtual machine
// (scenario::fwd_alongside).
unsigned fwd_alongside_pkts(const options& o); // packets a repetition alongside
class fwd_rig {
public:
    fwd_rig(const options& o, unsigned payload, unsigned max_pkts);
    ~fwd_rig();
    fwd_rig(const fwd_rig&) = delete;
    fwd_rig& operator=(const fwd_rig&) = delete;
    bool ok() const { return ok_; }
    // Fills up to n packets (at most max_pkts), forwards them: this
    // repetition's cycles per packet (0: none forwarded), added to the sums.
    double rep(unsigned n);
    uint64_t busy = 0, pkts = 0, wall = 0;

private:
    rte_mempool* pool_ = nullptr;
    std::unique_ptr<ring_port> port_;
    unsigned lcore_ = RTE_MAX_LCORE;
    uint8_t frame_[1500] = {};
    unsigned len_ = 0;
    unsigned max_pkts_;
    uint16_t seq_ = 0;
    bool ok_ = false;
};
void run_kernel_relay(const options& o, unsigned payload);
// One pair of SRTP contexts (and a sender and a verifier) of an engine in
// run_crypto's loop: a round is n packets decrypted and encrypted again, and
// verified. run_crypto runs rounds on the main lcore; a mode's drain phase
// runs some on the worker lcore after each of its repetitions
// (scenario::raw_alongside), for a ratio in the same state of the machine.
class raw_pair {
public:
    static constexpr unsigned n = 512; // packets a round
    raw_pair(crypto::suite s, crypto::engine e, unsigned payload);
    bool ok() const;
    void round();
    // `rounds` rounds on the worker lcore (stopped): their cycles per
    // packet; false if it could not run or a round trip failed.
    bool on_worker_lcore(unsigned rounds, double& transcrypt, double& verify);
    uint64_t cyc = 0, vcyc = 0, pkts = 0;
    bool bad = false;

private:
    std::unique_ptr<crypto::srtp_context> snd_, rin_, rout_, vin_;
    std::vector<uint8_t> pk_, w_;
    unsigned payload_;
    uint16_t seq_ = 0;
};
void run_crypto(const options& o);
// The relay's SRTP engine with as many context pairs as legs (crypto_legs.cc).
void run_crypto_legs(const options& o);
// What reaching a leg's two lines costs at each leg count (mem_floor.cc).
void run_leg_lines(const options& o);

} // namespace isar::bench_load
