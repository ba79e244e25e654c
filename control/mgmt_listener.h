// The management Unix socket: one JSON request per line, answered in order
// (commands::handle_line). Accept, recv and send are operations on the
// control loop's io_uring; a client is reaped once nothing of it is in flight.
// Bounds: a line is at most max_line bytes (also while an earlier request
// waits for a worker: reading pauses then), answers queued per client at most
// max_out, requests in flight at most [control] max_inflight (one per client),
// and a client silent for [control] idle_timeout_s is closed (a 1 s timer on
// the ring checks).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "control/commands.h"
#include "control/config.h"
#include "control/uring_ctx.h"

namespace isar::ctl {

class mgmt_listener : public uring_owner {
public:
    mgmt_listener(uring_ctx& ctx, const config& cfg, commands& cmds);
    ~mgmt_listener();

    // Creates the socket at cfg.socket (its directory if missing, mode
    // cfg.socket_mode); a stale socket file is replaced, a live one refused.
    int open(std::string& err);
    // Posts the first accept.
    void start();
    // True when a live isard answers on `path` (checked before EAL starts, so
    // that a second instance is refused before it touches any port).
    static bool socket_in_use(const std::string& path);
    // Answers still on their way (drain waits for them before stopping, but
    // never past the drain timeout: a client that does not read cannot hold it).
    bool sending() const;
    size_t inflight() const { return inflight_; }

    void on_cqe(uint8_t op, uint64_t id, int res) override;

    static constexpr size_t max_line = 64 * 1024;
    static constexpr size_t max_out = 4 * 1024 * 1024;

private:
    struct client {
        uint64_t id = 0;
        int fd = -1;
        std::string in, out, sending;
        bool recv_posted = false, send_posted = false, closing = false, busy = false;
        bool processing = false; // inside process_lines(): no re-entry
        uint64_t last_ns = 0;    // last byte received or sent (idle timeout)
        std::string who;         // "uid U gid G pid P" (SO_PEERCRED), for the audit log
        char buf[4096];
    };
    enum op : uint8_t { op_accept, op_recv, op_send, op_tick, op_count };

    static uint64_t now_ns();
    void post_tick();
    void on_tick();
    void start_request(client& c, std::string& line);

    void post_accept();
    void post_recv(client& c);
    void post_send(client& c);
    void on_accept(int res);
    void on_recv(client& c, int res);
    void on_send(client& c, int res);
    void process_lines(client& c);
    void reply(uint64_t id, const nlohmann::json& j);
    void close_client(client& c);
    void reap(client& c);

    const config& cfg_;
    commands& cmds_;
    int listen_fd_ = -1;
    uint64_t next_client_ = 1;
    size_t inflight_ = 0; // requests handed to commands and not answered yet (all clients)
    std::map<uint64_t, std::unique_ptr<client>> clients_;
};

} // namespace isar::ctl
