// isar-bench: one scenario (a mode at a number of legs): the REAL worker
// loop (dp::worker::run()) on an EAL worker lcore behind net_ring ports,
// sessions created through the control plane, and the generator and sink on
// the main lcore. Set-up in load_setup.cc, generator and sink in
// load_traffic.cc, the measured phases in load_phases.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "control/commands.h"
#include "control/config.h"
#include "control/neighbor_manager.h"
#include "control/session_manager.h"
#include "dataplane/dataplane.h"
#include "bench/load/load_common.h"
#include "bench/load/packets.h"

namespace isar::bench_load {

// ------------------------------------------------------------- scenario --
struct sender {
    uint32_t sess;
    uint16_t dst_port_be; // relay local port of the sending leg
    uint16_t src_port_be; // remote port
    uint32_t src_ip_be;
    dp::ip6_addr src_ip6{}; // family 6
    uint8_t family = 4;     // of the sending leg (and its remote)
    uint32_t ssrc;
    uint16_t seq = 0;
    uint8_t leg;
    uint8_t ifc;
    uint32_t ts = 0;
    std::unique_ptr<crypto::srtp_context> ctx;
};

struct sess_rec {
    uint16_t local[200] = {}; // fanout199: 200 legs
    uint8_t ifc = 0;
    uint8_t nlegs = 0;
};

struct phase_result {
    double mpps = 0, in_mpps = 0, gbps = 0, cpp = 0, cap_mpps = 0, seconds = 0;
    double cpp_best = 0, cpp_mean = 0; // drain phase: over its repetitions
    // Drain phase with scenario::fwd_alongside: the forwarder's cycles per
    // packet (median repetition) and the median over repetitions of the
    // forwarder's cycles over the mode's, each pair run back to back.
    double fwd_cpp = 0, fwd_ratio = 0;
    // The same with scenario::raw_alongside: the engine's cycles per packet
    // (decrypt+encrypt, or verify for pass-through) and its ratio.
    double raw_cpp = 0, raw_ratio = 0;
    unsigned reps = 0;
    // Paced phases: iterations of the main lcore's loop that took > 20 us
    // (it was descheduled or interrupted): packets wait for the sink then,
    // and that shows up in the latency though the relay did not cause it.
    unsigned stalls = 0;
    double max_gap_us = 0;
    uint64_t sent = 0, received = 0, drops = 0;
    int64_t loss = 0;
};

struct scenario {
    const options& o;
    mode_info m;
    unsigned legs = 0;      // legs that send (flows forwarded)
    unsigned nsess = 0;
    unsigned nifaces = 1;
    unsigned payload = 160;
    unsigned extra_legs = 0; // flow-table room for later creates (control bench)
    std::vector<std::unique_ptr<ring_port>> ports;
    ctl::config cfg;
    std::unique_ptr<dp::dataplane> dp;
    std::unique_ptr<ctl::session_manager> sm;
    std::unique_ptr<ctl::neighbor_manager> nm;
    std::unique_ptr<ctl::commands> cmds;
    // IPv6 modes: sessions installed with flow commands (control's
    // session.create takes IPv4 legs only on this branch).
    std::vector<std::unique_ptr<dp::session>> direct;
    std::vector<sess_rec> sess;
    std::vector<sender> senders;
    std::vector<std::vector<uint32_t>> by_iface; // sender indexes per iface
    // sink lookup: [iface][remote-ip leg][remote port - base] -> session
    std::vector<std::vector<uint32_t>> sess_at; // [ifc] -> k -> session
    unsigned lcore = 0;
    bool running = false;
    // When set, drain_phase runs one forwarder repetition after each of its
    // own (run_scenario: the payload's rig).
    fwd_rig* fwd_alongside = nullptr;
    // SRTP modes: the raw engine's rounds after each repetition too.
    raw_pair* raw_alongside = nullptr;
    xorshift rng;
    std::string error;
    // check state
    uint64_t checked = 0, check_fail = 0, sink_seen = 0;
    std::string first_fail;
    std::unordered_map<uint64_t, std::unique_ptr<crypto::srtp_context>> check_ctx;
    // latency capture
    bool lat_on = false;
    std::vector<uint32_t> lat;
    std::vector<uint32_t> create_lat;
    uint64_t out_bytes = 0;
    size_t mem_rss = 0, mem_dpdk = 0;
    double create_s = 0;
    uint8_t pattern[2048];

    explicit scenario(const options& opt) : o(opt)
    {
        for (unsigned i = 0; i < sizeof(pattern); i++)
            pattern[i] = static_cast<uint8_t>(i * 7 + 1);
    }
    ~scenario() { teardown(); }

    dp::worker& wk() { return dp->wk(0); }

    static int wk_main(void* a);
    void start();
    void stop();
    void teardown();

    // ---- set-up (load_setup.cc) -------------------------------------------
    bool setup(unsigned nlegs, unsigned mbufs);
    std::string create_line(unsigned s, unsigned per_sess, unsigned ifc, unsigned k) const;
    bool install_direct();
    bool create_sessions(unsigned per_sess);
    bool make_senders();

    // ---- generator (load_traffic.cc) ----------------------------------------
    bool build(rte_mbuf* mb, sender& x);

    uint64_t sent = 0, gen_fail = 0;
    rte_mbuf* gbuf[32];

    unsigned gen(unsigned ifc, unsigned n, uint64_t st, uint64_t tg = 0);

    // ---- sink (load_traffic.cc) ---------------------------------------------
    uint64_t received = 0;
    uint64_t sample_every = 1024;

    void check(rte_mbuf* mb, unsigned ifc);
    unsigned sink();
    uint64_t drops_total() const;
    std::string drops_str() const;
    unsigned rx_pending() const;

    // ---- phases (load_phases.cc) --------------------------------------------
    void settle();

    struct snap {
        uint64_t busy, rx, fwd, tx, drops, sent, received, bytes, tsc;
    };
    snap take();
    phase_result diff(const snap& a, const snap& b, uint64_t t0, uint64_t t1);
    phase_result drain_phase();
    phase_result run_phase(double seconds, double rate, bool measure_lat);
};

json phase_json(const phase_result& r);

} // namespace isar::bench_load
