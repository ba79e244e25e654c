// isar-bench measured phases (load_scenario.h) and the scenario run: warm-up,
// capacity (drain), sustained, and latency at 50 % and 90 % of capacity.
#include "bench/load/load_scenario.h"

#include <algorithm>
#include <cstdio>

#include <rte_cycles.h>
#include <rte_ring.h>

#include "crypto/srtp_context.h"

namespace isar::bench_load {

// Waits until every packet sent is accounted for (received or dropped),
// or the worker is idle for a while.
void scenario::settle()
{
    const uint64_t end0 = rte_rdtsc() + hz;
    while (rte_rdtsc() < end0 && received + drops_total() < sent * m.fan) {
        sink();
        sm->poll();
    }
    const uint64_t end = rte_rdtsc() + hz / 20;
    uint64_t last = ~0ull;
    unsigned quiet = 0;
    while (rte_rdtsc() < end) {
        unsigned k = sink();
        const uint64_t rx = dp::read(wk().stats.rx_pkts);
        if (k == 0 && rx_pending() == 0 && rx == last) {
            if (++quiet > 2000)
                return;
        } else {
            quiet = 0;
        }
        last = rx;
        if ((quiet & 63) == 0) {
            sm->poll();
            nm->poll();
        }
    }
}

scenario::snap scenario::take()
{
    auto& s = wk().stats;
    return {dp::read(s.busy_tsc), dp::read(s.rx_pkts), dp::read(s.fwd_pkts),
            dp::read(s.tx_pkts), drops_total(), sent, received, out_bytes, rte_rdtsc()};
}
phase_result scenario::diff(const snap& a, const snap& b, uint64_t t0, uint64_t t1)
{
    phase_result r;
    r.seconds = secs(t1 - t0);
    r.sent = b.sent - a.sent;
    r.received = b.received - a.received;
    r.drops = b.drops - a.drops;
    r.loss = static_cast<int64_t>(r.sent * m.fan) - static_cast<int64_t>(r.received) -
             static_cast<int64_t>(r.drops);
    const uint64_t out = b.tx - a.tx;
    r.mpps = static_cast<double>(r.received) / r.seconds / 1e6;
    r.in_mpps = static_cast<double>(b.rx - a.rx) / r.seconds / 1e6;
    r.gbps = static_cast<double>(b.bytes - a.bytes) * 8 / r.seconds / 1e9;
    r.cpp = out ? static_cast<double>(b.busy - a.busy) / static_cast<double>(out) : 0;
    r.cap_mpps = r.cpp > 0 ? static_cast<double>(hz) / r.cpp / 1e6 : 0;
    return r;
}

// Capacity: fill the RX rings with the worker stopped, start it, drain.
unsigned fwd_alongside_pkts(const options& o)
{
    return std::min(o.drain_pkts, 32768u);
}

phase_result scenario::drain_phase()
{
    snap a{}, b{};
    uint64_t busy_time = 0;
    const uint64_t end = rte_rdtsc() + static_cast<uint64_t>(o.phase_s * static_cast<double>(hz));
    unsigned reps = 0;
    uint64_t tot_rx = 0, tot_busy = 0, tot_out = 0, tot_bytes = 0, tot_sent = 0, tot_drops = 0;
    struct rep {
        double cpp, mpps, in_mpps, gbps;
    };
    std::vector<rep> reps_v;
    std::vector<double> fwd_v, ratio_v; // fwd_alongside's repetitions
    std::vector<double> raw_v, raw_ratio_v; // raw_alongside's
    uint64_t end_ext = end;
    do {
        stop();
        const unsigned want = o.drain_pkts / m.fan;
        unsigned filled = 0;
        // Round-robin over the interfaces that have sending legs (with
        // fan-out, the receivers' interfaces have none).
        for (unsigned round = 0, idle = 0; filled < want && idle < nifaces; round++) {
            const unsigned ifc = round % nifaces;
            unsigned k = gen(ifc, std::min(32u, want - filled), 0);
            idle = k == 0 ? idle + 1 : 0;
            filled += k;
        }
        a = take();
        perf_ctl("enable\n");
        const uint64_t t0 = rte_rdtsc();
        start();
        uint64_t tl = t0;
        const uint64_t expect = static_cast<uint64_t>(filled) * m.fan;
        uint64_t got = 0;
        const uint64_t lim = t0 + hz;
        while (got + (drops_total() - a.drops) < expect && rte_rdtsc() < lim) {
            unsigned k = sink();
            if (k) {
                got += k;
                tl = rte_rdtsc();
            }
        }
        b = take();
        perf_ctl("disable\n");
        busy_time += tl - t0;
        tot_rx += b.rx - a.rx;
        tot_busy += b.busy - a.busy;
        tot_out += b.tx - a.tx;
        tot_bytes += b.bytes - a.bytes;
        tot_sent += b.sent - a.sent;
        tot_drops += b.drops - a.drops;
        if (b.tx > a.tx && tl > t0) {
            const double s = secs(tl - t0);
            reps_v.push_back({static_cast<double>(b.busy - a.busy) / static_cast<double>(b.tx - a.tx),
                              static_cast<double>(b.tx - a.tx) / s / 1e6,
                              static_cast<double>(b.rx - a.rx) / s / 1e6,
                              static_cast<double>(b.bytes - a.bytes) * 8 / s / 1e9});
            if (fwd_alongside != nullptr || raw_alongside != nullptr) { // not the mode's time
                stop();
                const uint64_t f0 = rte_rdtsc();
                const double f =
                        fwd_alongside != nullptr ? fwd_alongside->rep(fwd_alongside_pkts(o)) : 0;
                if (f > 0) {
                    fwd_v.push_back(f);
                    ratio_v.push_back(f / reps_v.back().cpp);
                }
                double tc = 0, vc = 0;
                if (raw_alongside != nullptr && raw_alongside->on_worker_lcore(4, tc, vc)) {
                    const double c = m.pass ? vc : tc;
                    raw_v.push_back(c);
                    raw_ratio_v.push_back(c / reps_v.back().cpp);
                }
                start(); // as a repetition leaves it, for the phases after
                end_ext += rte_rdtsc() - f0;
            }
        }
        reps++;
    } while (rte_rdtsc() < end_ext && reps < 64);
    settle();
    phase_result r;
    r.seconds = secs(busy_time);
    r.sent = tot_sent;
    r.received = tot_out; // tx_pkts of the worker; the sink counted them too
    r.drops = tot_drops;
    r.reps = reps;
    // The median repetition: on a shared (virtual) machine a repetition
    // during which the worker's vCPU was descheduled counts those cycles
    // as its own; the median is robust to a few of those, the mean is not.
    if (!reps_v.empty()) {
        std::sort(reps_v.begin(), reps_v.end(),
                  [](const rep& x, const rep& y) { return x.cpp < y.cpp; });
        const rep& med = reps_v[reps_v.size() / 2];
        r.mpps = med.mpps;
        r.in_mpps = med.in_mpps;
        r.gbps = med.gbps;
        r.cpp = med.cpp;
        r.cpp_best = reps_v.front().cpp;
    }
    if (!fwd_v.empty()) {
        std::sort(fwd_v.begin(), fwd_v.end());
        std::sort(ratio_v.begin(), ratio_v.end());
        r.fwd_cpp = fwd_v[fwd_v.size() / 2];
        r.fwd_ratio = ratio_v[ratio_v.size() / 2];
    }
    if (!raw_v.empty()) {
        std::sort(raw_v.begin(), raw_v.end());
        std::sort(raw_ratio_v.begin(), raw_ratio_v.end());
        r.raw_cpp = raw_v[raw_v.size() / 2];
        r.raw_ratio = raw_ratio_v[raw_ratio_v.size() / 2];
    }
    r.cpp_mean = tot_out ? static_cast<double>(tot_busy) / static_cast<double>(tot_out) : 0;
    r.cap_mpps = r.cpp > 0 ? static_cast<double>(hz) / r.cpp / 1e6 : 0;
    return r;
}

// Generator as fast as it can (rate = 0) or paced at `rate` pps.
phase_result scenario::run_phase(double seconds, double rate, bool measure_lat)
{
    // No reallocation and no page faults while measuring.
    lat.resize(8u << 20);
    lat.clear();
    lat_on = measure_lat;
    const snap a = take();
    const uint64_t t0 = rte_rdtsc();
    const uint64_t end = t0 + static_cast<uint64_t>(seconds * static_cast<double>(hz));
    uint64_t sent0 = sent;
    unsigned ifc = 0, it = 0;
    const double per_tsc = rate / static_cast<double>(hz);
    const uint64_t stall_tsc = hz / 50000; // 20 us
    double forgiven = 0;
    uint64_t prev = t0, max_gap = 0;
    unsigned stalls = 0;
    for (uint64_t now = t0; now < end; now = rte_rdtsc()) {
        if (now - prev > stall_tsc)
            stalls++;
        max_gap = std::max(max_gap, now - prev);
        prev = now;
        unsigned n = 32;
        if (rate > 0) {
            double due = static_cast<double>(now - t0) * per_tsc -
                         static_cast<double>(sent - sent0) - forgiven;
            // Behind by more than a few bursts means the main lcore was
            // stalled (the worker has twice the capacity at 50 %): drop
            // the debt instead of bursting it out at far above the rate.
            if (due > 128) {
                forgiven += due - 32;
                due = 32;
            }
            n = due >= 32 ? 32 : static_cast<unsigned>(std::max(0.0, due));
            if (n > 8 && due < 32)
                n = 8; // small bursts at moderate rates: less queueing than a NIC's
        }
        // A NIC RX ring holds ~4k descriptors: never queue more than that
        // (and never starve the mempool the worker copies from).
        if (n > 0 && rte_ring_count(ports[ifc]->rx) < 4096) {
            gen(ifc, n, measure_lat ? 1 : 0);
            ifc = (ifc + 1) % nifaces;
        }
        sink();
        if ((++it & 1023) == 0 && !measure_lat) {
            sm->poll();
            nm->poll();
        }
    }
    const uint64_t t1 = rte_rdtsc();
    settle();
    lat_on = false;
    snap b = take();
    phase_result r = diff(a, b, t0, t1);
    r.mpps = static_cast<double>(r.received) / r.seconds / 1e6;
    r.stalls = stalls;
    r.max_gap_us = secs(max_gap) * 1e6;
    return r;
}

json phase_json(const phase_result& r)
{
    return {{"mpps", r.mpps},        {"in_mpps", r.in_mpps}, {"gbps", r.gbps},
            {"cycles_per_packet", r.cpp}, {"capacity_mpps", r.cap_mpps}, {"sent", r.sent},
            {"received", r.received}, {"drops", r.drops}, {"loss", r.loss},
            {"seconds", r.seconds}, {"repetitions", r.reps}, {"main_lcore_stalls", r.stalls},
            {"main_lcore_max_gap_us", r.max_gap_us}, {"cycles_per_packet_best", r.cpp_best},
            {"cycles_per_packet_mean", r.cpp_mean}};
}

namespace {

// The phases of one payload: warm-up, capacity (drain), and unless
// --drain-only sustained and latency at 50 % and 90 % of the capacity's rate.
struct payload_run {
    phase_result cap, sus, l50, l90;
    percentiles p50{}, p90{};
};

payload_run run_payload(scenario& sc, const options& o)
{
    payload_run pr;
    // check contexts persist across payloads: they track each leg's ROC
    // warm-up (every leg touched at least once where feasible)
    sc.run_phase(std::min(0.1, o.phase_s), 0, false);
    pr.cap = sc.drain_phase();
    if (!o.drain_only) {
        pr.sus = sc.run_phase(o.phase_s, 0, false);
        const double max_rate = pr.cap.in_mpps * 1e6;
        pr.l50 = sc.run_phase(o.phase_s, max_rate * 0.5, true);
        pr.p50 = pct(sc.lat, hz);
        pr.l90 = sc.run_phase(o.phase_s, max_rate * 0.9, true);
        pr.p90 = pct(sc.lat, hz);
    }
    sc.settle();
    return pr;
}

// The numbers of one payload into its record.
void fill_record(json& rec, const scenario& sc, const payload_run& pr, int64_t loss,
                 unsigned total_legs)
{
    rec["mpps_per_core"] = pr.cap.mpps;
    rec["capacity_mpps"] = pr.cap.cap_mpps;
    rec["in_mpps"] = pr.cap.in_mpps;
    rec["gbps"] = pr.cap.gbps;
    rec["cycles_per_packet"] = pr.cap.cpp;
    if (pr.cap.fwd_ratio > 0) { // the forwarder between the drain's repetitions
        rec["fwd_alongside_cycles"] = pr.cap.fwd_cpp;
        rec["fwd_alongside_ratio"] = pr.cap.fwd_ratio;
    }
    if (pr.cap.raw_ratio > 0) { // the raw engine between them (SRTP modes)
        rec["raw_alongside_cycles"] = pr.cap.raw_cpp;
        rec["raw_alongside_ratio"] = pr.cap.raw_ratio;
    }
    rec["cycles_per_input_packet"] = pr.cap.cpp * sc.m.fan;
    rec["sustained_mpps"] = pr.sus.mpps;
    rec["sustained_in_mpps"] = pr.sus.in_mpps;
    rec["p50_us"] = pr.p50.p50;
    rec["p99_us"] = pr.p50.p99;
    rec["p999_us"] = pr.p50.p999;
    rec["offered_mpps_50"] = pr.l50.in_mpps;
    rec["main_lcore_stalls_50"] = pr.l50.stalls;
    rec["main_lcore_max_gap_us_50"] = pr.l50.max_gap_us;
    rec["p50_us_90"] = pr.p90.p50;
    rec["p99_us_90"] = pr.p90.p99;
    rec["p999_us_90"] = pr.p90.p999;
    rec["offered_mpps_90"] = pr.l90.in_mpps;
    rec["loss"] = loss;
    rec["drops"] = sc.drops_str();
    rec["checked"] = sc.checked;
    rec["check_failures"] = sc.check_fail;
    rec["mem_bytes_per_leg"] =
            static_cast<double>(sc.mem_rss + sc.mem_dpdk) / static_cast<double>(total_legs);
    rec["mem_heap_bytes"] = sc.mem_rss;    // C++ heap: session records (SRTP contexts without hugepages)
    rec["mem_dpdk_bytes"] = sc.mem_dpdk;   // DPDK heap: legs, flow table, SRTP context slabs
    rec["setup_s"] = sc.create_s;
    if (sc.m.v6()) // control's session.create takes IPv4 legs only on this branch
        rec["sessions_via"] = "flow commands";
    rec["phases"] = {{"drain", phase_json(pr.cap)}, {"sustained", phase_json(pr.sus)},
                     {"lat50", phase_json(pr.l50)}, {"lat90", phase_json(pr.l90)}};
}

// Empty, or why the payload's numbers are not to be reported.
std::string verdict(const scenario& sc, const payload_run& pr, int64_t loss)
{
    if (sc.check_fail)
        return "output check failed (" + std::to_string(sc.check_fail) + "/" +
               std::to_string(sc.checked) + "): " + sc.first_fail;
    else if (sc.checked == 0)
        return "no output to check";
    else if (loss != 0 || pr.cap.drops != 0 || sc.drops_total() != 0)
        return "packets lost or dropped: loss=" + std::to_string(loss) + " drops=" +
               sc.drops_str();
    else if (sc.gen_fail)
        return sc.error;
    return {};
}

} // namespace

void run_scenario(const options& o, const std::string& mode, unsigned legs, unsigned only_payload)
{
    auto sc = std::make_unique<scenario>(o);
    if (!mode_of(mode, sc->m)) {
        errors.push_back("unknown mode " + mode);
        return;
    }
    const unsigned mbufs = std::max(65535u, o.drain_pkts * 2 + 65535);
    fprintf(stderr, "isar-bench: %s, %u legs: creating sessions...\n", mode.c_str(), legs);
    crypto::set_compact_gcm(sc->m.compact); // read when a context is created
    const bool ok = sc->setup(legs, mbufs);
    crypto::set_compact_gcm(false);
    const unsigned total_legs = sc->nsess * (sc->m.fan > 1 ? sc->m.fan + 1 : 2);
    const std::vector<unsigned> payloads =
            only_payload != 0 ? std::vector<unsigned>{only_payload} : o.payloads;
    for (unsigned payload : payloads) {
        json rec{{"mode", mode}, {"payload", payload}, {"legs", legs},
                 {"sessions", sc->nsess}, {"legs_installed", total_legs},
                 {"interfaces", sc->nifaces}};
        if (!ok) {
            rec["error"] = sc->error;
            errors.push_back(mode + "/" + std::to_string(legs) + ": " + sc->error);
            results.push_back(rec);
            fprintf(stderr, "isar-bench:   ERROR %s\n", sc->error.c_str());
            continue;
        }
        sc->payload = payload;
        sc->checked = sc->check_fail = 0;
        sc->first_fail.clear();
        std::unique_ptr<fwd_rig> rig;
        std::unique_ptr<raw_pair> raw;
        if (o.fwd_alongside) {
            // A quarter of a drain at most: its pool must fit next to a
            // million legs' contexts (hugepages).
            rig = std::make_unique<fwd_rig>(o, payload, fwd_alongside_pkts(o));
            sc->fwd_alongside = rig->ok() ? rig.get() : nullptr;
            // The engine the relay uses; not for fan-out, whose rows count
            // per output what one decrypt serves many times.
            if (sc->m.s != crypto::suite::none && sc->m.fan == 1) {
                raw = std::make_unique<raw_pair>(sc->m.s, crypto::auto_engine(sc->m.s), payload);
                sc->raw_alongside = raw->ok() ? raw.get() : nullptr;
            }
        }
        const payload_run pr = run_payload(*sc, o);
        sc->fwd_alongside = nullptr;
        sc->raw_alongside = nullptr;
        // A baseline alongside that could not run says so in the row.
        if (rig && !rig->ok())
            rec["fwd_alongside_error"] = "no room for the forwarder's port or pool";
        if (raw && (!raw->ok() || raw->pkts == 0))
            rec["raw_alongside_error"] = raw->bad ? "crypto round trip failed" : "did not run";
        for (const char* k : {"fwd_alongside_error", "raw_alongside_error"})
            if (rec.contains(k))
                fprintf(stderr, "isar-bench:          %s: %s\n", k, rec[k].get<std::string>().c_str());
        const int64_t loss = pr.sus.loss + pr.l50.loss + pr.l90.loss;
        fill_record(rec, *sc, pr, loss, total_legs);
        const std::string err = verdict(*sc, pr, loss);
        if (!err.empty()) {
            rec = json{{"mode", rec["mode"]}, {"payload", payload}, {"legs", legs}, {"error", err}};
            errors.push_back(mode + "/" + std::to_string(legs) + "/" + std::to_string(payload) +
                             ": " + err);
            fprintf(stderr, "isar-bench:   %4u B ERROR %s\n", payload, err.c_str());
        } else {
            fprintf(stderr,
                    "isar-bench:   %4u B  %6.2f Mpps (cap %6.2f) %6.1f cyc/pkt %6.2f Gbit/s  "
                    "p99 %.1f/%.1f us  mem/leg %.0f B  checked %lu\n",
                    payload, pr.cap.mpps, pr.cap.cap_mpps, pr.cap.cpp, pr.cap.gbps, pr.p50.p99, pr.p90.p99,
                    rec["mem_bytes_per_leg"].get<double>(),
                    static_cast<unsigned long>(sc->checked));
            if (pr.cap.fwd_ratio > 0)
                fprintf(stderr, "isar-bench:          forwarder alongside %.1f cyc/pkt: %.2fx\n",
                        pr.cap.fwd_cpp, pr.cap.fwd_ratio);
            if (pr.cap.raw_ratio > 0)
                fprintf(stderr, "isar-bench:          raw %s alongside %.1f cyc/pkt: %.2fx\n",
                        crypto::engine_name(crypto::auto_engine(sc->m.s)), pr.cap.raw_cpp,
                        pr.cap.raw_ratio);
            if (pr.cap.raw_ratio > 0 && pr.cap.fwd_ratio > 0) { // report.py: srtp_room_table
                const double e = pr.cap.raw_cpp, f = pr.cap.fwd_cpp;
                fprintf(stderr,
                        "isar-bench:          engine + forwarder at best %.2fx; 0.8x leaves "
                        "%.0f cycles beyond them, the relay took %.0f\n",
                        e / (e + f), e / 0.8 - e - f, pr.cap.cpp - e - f);
            }
        }
        results.push_back(rec);
    }
}

} // namespace isar::bench_load
