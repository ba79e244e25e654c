// isar-bench's records and the JSON document of a run (load_common.h).
#include "bench/load/load_common.h"

#include <cstdio>
#include <fstream>

namespace isar::bench_load {

json results = json::array();
json baselines = json::array();
json control_j = json::object();
json crypto_j = json::array();
json crypto_legs_j = json::array();
json turn_j = json::array();
json rss_j = json::array();
json turn_alloc_j;
std::vector<std::string> errors;

std::string cpu_model()
{
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("model name", 0) == 0)
            return line.substr(line.find(':') + 2);
    return "?";
}

void write_report(const options& o)
{
    json out{{"tool", "isar-bench"},
             {"cpu", cpu_model()},
             {"tsc_hz", hz},
             {"memory", o.memory_note},
             {"lcores", "main: generator+sink, 1 worker lcore: dp::worker::run()"},
             {"phase_s", o.phase_s},
             {"tx_free", o.tx_free_worker ? "worker" : "sink"},
             {"srtp_contexts", o.srtp_dpdk_heap ? "dpdk-heap" : "cxx-heap"},
             {"loadavg_at_end", [] {
                  std::ifstream f("/proc/loadavg");
                  std::string l;
                  std::getline(f, l);
                  return l;
              }()},
             {"results", results},
             {"baselines", baselines},
             {"crypto", crypto_j},
             {"crypto_at_legs", crypto_legs_j},
             {"control", control_j},
             {"turn", turn_j},
             {"rss", rss_j},
             {"turn_allocations", turn_alloc_j},
             {"errors", errors}};
    if (!o.out.empty()) {
        std::ofstream f(o.out);
        f << out.dump(1) << "\n";
    }
}

} // namespace isar::bench_load
