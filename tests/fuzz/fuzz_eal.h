// EAL for the DPDK fuzz targets, booted once per process on first use (from
// LLVMFuzzerTestOneInput, so the gcc replay driver gets it too): no
// hugepages, no PCI, 128 MB, a file prefix unique to the target and the
// process (libFuzzer -fork children and the replay test may run side by
// side), errors only. The runtime directory is removed again at exit.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>
#include <unistd.h>

namespace isar::fuzz {

inline std::string& eal_runtime_dir()
{
    static std::string dir;
    return dir;
}

inline void eal_cleanup()
{
    rte_eal_cleanup();
    if (!eal_runtime_dir().empty()) {
        std::error_code ec;
        std::filesystem::remove_all(eal_runtime_dir(), ec);
    }
}

inline void eal_init(const char* name)
{
    static bool done = false;
    if (done)
        return;
    done = true;
    const std::string prefix = std::string(name) + "_" + std::to_string(getpid());
    std::vector<std::string> args = {name, "--no-huge", "--no-pci", "--no-telemetry", "-m", "128",
                                     "--file-prefix=" + prefix, "--log-level=*:error"};
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) {
        std::fprintf(stderr, "%s: rte_eal_init failed (%d)\n", name, rte_errno);
        std::abort();
    }
    const char* dir = rte_eal_get_runtime_dir();
    if (dir != nullptr && std::filesystem::path(dir).filename() == prefix)
        eal_runtime_dir() = dir;
    std::atexit(eal_cleanup);
}

} // namespace isar::fuzz
