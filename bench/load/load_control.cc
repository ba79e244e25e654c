// isar-bench control-plane measurement: session creates per second through
// commands::handle_line while the worker forwards background traffic, and
// the time from a create's acknowledgement to its first packet forwarded.
#include "bench/load/load_scenario.h"

#include <cstdio>

#include <rte_cycles.h>
#include <rte_ring.h>

namespace isar::bench_load {
namespace {

// The first packet of session s (leg a), stamped with its acknowledgement's
// TSC `at`, right after the acknowledgement.
void send_first_packet(scenario& sc, unsigned s, uint64_t at)
{
    sender x;
    x.sess = s;
    x.leg = 0;
    x.ifc = 0;
    x.dst_port_be = rte_cpu_to_be_16(sc.sess[s].local[0]);
    x.src_port_be = rte_cpu_to_be_16(static_cast<uint16_t>(remote_port_base + s));
    x.src_ip_be = rte_cpu_to_be_32(remote_ip(0, 0));
    x.ssrc = static_cast<uint32_t>(splitmix(static_cast<uint64_t>(s) * 16));
    if (sc.m.s != crypto::suite::none) {
        crypto::key_material km;
        make_key(km, sc.m.s, key_id(sc.m, s, 0, 0));
        x.ctx = crypto::srtp_context::create(km, crypto::engine::auto_select, sc.error);
    }
    rte_mbuf* mb = rte_pktmbuf_alloc(sc.dp->pool());
    if (mb && sc.build(mb, x)) {
        stamp(mb) = 0;
        tag(mb) = at;
        if (rte_ring_sp_enqueue(sc.ports[0]->rx, mb) == 0)
            sc.sent++;
        else
            rte_pktmbuf_free(mb);
    } else if (mb) {
        rte_pktmbuf_free(mb);
    }
}

// Catch up with the background rate in bursts (bounded per loop: the creates
// must go on too), and drain the output.
void background(scenario& sc, uint64_t tl, double rate, uint64_t& gsent)
{
    double due = static_cast<double>(rte_rdtsc() - tl) * rate - static_cast<double>(gsent);
    for (int b = 0; b < 16 && due >= 8; b++) {
        const unsigned g = sc.gen(0, due >= 32 ? 32 : 8, 0);
        if (g == 0)
            break;
        gsent += g;
        due -= g;
    }
    for (int b = 0; b < 16 && sc.sink() > 0; b++) {
    }
}

} // namespace


void run_control(const options& o, const std::string& mode, unsigned n)
{
    scenario sc(o);
    mode_of(mode, sc.m);
    sc.payload = 160;
    const unsigned base_legs = 1000;
    sc.extra_legs = n * 2 + 64;
    if (!sc.setup(base_legs, 65535)) {
        errors.push_back("control: " + sc.error);
        return;
    }
    // Background traffic: ~1 Mpps over the existing legs while creating.
    const unsigned per_sess = 2;
    std::vector<uint64_t> ack_tsc;
    std::vector<unsigned> acked;
    unsigned next = 0, done = 0, inflight = 0, failed = 0;
    const unsigned first = sc.nsess;
    sc.sess.resize(first + n);
    sc.sess_at[0].resize(first + n + 2, UINT32_MAX);
    const uint64_t t0 = rte_rdtsc();
    const double rate = 1e6 / static_cast<double>(hz);
    uint64_t gsent = 0;
    std::vector<std::string> lines;
    lines.reserve(n);
    for (unsigned i = 0; i < n; i++)
        lines.push_back(sc.create_line(first + i, per_sess, 0, first + i));
    const uint64_t tl = rte_rdtsc();
    while (done < n) {
        while (inflight < 256 && next < n) {
            const unsigned s = first + next;
            inflight++;
            sc.cmds->handle_line(lines[next++], [&, s](const json& r) {
                inflight--;
                done++;
                if (r.contains("error")) {
                    if (failed++ == 0)
                        sc.error = r.dump();
                    return;
                }
                unsigned j = 0;
                for (const auto& l : r.at("legs")) {
                    const std::string loc = l.at("local").get<std::string>();
                    sc.sess[s].local[j++] =
                            static_cast<uint16_t>(std::stoul(loc.substr(loc.rfind(':') + 1)));
                }
                sc.sess[s].nlegs = per_sess;
                sc.sess_at[0][s] = s;
                ack_tsc.push_back(rte_rdtsc());
                acked.push_back(s);
            });
        }
        sc.sm->poll();
        // First packet right after each acknowledgement (every 16th session).
        while (!acked.empty()) {
            const unsigned s = acked.back();
            const uint64_t at = ack_tsc.back();
            acked.pop_back();
            ack_tsc.pop_back();
            if (s % 16 == 0)
                send_first_packet(sc, s, at);
        }
        background(sc, tl, rate, gsent);
    }
    const double el = secs(rte_rdtsc() - tl);
    sc.settle();
    (void)t0;
    percentiles cl = pct(sc.create_lat, hz);
    json j{{"mode", mode},
           {"sessions", n},
           {"legs", n * per_sess},
           {"creates_per_s", static_cast<double>(n) / el},
           {"legs_per_s", static_cast<double>(n * per_sess) / el},
           {"failed", failed},
           {"background_mpps", static_cast<double>(gsent) / el / 1e6},
           {"first_packet_p50_us", cl.p50},
           {"first_packet_p99_us", cl.p99},
           {"first_packet_samples", cl.n},
           {"check_failures", sc.check_fail}};
    if (sc.check_fail || failed || cl.n == 0) {
        j["error"] = failed ? "creates failed: " + sc.error : cl.n == 0 ? "no first packet arrived" : sc.first_fail;
        errors.push_back("control/" + mode + ": " + j["error"].get<std::string>());
    }
    fprintf(stderr,
            "isar-bench: control %s: %.0f session creates/s (%u sessions, 2 legs each) while "
            "forwarding %.2f Mpps; create-ack -> first packet forwarded p50 %.1f us p99 %.1f us\n",
            mode.c_str(), j["creates_per_s"].get<double>(), n, j["background_mpps"].get<double>(),
            cl.p50, cl.p99);
    control_j[mode] = j;
}

} // namespace isar::bench_load
