// The management protocol: one action function per request, shared by the
// socket server and the tests. Requests and responses are JSON objects, one
// per line; see README.md "Control protocol".
#pragma once

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "control/config.h"
#include "control/metrics.h"
#include "control/request_guard.h"
#include "control/neighbor_manager.h"
#include "control/session_manager.h"
#include "control/turn_manager.h"

namespace isar::ctl {

class stream_server;

class commands {
public:
    using json = nlohmann::json;
    using reply_fn = std::function<void(const json&)>;

    commands(dp::dataplane& dp, session_manager& sm, neighbor_manager& nm, const config& cfg);

    // Runs one request line; `reply` is called exactly once, now or when the
    // owning worker has acknowledged the change. Lines nested deeper than
    // max_depth are refused before parsing; SRTP key strings of the parsed
    // request are wiped before it is freed. `who` (the peer's credentials)
    // goes to the log line of every command that changes state.
    void handle_line(std::string_view line, reply_fn reply, std::string_view who = {});
    void handle(const json& req, reply_fn reply, std::string_view who = {});
    static constexpr unsigned max_depth = max_json_depth;

    json stats_json() const;
    json turn_stats_json() const;
    json turn_drops_json() const;
    json ports_json() const;
    json neighbors_json() const;
    std::string local_string(const dp::leg& l) const;
    // TURN (optional: isard sets it when [turn] is on).
    void set_turn(turn_manager* t) { turn_ = t; }
    turn_manager* turn() const { return turn_; }
    // TURN over TCP/TLS (optional: isard sets it when listen_tcp/listen_tls).
    void set_streams(const stream_server* s) { streams_ = s; }
    const stream_server* streams() const { return streams_; }
    json streams_json() const; // stream_server.cc
    const config& cfg() const { return cfg_; }
    json session_json(const session_info& s) const;

    static json error_json(const std::string& code, const std::string& message);

    struct counters {
        uint64_t requests = 0, errors = 0;
    };
    const counters& stats() const { return stats_; }
    const std::map<std::string, uint64_t>& per_command() const { return per_cmd_; }
    // Per command: count, errors, latency (request to answer).
    const std::map<std::string, request_histogram>& histograms() const { return hist_; }

    // ---- daemon state (status, drain) --------------------------------------
    // Draining: session.create is refused with "draining"; everything else
    // works. The event loop exits when the sessions are gone or the drain
    // timeout passed. Returns false when already draining.
    bool begin_drain();
    bool draining() const { return draining_; }
    uint64_t drain_start_tsc() const { return drain_start_tsc_; }
    uint64_t start_tsc() const { return start_tsc_; }
    dp::dataplane& dataplane() { return dp_; }
    // Called by begin_drain() (the event loop logs and notifies systemd).
    std::function<void()> on_drain;

private:
    void cmd_ping(const json& req, reply_fn& reply);
    void cmd_session_create(const json& req, reply_fn& reply);
    void cmd_session_get(const json& req, reply_fn& reply);
    void cmd_session_list(const json& req, reply_fn& reply);
    void cmd_session_delete(const json& req, reply_fn& reply);
    void cmd_leg_update(const json& req, reply_fn& reply);
    void cmd_stats(const json& req, reply_fn& reply);
    void cmd_status(const json& req, reply_fn& reply);
    void cmd_drain(const json& req, reply_fn& reply);
    void cmd_debug_wedge(const json& req, reply_fn& reply);
    // turn_commands.cc
    void cmd_turn_list(const json& req, reply_fn& reply);
    void cmd_turn_get(const json& req, reply_fn& reply);
    void cmd_turn_delete(const json& req, reply_fn& reply);
    json turn_alloc_json(const turn_allocation& a, bool detail) const;

    dp::dataplane& dp_;
    session_manager& sm_;
    neighbor_manager& nm_;
    const config& cfg_;
    turn_manager* turn_ = nullptr;
    const stream_server* streams_ = nullptr;
    counters stats_;
    std::map<std::string, uint64_t> per_cmd_;
    std::map<std::string, request_histogram> hist_;
    bool draining_ = false;
    uint64_t drain_start_tsc_ = 0;
    uint64_t start_tsc_ = 0;
};

} // namespace isar::ctl
