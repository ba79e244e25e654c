// Isar as a TURN server (RFC 8656) on the control lcore: the slow path.
//
// Workers hand over every STUN/TURN request sent to a TURN listener port
// (through their policed TURN ring); this answers Binding, Allocate, Refresh,
// CreatePermission and ChannelBind with coturn's use-auth-secret (TURN REST
// API) authentication, and keeps each allocation's dataplane state
// (dp::turn_alloc) up to date with commands to its owning worker, which
// relays ChannelData, Send and Data indications itself. Like sessions,
// nothing blocks: answers that depend on the dataplane are sent when the
// worker acknowledged the change.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "control/config.h"
#include "control/stun_frame.h"
#include "dataplane/dataplane.h"
#include "dataplane/turn_alloc.h"
#include "turn/auth.h"
#include "turn/families.h"
#include "turn/peer_policy.h"

namespace isar::ctl {

class session_manager;
class stream_hub;
struct turn_reply_to;
struct stream_event;

// Shared secrets of the TURN REST API, wiped when freed.
struct turn_secrets {
    std::vector<std::string> list;
    ~turn_secrets();
};
// Reads one secret per line (blank lines and '#' comments skipped). Refused
// when others may read or write the file, or its group may write it (0600,
// 0400 and 0640 are fine). Returns false with `err`.
bool load_turn_secrets(const std::string& path, turn_secrets& out, std::string& err);

// Peers of either family (turn::transport_addr); a permission is for an
// address, so its port is 0.
struct turn_permission {
    turn::transport_addr ip;
    uint64_t expiry_tsc = 0;
};
struct turn_binding {
    uint16_t number = 0;
    turn::transport_addr peer;
    uint64_t expiry_tsc = 0; // bound until then; the pair stays reserved 5 min longer
};

struct turn_allocation {
    uint32_t id = 0;
    dp::turn_alloc* da = nullptr; // owned; freed after the worker acked its delete
    stun_origin origin;           // client 5-tuple and the way back
    std::string username;
    std::string user;             // quota key: REST USER part, or the whole username
    uint8_t key[turn::long_term_key_len] = {}; // wiped on destruction
    uint16_t relay_port = 0;
    uint16_t relay_laddr = dp::no_laddr;  // the relayed address's slot (its port pool)
    uint8_t family = 4;  // of the relayed address (RFC 8656 REQUESTED-ADDRESS-FAMILY)
    uint8_t family2 = 0; // dual allocation: the second relayed address's family; 0 = none
    uint16_t relay2_laddr = dp::no_laddr; // dual allocation: the IPv6 relayed address
    uint16_t relay2_port = 0;
    uint64_t created_tsc = 0;
    uint64_t expiry_tsc = 0;
    bool installed = false;
    bool deleting = false;
    std::vector<turn_permission> perms;
    std::vector<turn_binding> chans;
    // The Allocate success, kept for retransmissions (same transaction id).
    uint8_t alloc_txid[turn::txid_len] = {};
    std::vector<uint8_t> alloc_response;

    ~turn_allocation();
};

class turn_manager {
public:
    turn_manager(dp::dataplane& dp, const config& cfg, session_manager& sm);
    ~turn_manager();
    turn_manager(const turn_manager&) = delete;
    turn_manager& operator=(const turn_manager&) = delete;

    // Secrets, peer policy, nonce key. 0, or -errno with `err`.
    int init(std::string& err);
    bool enabled() const { return cfg_.turn.enabled(); }

    // TURN over TCP/TLS: the stream threads' mailbox (before init; nullptr =
    // no stream listeners).
    void set_hub(stream_hub* hub) { out_.hub = hub; }
    // Handles at most `budget` requests from the workers' TURN rings, then
    // what the stream threads posted.
    unsigned poll(unsigned budget = 256);
    // One request (also from tests).
    void handle(rte_mbuf* m);
    // One event of a stream thread: a request of a TCP/TLS client, or its
    // connection closed (which ends its allocation).
    void handle(stream_event& e);
    // Acknowledgement of a TURN command (session_manager::poll routes them).
    void on_ack(dp::flow_cmd* c);
    // About once a second: expiry of allocations and reservations.
    void tick(uint64_t now_tsc);

    using done_fn = std::function<void(bool found)>;
    // isarctl turn delete: ends the allocation (done when the worker acked).
    bool remove(uint32_t id, done_fn done);
    const std::map<uint32_t, std::unique_ptr<turn_allocation>>& allocations() const
    {
        return allocs_;
    }
    const turn_allocation* find(uint32_t id) const;
    double seconds_left(const turn_allocation& a, uint64_t now_tsc) const;
    // A relayed address as the slot has it ("198.18.0.1:50000",
    // "[2001:2::1]:50000"); `second`: a dual allocation's IPv6 one.
    std::string relayed_text(const turn_allocation& a, bool second) const;

#define ISAR_FOREACH_TURN_AUTH_FAIL(_)                                                             \
    _(challenged, "no MESSAGE-INTEGRITY: answered 401 with REALM and NONCE")                       \
    _(missing_attribute, "MESSAGE-INTEGRITY without USERNAME, REALM or NONCE (400)")               \
    _(stale_nonce, "NONCE older than turn.nonce_lifetime_s (438)")                                 \
    _(bad_nonce, "NONCE not issued by this server for this client (438)")                          \
    _(wrong_realm, "REALM is not turn.realm (401)")                                                \
    _(bad_username, "USERNAME has no expiry timestamp (401)")                                      \
    _(expired, "REST credential past its expiry timestamp (401)")                                  \
    _(bad_integrity, "MESSAGE-INTEGRITY does not verify with any secret (401)")                    \
    _(wrong_credentials, "request for an allocation with another username (441)")
    enum class auth_fail : uint8_t {
#define ISAR_TURN_AUTH_ENUM(n, t) n,
        ISAR_FOREACH_TURN_AUTH_FAIL(ISAR_TURN_AUTH_ENUM)
#undef ISAR_TURN_AUTH_ENUM
                count
    };
    static const char* auth_fail_name(unsigned i);

