// The control lcore's single io_uring event loop: signals (signalfd), a short
// wait timeout that paces polling the dataplane's completion and exception
// rings and the timers, the systemd watchdog and status, and drain. The
// listeners (mgmt_listener.h, metrics_listener.h) own their sockets and
// io_uring operations; the loop hands each completion to the owner of its
// kind (uring_ctx.h).
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "control/commands.h"
#include "control/config.h"
#include "control/metrics.h"
#include "control/metrics_listener.h"
#include "control/mgmt_listener.h"
#include "control/neighbor_manager.h"
#include "control/session_manager.h"
#include "control/uring_ctx.h"

namespace isar::ctl {

// SIGINT, SIGTERM and SIGHUP: blocked in every thread (the mask is
// inherited, so before EAL or anyone starts one) and read by the control
// loop's signalfd. Returns the set it blocked.
sigset_t block_control_signals() noexcept;

class event_loop {
public:
    event_loop(const config& cfg, commands& cmds, session_manager& sm, neighbor_manager& nm);
    ~event_loop();

    // Creates the socket (mode from the config) and the ring; blocks SIGINT,
    // SIGTERM and SIGHUP for a signalfd (block them before EAL starts its
    // threads).
    int open(std::string& err);
    // Runs until SIGINT/SIGTERM or stop(). `on_ready` runs once when serving.
    int run(const std::function<void()>& on_ready);
    void stop() { ctx_.stop(); }
    // SIGHUP: what to reload (the TURN TLS certificate); it logs its outcome.
    void on_reload(std::function<void()> f) { on_reload_ = std::move(f); }
    // True when a live isard answers on `path` (checked before EAL starts, so
    // that a second instance is refused before it touches any port).
    static bool socket_in_use(const std::string& path)
    {
        return mgmt_listener::socket_in_use(path);
    }

    static constexpr unsigned status_interval_s = 5; // systemd STATUS= line

    // The /metrics port actually bound (0 when off or bind failed).
    uint16_t metrics_port() const { return metrics_.port(); }

private:
    enum op : uint8_t { op_signal = uring_ctx::kind_loop };

    void post_signal();
    void on_cqe(io_uring_cqe* cqe);
    void start_timers(uint64_t now_tsc);
    void periodic(uint64_t now_tsc);
    void watchdog(uint64_t now_tsc);
    void status_line(uint64_t now_tsc);
    void check_drain(uint64_t now_tsc);
    void on_signal();

    const config& cfg_;
    commands& cmds_;
    session_manager& sm_;
    neighbor_manager& nm_;
    uring_ctx ctx_;
    int signal_fd_ = -1;
    uint64_t last_tick_ = 0, last_expiry_ = 0;
    loop_info li_; // shown by /metrics
    // watchdog and status
    uint64_t wd_interval_tsc_ = 0, last_wd_tsc_ = 0, last_hb_check_ = 0;
    std::vector<uint64_t> last_hb_, hb_moved_tsc_;
    bool wd_withheld_ = false;
    uint64_t last_status_tsc_ = 0, last_status_rx_ = 0;
    unsigned signals_ = 0;
    std::function<void()> on_reload_;
    struct signalfd_siginfo_buf {
        unsigned char b[128];
    } sig_{};
    // The listeners come last: they refer to ctx_, li_ and hb_moved_tsc_.
    mgmt_listener mgmt_;
    metrics_listener metrics_;
};

} // namespace isar::ctl
