// Small helpers shared by isar-bench's harnesses (load_*.cc, soak.cc):
// deterministic pseudo-random numbers, base64 for SRTP key specs, list
// options, heap accounting.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <malloc.h>
#include <rte_malloc.h>
#include <sstream>
#include <string>
#include <vector>

namespace isar::bench_util {

inline uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

struct xorshift {
    uint64_t s = 88172645463325252ull;
    uint64_t next()
    {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return s;
    }
};

inline std::string base64(const uint8_t* p, size_t n)
{
    static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string o;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = static_cast<uint32_t>(p[i]) << 16;
        if (i + 1 < n)
            v |= static_cast<uint32_t>(p[i + 1]) << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        o += t[(v >> 18) & 63];
        o += t[(v >> 12) & 63];
        o += i + 1 < n ? t[(v >> 6) & 63] : '=';
        o += i + 2 < n ? t[v & 63] : '=';
    }
    return o;
}

// "1,1000,100000" / "plain,plain6"
inline std::vector<unsigned> parse_list(const std::string& s)
{
    std::vector<unsigned> v;
    std::stringstream ss(s);
    std::string t;
    while (std::getline(ss, t, ','))
        v.push_back(static_cast<unsigned>(std::stoul(t)));
    return v;
}
inline std::vector<std::string> parse_slist(const std::string& s)
{
    std::vector<std::string> v;
    std::stringstream ss(s);
    std::string t;
    while (std::getline(ss, t, ','))
        v.push_back(t);
    return v;
}

// Bytes allocated from the C++/C heap (glibc malloc's own count: unlike RSS
// it does not miss memory that an earlier scenario freed and this one reuses).
inline size_t heap_bytes()
{
    const struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

inline size_t dpdk_heap_used()
{
    rte_malloc_socket_stats st{};
    size_t n = 0;
    for (int s = 0; s < RTE_MAX_NUMA_NODES; s++)
        if (rte_malloc_get_socket_stats(s, &st) == 0)
            n += st.heap_allocsz_bytes;
    return n;
}

// p50/p99/p99.9 in microseconds of latency samples in TSC cycles (sorts them).
struct percentiles {
    double p50 = 0, p99 = 0, p999 = 0;
    size_t n = 0;
};
inline percentiles pct(std::vector<uint32_t>& v, uint64_t tsc_hz)
{
    percentiles p;
    p.n = v.size();
    if (v.empty())
        return p;
    auto at = [&](double q) {
        size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
        std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
        return static_cast<double>(v[k]) / static_cast<double>(tsc_hz) * 1e6;
    };
    p.p50 = at(0.50);
    p.p99 = at(0.99);
    p.p999 = at(0.999);
    return p;
}

} // namespace isar::bench_util
