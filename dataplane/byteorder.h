// 16-bit byte order for the per-packet code. DPDK 22.11's rte_be_to_cpu_16
// of a value that is not a constant is an `asm volatile` xchgb on x86: the
// compiler can neither schedule it nor fold it into the load (classify paid
// 8 instructions a packet for it, bench/load/instructions.sh). The builtin
// is one rol or movbe, and a constant still folds.
#pragma once

#include <bit>
#include <cstdint>

namespace isar::dp {

constexpr uint16_t be16(uint16_t v) noexcept
{
    if constexpr (std::endian::native == std::endian::little)
        return __builtin_bswap16(v);
    else
        return v;
}
// The same swap, read as host to network order.
constexpr uint16_t to_be16(uint16_t v) noexcept { return be16(v); }

} // namespace isar::dp
