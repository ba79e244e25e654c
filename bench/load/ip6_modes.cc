// isar-bench's IPv6 modes (ip6_modes.h).
#include "bench/load/ip6_modes.h"

#include <cstdio>

namespace isar::bench_ip6 {

dp::ip6_addr ip6_of(unsigned ifc, unsigned host)
{
    dp::ip6_addr a{};
    a.b[0] = 0x20;
    a.b[1] = 0x01;
    a.b[3] = 0x02;
    a.b[6] = static_cast<uint8_t>(ifc >> 8);
    a.b[7] = static_cast<uint8_t>(ifc);
    a.b[14] = static_cast<uint8_t>(host >> 8);
    a.b[15] = static_cast<uint8_t>(host);
    return a;
}

bool add_sessions(dp::dataplane& dp, const std::vector<std::unique_ptr<dp::session>>& sessions,
                  std::string& error)
{
    std::vector<dp::flow_cmd> cmds(sessions.size());
    size_t next = 0, done = 0;
    while (done < sessions.size()) {
        while (next < sessions.size()) {
            cmds[next].op = dp::cmd_op::add_session;
            cmds[next].sess = sessions[next].get();
            if (dp.submit(&cmds[next]) != 0)
                break; // ring full: collect acknowledgements first
            next++;
        }
        dp::flow_cmd* d[64];
        const unsigned n = dp.poll_done(d, 64);
        for (unsigned i = 0; i < n; i++) {
            if (d[i]->status != 0) {
                error = "add_session refused: status " + std::to_string(d[i]->status);
                return false;
            }
        }
        done += n;
    }
    return true;
}

// IPv6 modes next to plain of the same run, legs and payload: the cost per
// packet of IPv6 and of v4<->v6 bridging (vs_plain in the JSON, and printed).
void add_plain_ratios(nlohmann::json& results)
{
    for (auto& r : results) {
        const std::string mode = r.value("mode", "");
        if ((mode != "plain6" && mode != "bridge46") || r.contains("error"))
            continue;
        for (const auto& p : results) {
            if (p.value("mode", "") != "plain" || p.contains("error") ||
                p.value("legs", 0u) != r.value("legs", 0u) ||
                p.value("payload", 0u) != r.value("payload", 0u))
                continue;
            const double pc = p["cycles_per_packet"].get<double>();
            const double pm = p["mpps_per_core"].get<double>();
            const double rc = r["cycles_per_packet"].get<double>();
            const double rm = r["mpps_per_core"].get<double>();
            if (pc <= 0 || pm <= 0)
                break;
            r["vs_plain"] = {{"plain_cycles_per_packet", pc},
                             {"cycles_ratio", rc / pc},
                             {"extra_cycles_per_packet", rc - pc},
                             {"mpps_ratio", rm / pm}};
            fprintf(stderr,
                    "isar-bench: %-8s %6u legs %4u B: %6.1f cyc/pkt vs plain %6.1f (x%.2f, %+.1f "
                    "cyc), %.2f vs %.2f Mpps (x%.2f)\n",
                    mode.c_str(), r["legs"].get<unsigned>(), r["payload"].get<unsigned>(), rc, pc,
                    rc / pc, rc - pc, rm, pm, rm / pm);
            break;
        }
    }
}

} // namespace isar::bench_ip6
