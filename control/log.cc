#include "control/log.h"

namespace isar::ctl {

RTE_LOG_REGISTER(logtype, isar.ctl, INFO);

void log_line(uint32_t level, const std::string& msg)
{
    static const char* names[] = {"", "emerg", "alert", "crit", "error", "warning",
                                  "notice", "info", "debug"};
    const char* n = level < sizeof(names) / sizeof(names[0]) ? names[level] : "?";
    rte_log(level, logtype, "isard: %s ctl: %s\n", n, msg.c_str());
}

} // namespace isar::ctl
