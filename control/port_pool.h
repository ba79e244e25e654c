// Relay UDP ports of one address slot, dealt to workers by the slot's
// owner map (dataplane::owner_map: the NIC's Toeplitz map where its RSS
// hashes on the UDP destination, see dataplane/ownership.h), or by
// owner_of_port() (ports in pairs) without one: a session's legs all take
// ports owned by the same worker, so every packet of a call is handled by
// one worker. With a Toeplitz map 2k and 2k+1 may have different owners:
// alloc_even() hands out only pairs that share their owner. Released ports go to the back of the
// queue, so a port is not handed out again while stray packets of its last
// call may still arrive.
//
// Unpredictable (isard's pools): a port is drawn at random (BoringSSL's
// CSPRNG) from the older half of its worker's free queue, so that nobody can
// guess the port of a call that is about to start and spray it before the
// caller's first packet (RTP Bleed against a leg still waiting to latch),
// while a released port still waits at least half a queue before reuse.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace isar::ctl {

class port_pool {
public:
    // owner_map: port -> worker (65536 entries, outlives the pool);
    // nullptr = owner_of_port.
    port_pool(uint16_t min, uint16_t max, unsigned nworkers, bool unpredictable = false,
              const uint8_t* owner_map = nullptr);

    // The worker owning `port` (what classify says).
    unsigned owner_of(uint16_t port) const;
    // Any free port of the owner's share.
    std::optional<uint16_t> alloc(unsigned owner);
    // An even port of the owner whose odd neighbour is free and of the same
    // owner (TURN EVEN-PORT: the pair stays on one worker). With `take_next`
    // the odd one is allocated too (EVEN-PORT with R: reserved for a later
    // Allocate).
    std::optional<uint16_t> alloc_even(unsigned owner, bool take_next);
    void release(uint16_t port); // ignores ports that are not allocated
    bool in_use(uint16_t port) const;
    size_t free_count(unsigned owner) const { return free_[owner].size(); }
    size_t free_total() const;
    size_t capacity() const { return static_cast<size_t>(max_ - min_) + 1; }

private:
    uint16_t min_, max_;
    unsigned nworkers_;
    bool unpredictable_;
    const uint8_t* map_;
    std::vector<std::deque<uint16_t>> free_; // per owner
    std::vector<bool> used_;                 // index port - min
};

} // namespace isar::ctl
