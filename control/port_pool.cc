#include "control/port_pool.h"

#include <algorithm>

#include "dataplane/leg.h"

namespace isar::ctl {

port_pool::port_pool(uint16_t min, uint16_t max, unsigned nworkers)
    : min_(min), max_(max), nworkers_(nworkers), free_(nworkers),
      used_(static_cast<size_t>(max - min) + 1, false)
{
    for (uint32_t p = min; p <= max; p++)
        free_[dp::owner_of_port(static_cast<uint16_t>(p), nworkers)].push_back(
                static_cast<uint16_t>(p));
}

std::optional<uint16_t> port_pool::alloc(unsigned owner)
{
    if (owner >= nworkers_ || free_[owner].empty())
        return std::nullopt;
    uint16_t p = free_[owner].front();
    free_[owner].pop_front();
    used_[p - min_] = true;
    return p;
}

std::optional<uint16_t> port_pool::alloc_even(unsigned owner, bool take_next)
{
    if (owner >= nworkers_)
        return std::nullopt;
    auto& q = free_[owner];
    for (auto it = q.begin(); it != q.end(); ++it) {
        const uint16_t p = *it;
        if ((p & 1) != 0 || p == max_ || used_[p + 1 - min_])
            continue;
        q.erase(it);
        used_[p - min_] = true;
        if (take_next) {
            q.erase(std::find(q.begin(), q.end(), static_cast<uint16_t>(p + 1)));
            used_[p + 1 - min_] = true;
        }
        return p;
    }
    return std::nullopt;
}

void port_pool::release(uint16_t port)
{
    if (port < min_ || port > max_ || !used_[port - min_])
        return;
    used_[port - min_] = false;
    free_[dp::owner_of_port(port, nworkers_)].push_back(port);
}

bool port_pool::in_use(uint16_t port) const
{
    return port >= min_ && port <= max_ && used_[port - min_];
}

size_t port_pool::free_total() const
{
    size_t n = 0;
    for (auto& f : free_)
        n += f.size();
    return n;
}

} // namespace isar::ctl