    struct counters {
        uint64_t requests = 0, bad_requests = 0, binding = 0, allocate = 0, refresh = 0;
        uint64_t create_permission = 0, channel_bind = 0, ignored = 0;
        uint64_t allocations_created = 0, allocations_ended = 0, allocations_failed = 0;
        uint64_t permissions_created = 0, channels_bound = 0, peer_denied = 0;
        uint64_t quota_rejected = 0, rate_rejected = 0, capacity_rejected = 0;
        uint64_t responses = 0, errors_sent = 0, tx_failed = 0;
        uint64_t auth_failures[static_cast<unsigned>(auth_fail::count)] = {};
    };
    const counters& stats() const { return stats_; }
    size_t permission_count() const;
    size_t channel_count() const;

private:
    struct request;
    struct pending_op {
        std::unique_ptr<dp::flow_cmd> cmd;
        std::unique_ptr<dp::turn_peer_table> peers;
        uint32_t alloc_id = 0;
        std::function<void(int status)> done;
    };

    // turn_requests.cc: one function per method, and authentication.
    void on_request(request& r);
    void on_binding(request& r);
    void on_allocate(request& r);
    void on_refresh(request& r, turn_allocation& a);
    void on_create_permission(request& r, turn_allocation& a);
    void on_channel_bind(request& r, turn_allocation& a);
    bool authenticate(request& r, turn_allocation* a);
    bool allocate_checks(request& r, bool& reserve, bool& even,
                         std::optional<uint64_t>& token, turn::family_choice& fam);
    // Whether clients of `iface` can get a relayed address of `family` (4 or 6).
    bool can_relay(unsigned iface, uint8_t family) const;
    // The slot a relayed address of `family` is taken from: the listener's
    // own slot when it is of that family, else the interface's first one of
    // it (no_laddr: none).
    uint16_t relay_slot(const stun_origin& o, uint8_t family) const;
    bool is_own6(const turn::transport_addr& p) const;
    bool peer_permitted(const turn::transport_addr& p) const;
    bool peer_acceptable(request& r, const turn_allocation& a, const turn::transport_addr& p);
    void push_and_answer(request& r, turn_allocation& a);
    std::optional<uint16_t> relay_port(unsigned laddr, unsigned owner, bool even, bool reserve,
                                       std::optional<uint64_t> token);
    // The dual allocation's second (IPv6) relayed address: slot and port in
    // `a`, or false (the answer then carries ADDRESS-ERROR-CODE 508).
    bool second_relay(turn_allocation& a, unsigned owner);
    uint16_t alloc_slot(const stun_origin& o, std::optional<uint64_t> token,
                        uint8_t& family) const;
    bool allocate_rate_ok(request& r);
    void fill_dataplane(turn_allocation& a, unsigned owner);
    void release_ports(const turn_allocation& a);
    void allocated(const turn_reply_to& reply, uint32_t id, uint32_t life, uint64_t new_token,
                   uint16_t v6_error, int status);
    void respond_error(request& r, uint16_t code);
    void respond(request& r, turn::builder& b);
    uint32_t lifetime_of(const request& r) const;
    void log_created(const turn_allocation& a) const;

    // turn_manager.cc: allocations and the dataplane.
    turn_allocation* by_client(const stun_origin& o);
    int submit(std::unique_ptr<dp::flow_cmd> c, std::unique_ptr<dp::turn_peer_table> peers,
               uint32_t id, std::function<void(int)> done);
    void install(std::unique_ptr<turn_allocation> a, std::function<void(int)> done);
    void push_peers(turn_allocation& a, std::function<void(int)> done);
    // Ends `a`; a TCP/TLS client's connection is closed too unless it is
    // already gone (`conn_gone`).
    void end(turn_allocation& a, const char* why, done_fn done = nullptr, bool conn_gone = false);
    void handle_request(request& r);
    void release_port(unsigned laddr, uint16_t port);
    std::string client_key(const stun_origin& o) const;

    dp::dataplane& dp_;
    stun_out out_{dp_};
    const config& cfg_;
    session_manager& sm_;
    turn_secrets secrets_;
    turn::peer_policy policy_;
    uint8_t nonce_key_[turn::nonce_key_len] = {};
    std::map<uint32_t, std::unique_ptr<turn_allocation>> allocs_;
    std::unordered_map<std::string, uint32_t> by_client_; // client key -> id
    std::unordered_map<std::string, uint32_t> per_user_;
    std::unordered_map<uint64_t, pending_op> pending_;
    struct reservation {
        unsigned laddr = 0; // the slot whose pool the port is of
        uint16_t port = 0;
        uint64_t expiry_tsc = 0;
    };
    std::unordered_map<uint64_t, reservation> reservations_; // token -> reserved odd port
    struct rate_window {
        int64_t second = 0;
        uint32_t count = 0;
    };
    // Client IP (4 or 16 bytes) -> Allocates this second.
    std::unordered_map<std::string, rate_window> alloc_rate_;
    uint32_t next_id_ = 1;
    uint64_t seq_ = 1ull << 62; // apart from session_manager's sequence numbers
    counters stats_;
};

} // namespace isar::ctl
