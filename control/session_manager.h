// Sessions and legs on the control side: validation, port allocation,
// commands to the owning worker, acknowledgements, idle expiry.
//
// Nothing here blocks: an operation queues one command to the session's
// owning worker and its `done` callback runs from poll() once the worker has
// acknowledged it. A request is validated whole before anything changes, so a
// failure leaves no half-made session and no leaked port.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "control/addr.h"
#include "control/config.h"
#include "control/port_pool.h"
#include "crypto/srtp_context.h"
#include "crypto/suite.h"
#include "dataplane/dataplane.h"

namespace isar::ctl {

struct error {
    std::string code; // empty = no error
    std::string message;
    explicit operator bool() const { return !code.empty(); }
};

struct leg_request {
    std::string name;
    std::optional<endpoint> remote; // either family
    // 4 or 6: the family of the leg's local address (and remote); 0 = the
    // remote's, or 4 without one.
    uint8_t family = 0;
    std::optional<std::vector<std::string>> targets; // default: every other leg
    unsigned iface = 0;
    // SRTP keys (suite none = plain RTP): how the remote protects what it
    // sends (in) and how Isar protects what it sends the remote (out).
    crypto::key_material in, out;
    uint32_t clock_rate = 0; // RTP clock for jitter (0: by payload type)
    uint32_t max_pps = 0;    // packet-rate limit (0: none)
    // A leg without a remote latches only from this IPv4 network (host
    // order; len 0 = anywhere). IPv4 legs only: dp::leg has no room for an
    // IPv6 network (commands refuses one).
    prefix latch_from{};
};

// leg.update: every member is optional; an engaged optional is a change.
struct leg_update {
    std::optional<std::optional<endpoint>> remote; // inner nullopt: clear, latch again
    std::optional<crypto::key_material> in, out;   // suite none: plain
};

// One leg's SRTP on the control side. The contexts are owned here and
// referenced by the worker's dp::leg; they are freed only when the worker
// has acknowledged that it no longer uses them. Keys are wiped on destruction.
struct leg_crypto {
    crypto::key_material in_key, out_key;
    std::unique_ptr<crypto::srtp_context> in_ctx, out_ctx;
};

struct create_request {
    std::string id;
    std::vector<leg_request> legs;
    bool metrics = false; // export per-leg series in /metrics
};

// Burst a leg with max_pps may send at once: max(16, max_pps / 10) packets.
uint32_t rate_limit_burst(uint32_t max_pps);

enum class session_state { installing, active, deleting };

struct session_info {
    std::string id;
    session_state state = session_state::installing;
    dp::session* ds = nullptr; // owned; freed after the worker acks its delete
    std::vector<std::string> leg_names;
    std::vector<bool> remote_configured;
    std::vector<leg_crypto> crypto; // per leg; must outlive `ds`
    uint64_t created_tsc = 0;
    bool metrics = false;           // per-leg series in /metrics
    std::vector<uint32_t> max_pps;  // per leg, 0 = none
};

class session_manager {
public:
    using done_fn = std::function<void(const error&)>;

    session_manager(dp::dataplane& dp, const config& cfg);
    ~session_manager();

    // Validates `req` whole, allocates ports, queues the install. `done` runs
    // when the worker has installed it (or failed to).
    error create(const create_request& req, done_fn done);
    error remove(const std::string& id, done_fn done);
    // Sets (or, with nullopt, clears so that the leg latches again) a remote.
    error set_remote(const std::string& id, const std::string& leg,
                     const std::optional<endpoint>& remote, done_fn done);
    // Changes a live leg: remote and/or SRTP keys (re-key). New contexts are
    // built here; the worker swaps them in and hands the old ones back.
    error update_leg(const std::string& id, const std::string& leg, leg_update upd,
                     done_fn done);

    const session_info* find(const std::string& id) const;
    const std::map<std::string, std::unique_ptr<session_info>>& sessions() const
    {
        return sessions_;
    }

    // Handles acknowledgements; call from the event loop and from tests.
    unsigned poll();
    // Deletes sessions idle for longer than the configured timeout.
    unsigned expire_idle(uint64_t now_tsc);
    // Seconds since the session last saw a packet (or was created).
    double idle_seconds(const session_info& s, uint64_t now_tsc) const;
    bool pending() const { return !pending_.empty(); }

