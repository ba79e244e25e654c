#include "control/port_pool.h"

#include <algorithm>

#include <openssl/rand.h>

#include "dataplane/leg.h"

namespace isar::ctl {

port_pool::port_pool(uint16_t min, uint16_t max, unsigned nworkers, bool unpredictable,
                     const uint8_t* owner_map)
    : min_(min), max_(max), nworkers_(nworkers), unpredictable_(unpredictable), map_(owner_map),
      free_(nworkers), used_(static_cast<size_t>(max - min) + 1, false)
{
    for (uint32_t p = min; p <= max; p++) {
        const unsigned w = owner_of(static_cast<uint16_t>(p));
        if (w < nworkers) // a map naming no worker of ours: never dealt
            free_[w].push_back(static_cast<uint16_t>(p));
    }
}

unsigned port_pool::owner_of(uint16_t port) const
{
    return map_ != nullptr ? map_[port] : dp::owner_of_port(port, nworkers_);
}

std::optional<uint16_t> port_pool::alloc(unsigned owner)
{
    if (owner >= nworkers_ || free_[owner].empty())
        return std::nullopt;
    auto& q = free_[owner];
    if (unpredictable_ && q.size() > 1) {
        // Swap a random one of the older half to the front: O(1), and the
        // port it displaces stays in the older half.
        uint32_t r = 0;
        RAND_bytes(reinterpret_cast<uint8_t*>(&r), sizeof(r));
        std::swap(q.front(), q[r % ((q.size() + 1) / 2)]);
    }
    uint16_t p = q.front();
    q.pop_front();
    used_[p - min_] = true;
    return p;
}

std::optional<uint16_t> port_pool::alloc_even(unsigned owner, bool take_next)
{
    if (owner >= nworkers_)
        return std::nullopt;
    auto& q = free_[owner];
    size_t start = 0;
    if (unpredictable_ && q.size() > 1) {
        uint32_t r = 0;
        RAND_bytes(reinterpret_cast<uint8_t*>(&r), sizeof(r));
        start = r % ((q.size() + 1) / 2);
    }
    for (size_t k = 0; k < q.size(); k++) {
        const size_t i = (start + k) % q.size();
        const uint16_t p = q[i];
        if ((p & 1) != 0 || p == max_ || used_[p + 1 - min_] || owner_of(static_cast<uint16_t>(p + 1)) != owner)
            continue;
        q.erase(q.begin() + static_cast<std::ptrdiff_t>(i));
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
    free_[owner_of(port)].push_back(port);
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
