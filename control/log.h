// Control-plane logging: fmt formatting into rte_log, one line per message,
// logtype isar.ctl (so --log-level=isar.ctl:debug works). Never per packet.
#pragma once

#include <fmt/format.h>

#include <rte_log.h>

namespace isar::ctl {

extern int logtype;
void log_line(uint32_t level, const std::string& msg);

template <typename... A>
void log(uint32_t level, fmt::format_string<A...> f, A&&... a)
{
    if (rte_log_can_log(logtype, level))
        log_line(level, fmt::format(f, std::forward<A>(a)...));
}
#define ISAR_LOG(lvl, ...) ::isar::ctl::log(RTE_LOG_##lvl, __VA_ARGS__)

} // namespace isar::ctl