    struct counters {
        uint64_t created = 0, deleted = 0, expired = 0, failed = 0;
    };
    const counters& stats() const { return stats_; }
    size_t leg_count() const { return legs_; }
    // Relay port pools: one per address slot (dp::dataplane::laddr(i)), each
    // the whole [relay] port_min..port_max. With one address per interface
    // (the old configs) slot i is interface i.
    unsigned nslots() const { return static_cast<unsigned>(pools_.size()); }
    const port_pool& pool(unsigned laddr) const { return *pools_[laddr]; }
    // The relay port pool that TURN allocations on slot `laddr` take their
    // relayed ports from.
    port_pool& relay_pool(unsigned laddr) { return *pools_[laddr]; }
    // The address a slot is reported as: its interface's public_address of
    // the slot's family (1:1 NAT) when configured, else the slot's own
    // address. For a leg's `local` and TURN's XOR-RELAYED-ADDRESS.
    ip_addr public_of(unsigned laddr) const;
    // The slot's own address.
    ip_addr address_of(unsigned laddr) const;
    // The first slot of `family` on interface `iface` with the most free
    // ports for worker `owner` (nullopt: the interface has no such address).
    std::optional<unsigned> slot_for(unsigned iface, uint8_t family, unsigned owner) const;
    // Acknowledgements of commands this manager did not send (TURN's).
    std::function<void(dp::flow_cmd*)> on_other_ack;

private:
    struct pending_op {
        std::unique_ptr<dp::flow_cmd> cmd;
        session_info* s = nullptr;
        done_fn done;
        // set_crypto: what becomes current once the worker acknowledged
        std::unique_ptr<crypto::srtp_context> new_in, new_out;
        crypto::key_material new_in_key, new_out_key;
        std::optional<bool> remote_configured;
    };
    error send(std::unique_ptr<dp::flow_cmd> c, session_info* s, done_fn done);
    // create()'s parts.
    error check_leg_names(const create_request& req, std::map<std::string, unsigned>& index) const;
    error check_leg_families(const create_request& req,
                             std::vector<std::pair<unsigned, uint8_t>>& want) const;
    void fill_leg(dp::session& ds, unsigned i, const leg_request& r, unsigned slot,
                  uint8_t family, unsigned owner, const std::vector<uint8_t>& targets,
                  const leg_crypto& c, session_info& info);
    void release(dp::session* ds);
    // The least loaded worker whose port shares can take a port for every
    // leg (iface, family) of want; fills `slots` with each leg's slot.
    std::optional<unsigned> pick_owner(const std::vector<std::pair<unsigned, uint8_t>>& want,
                                       std::vector<unsigned>& slots) const;
    // Assigns slots for `want` on worker w (the one with most free ports of
    // the interface's slots of that family); false when some leg finds none.
    bool assign_slots(unsigned w, const std::vector<std::pair<unsigned, uint8_t>>& want,
                      std::vector<unsigned>& slots) const;
    // A remote of the leg's family (or none), else the error.
    static error family_check(const dp::leg& l, const std::optional<endpoint>& remote);
    // Starts resolving the next hop of a configured remote.
    void resolve(unsigned iface, const endpoint& remote);
    // When a leg that has (or gets) no remote may latch at the latest
    // ([relay] latch_window_s from now; 0 = no limit).
    uint64_t latch_deadline() const;
    // Keys of every leg of `s` once the commands queued for it so far are
    // applied (the worker applies them in order).
    void queued_keys(const session_info& s, std::vector<const crypto::key_material*>& in,
                     std::vector<const crypto::key_material*>& out) const;

    dp::dataplane& dp_;
    const config& cfg_;
    std::vector<std::unique_ptr<port_pool>> pools_; // per address slot
    std::map<std::string, std::unique_ptr<session_info>> sessions_;
    std::vector<std::unique_ptr<session_info>> dying_; // removed, waiting for the del ack
    std::unordered_map<uint64_t, pending_op> pending_;
    std::vector<unsigned> sessions_per_worker_;
    uint64_t seq_ = 0;
    size_t legs_ = 0;
    counters stats_;
};

// Conversions at the dataplane edge.
dp::ip6_addr to_dp6(const ip6_bytes& b);
ip6_bytes from_dp6(const dp::ip6_addr& a);
// A remote endpoint as the dataplane keeps it (IPv6: the address goes in
// remote6 as well, see dp::pack_ep6).
dp::packed_ep pack_remote(const endpoint& e);
// A leg's remote (none: nullopt); an IPv6 one with its remote6.
std::optional<endpoint> leg_remote(const dp::leg& l);

// Bit i set when leg i of `ds` must only verify (authenticated pass-through):
// it has an inbound context and every target's outbound keys equal it.
// in[i]/out[i]: leg i's keys (suite none = plain).
dp::leg_bits passthrough_mask(const dp::session& ds,
                              const std::vector<const crypto::key_material*>& in,
                              const std::vector<const crypto::key_material*>& out);

// Ids and leg names: 1..64 characters of [A-Za-z0-9._:@-].
bool valid_name(const std::string& s);
const char* state_name(session_state s);

} // namespace isar::ctl
