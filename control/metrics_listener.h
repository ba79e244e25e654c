// The HTTP listener for GET/HEAD /metrics (Prometheus text) and /healthz.
// One request per connection; every recv and send on the control loop's
// io_uring carries a linked timeout, and every connection has an absolute
// deadline (http_total_timeout_s from accept) that a 250 ms timer enforces,
// whatever the client sends. When all max_http_clients slots are taken, a new
// connection evicts the oldest one: slow or idle clients cannot keep /healthz out.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "control/commands.h"
#include "control/config.h"
#include "control/metrics.h"
#include "control/neighbor_manager.h"
#include "control/session_manager.h"
#include "control/uring_ctx.h"

namespace isar::ctl {

class metrics_listener : public uring_owner {
public:
    // `hb_moved_tsc` (per worker, when its heartbeat last moved) and `li`
    // belong to the loop and outlive the listener.
    metrics_listener(uring_ctx& ctx, const config& cfg, commands& cmds, session_manager& sm,
                     neighbor_manager& nm, const std::vector<uint64_t>& hb_moved_tsc,
                     loop_info& li);
    ~metrics_listener();

    // Binds cfg.metrics_listen (nothing when empty). A failure is logged, not
    // fatal: media keeps flowing without metrics.
    void open();
    // Creates the exporter (busy ratios count from here) and posts the first
    // accept when listening.
    void start();
    bool listening() const { return fd_ >= 0; }
    // The port actually bound (0 when off or bind failed).
    uint16_t port() const { return port_; }

    void on_cqe(uint8_t op, uint64_t id, int res) override;

    static constexpr unsigned max_http_clients = 64;
    static constexpr unsigned http_timeout_s = 5;        // per recv/send (io_uring linked timeout)
    static constexpr unsigned http_total_timeout_s = 10; // whole request

private:
    struct http_client {
        uint64_t id = 0;
        int fd = -1;
        std::string in, out;
        size_t sent = 0;
        bool recv_posted = false, send_posted = false, responded = false, closing = false;
        uint64_t start_tsc = 0;
        char buf[2048];
    };
    enum op : uint8_t { op_accept, op_recv, op_send, op_timeout, op_tick, op_cancel, op_count };

    void post_tick();
    void on_tick();
    // Ends a connection whatever it is doing (deadline passed, or evicted).
    void kill(http_client& c);
    size_t live() const { return http_.size() - closing_; }

    void post_accept();
    void post_recv(http_client& c);
    void post_send(http_client& c);
    void on_accept(int res);
    void on_recv(http_client& c, int res);
    void on_send(http_client& c, int res);
    void route(http_client& c, const http_request& r);
    void respond(http_client& c, int code, const std::string& type, const std::string& body,
                 bool head_only = false);
    void reap(http_client& c);
    std::string health(int& code) const;

    const config& cfg_;
    commands& cmds_;
    session_manager& sm_;
    neighbor_manager& nm_;
    const std::vector<uint64_t>& hb_moved_tsc_;
    loop_info& li_;
    int fd_ = -1;
    uint16_t port_ = 0;
    uint64_t next_http_ = 1;
    size_t closing_ = 0; // connections killed but not reaped yet
    std::map<uint64_t, std::unique_ptr<http_client>> http_;
    std::unique_ptr<metrics_exporter> exporter_;
    uint64_t serve_tsc_ = 0;
};

} // namespace isar::ctl
