// The control lcore's single io_uring event loop: the management socket
// (accept/recv/send), signals (signalfd), and a short wait timeout that paces
// polling the dataplane's completion and exception rings and the timers.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <liburing.h>

#include "control/commands.h"
#include "control/config.h"
#include "control/metrics.h"
#include "control/neighbor_manager.h"
#include "control/session_manager.h"

namespace isar::ctl {

class event_loop {
public:
    event_loop(const config& cfg, commands& cmds, session_manager& sm, neighbor_manager& nm);
    ~event_loop();

    // Creates the socket (mode from the config) and the ring; blocks SIGINT
    // and SIGTERM for a signalfd (block them before EAL starts its threads).
    int open(std::string& err);
    // Runs until SIGINT/SIGTERM or stop(). `on_ready` runs once when serving.
    int run(const std::function<void()>& on_ready);
    void stop() { stop_ = true; }
    // True when a live isard answers on `path` (checked before EAL starts, so
    // that a second instance is refused before it touches any port).
    static bool socket_in_use(const std::string& path);

    static constexpr size_t max_line = 64 * 1024;
    static constexpr size_t max_out = 4 * 1024 * 1024;
    static constexpr unsigned max_http_clients = 64;
    static constexpr unsigned http_timeout_s = 5;       // per recv/send (io_uring linked timeout)
    static constexpr unsigned http_total_timeout_s = 10; // whole request
    static constexpr unsigned status_interval_s = 5;     // systemd STATUS= line

    // The /metrics port actually bound (0 when off or bind failed).
    uint16_t metrics_port() const { return metrics_port_; }

private:
    struct client {
        uint64_t id = 0;
        int fd = -1;
        std::string in, out, sending;
        bool recv_posted = false, send_posted = false, closing = false, busy = false;
        bool processing = false; // inside process_lines(): no re-entry
        char buf[4096];
    };
    struct http_client {
        uint64_t id = 0;
        int fd = -1;
        std::string in, out;
        size_t sent = 0;
        bool recv_posted = false, send_posted = false, responded = false;
        uint64_t start_tsc = 0;
        char buf[2048];
    };
    enum op_kind : uint8_t {
        op_accept = 1,
        op_recv,
        op_send,
        op_signal,
        op_http_accept,
        op_http_recv,
        op_http_send,
        op_http_timeout,
    };

    void post_accept();
    void post_recv(client& c);
    void post_send(client& c);
    void post_signal();
    void on_cqe(io_uring_cqe* cqe);
    void process_lines(client& c);
    void reply(uint64_t id, const nlohmann::json& j);
    void close_client(client& c);
    void reap(client& c);
    void periodic(uint64_t now_tsc);
    void open_metrics();
    void post_http_accept();
    void post_http_recv(http_client& c);
    void post_http_send(http_client& c);
    void on_http_cqe(uint8_t kind, uint64_t id, int res);
    void http_respond(http_client& c, int code, const std::string& type, const std::string& body,
                      bool head_only = false);
    void http_reap(http_client& c);
    std::string health(int& code) const;
    void watchdog(uint64_t now_tsc);
    void status_line(uint64_t now_tsc);
    void check_drain(uint64_t now_tsc);
    void on_signal();
    io_uring_sqe* sqe();

    const config& cfg_;
    commands& cmds_;
    session_manager& sm_;
    neighbor_manager& nm_;
    io_uring ring_{};
    bool ring_ok_ = false;
    int listen_fd_ = -1;
    int signal_fd_ = -1;
    bool stop_ = false;
    uint64_t next_client_ = 1;
    std::map<uint64_t, std::unique_ptr<client>> clients_;
    uint64_t last_tick_ = 0, last_expiry_ = 0;
    // metrics
    int http_fd_ = -1;
    uint16_t metrics_port_ = 0;
    uint64_t next_http_ = 1;
    std::map<uint64_t, std::unique_ptr<http_client>> http_;
    std::unique_ptr<metrics_exporter> exporter_;
    loop_info li_;
    uint64_t serve_tsc_ = 0;
    // watchdog and status
    uint64_t wd_interval_tsc_ = 0, last_wd_tsc_ = 0, last_hb_check_ = 0;
    std::vector<uint64_t> last_hb_, hb_moved_tsc_;
    bool wd_withheld_ = false;
    uint64_t last_status_tsc_ = 0, last_status_rx_ = 0;
    unsigned signals_ = 0;
    struct signalfd_siginfo_buf {
        unsigned char b[128];
    } sig_{};
};

} // namespace isar::ctl
