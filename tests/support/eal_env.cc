#include "tests/support/eal_env.h"

#include <filesystem>
#include <rte_eal.h>
#include <rte_errno.h>
#include <sched.h>
#include <string_view>
#include <unistd.h>

namespace isar::test {

namespace {
bool g_ready = false;

// "0@(0,1,3)": the main lcore may float over every CPU we are allowed on.
std::string main_lcore_arg()
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return "0";
    std::string cpus;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (CPU_ISSET(c, &set))
            cpus += (cpus.empty() ? "" : ",") + std::to_string(c);
    }
    return cpus.empty() ? "0" : "0@(" + cpus + ")";
}
} // namespace

eal_env::eal_env(std::string name, std::vector<std::string> extra_args)
    : name_(std::move(name)), extra_(std::move(extra_args))
{
}

bool eal_env::ready()
{
    return g_ready;
}

void eal_env::SetUp()
{
    const std::string prefix = "isar_" + name_ + "_" + std::to_string(getpid());
    std::vector<std::string> args = {name_,
                                     "--no-huge",
                                     "-m",
                                     "256",
                                     "--no-pci",
                                     "--no-telemetry",
                                     "--lcores=" + main_lcore_arg(),
                                     "--file-prefix=" + prefix,
                                     "--log-level=error"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = rte_eal_init(static_cast<int>(args.size()), argv.data());
    ASSERT_GE(rc, 0) << "rte_eal_init failed (" << rte_errno
                     << "); the tests need --no-huge --no-pci to work as the current user";
    g_ready = true;
    const char* dir = rte_eal_get_runtime_dir();
    // Only ever remove the directory EAL made for our own prefix.
    if (dir != nullptr && std::filesystem::path(dir).filename() == prefix)
        runtime_dir_ = dir;
}

void eal_env::TearDown()
{
    if (!g_ready)
        return;
    rte_eal_cleanup();
    g_ready = false;
    if (!runtime_dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(runtime_dir_, ec);
    }
}

} // namespace isar::test
