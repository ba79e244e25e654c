#include "control/event_loop.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <rte_cycles.h>
#include <systemd/sd-daemon.h>

#include "control/log.h"
#include "crypto/srtp_context.h"
#include "dataplane/dataplane.h"

namespace isar::ctl {

event_loop::event_loop(const config& cfg, commands& cmds, session_manager& sm,
                       neighbor_manager& nm)
    : cfg_(cfg), cmds_(cmds), sm_(sm), nm_(nm), mgmt_(ctx_, cfg, cmds),
      metrics_(ctx_, cfg, cmds, sm, nm, hb_moved_tsc_, li_)
{
}

event_loop::~event_loop()
{
    // The ring goes first: no operation may still refer to a listener's
    // buffers when the listeners (members) free them.
    ctx_.exit();
    if (signal_fd_ >= 0)
        ::close(signal_fd_);
}

sigset_t block_control_signals() noexcept
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    return set;
}

int event_loop::open(std::string& err)
{
    const sigset_t set = block_control_signals();
    signal_fd_ = signalfd(-1, &set, SFD_CLOEXEC);
    if (signal_fd_ < 0) {
        err = std::string("signalfd: ") + strerror(errno);
        return -errno;
    }
    int rc = ctx_.init(256);
    if (rc < 0) {
        err = std::string("io_uring_queue_init: ") + strerror(-rc) +
              " (io_uring needs Linux >= 5.6 and must not be disabled by "
              "kernel.io_uring_disabled or a seccomp filter)";
        return rc;
    }
    rc = mgmt_.open(err);
    if (rc != 0)
        return rc;
    metrics_.open();
    return 0;
}

void event_loop::on_signal()
{
    const auto* si = reinterpret_cast<const signalfd_siginfo*>(&sig_);
    if (si->ssi_signo == SIGHUP) {
        if (on_reload_)
            on_reload_();
        else
            ISAR_LOG(NOTICE, "SIGHUP received: nothing to reload");
        return;
    }
    const char* name = si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
    signals_++;
    if (signals_ >= 2 || cfg_.drain_timeout_s == 0) {
        ISAR_LOG(NOTICE, "{} received, stopping now", name);
        ctx_.stop();
        return;
    }
    ISAR_LOG(NOTICE, "{} received: draining (a second one stops at once)", name);
    cmds_.begin_drain();
}

void event_loop::check_drain(uint64_t now)
{
    if (!cmds_.draining())
        return;
    // Answers still on their way (e.g. to the delete of the last session)
    // go out first.
    if (mgmt_.sending())
        return;
    if (sm_.sessions().empty() && !sm_.pending()) {
        ISAR_LOG(NOTICE, "drained: no sessions left, stopping");
        ctx_.stop();
    } else if (now - cmds_.drain_start_tsc() >= cfg_.drain_timeout_s * rte_get_tsc_hz()) {
        ISAR_LOG(WARNING, "drain timeout ({} s) with {} session(s) left, stopping",
                 cfg_.drain_timeout_s, sm_.sessions().size());
        ctx_.stop();
    }
}

void event_loop::start_timers(uint64_t now)
{
    dp::dataplane& dp = cmds_.dataplane();
    last_hb_.assign(dp.nworkers(), 0);
    hb_moved_tsc_.assign(dp.nworkers(), now);
    last_status_tsc_ = last_wd_tsc_ = last_hb_check_ = now;
    uint64_t wd_usec = 0;
    // sd_watchdog_enabled() checks WATCHDOG_PID against our pid.
    if (sd_watchdog_enabled(0, &wd_usec) > 0 && wd_usec > 0) {
        wd_interval_tsc_ = wd_usec / 2 * rte_get_tsc_hz() / 1000000;
        ISAR_LOG(INFO, "systemd watchdog: {} ms, pinging every {} ms while workers progress",
                 wd_usec / 1000, wd_usec / 2000);
    }
}

// WATCHDOG=1 only while every worker shows progress: a stuck worker stops
// the pings and systemd restarts the service.
void event_loop::watchdog(uint64_t now)
{
    dp::dataplane& dp = cmds_.dataplane();
    const uint64_t hz = rte_get_tsc_hz();
    if (now - last_hb_check_ >= hz / 10) {
        last_hb_check_ = now;
        for (unsigned w = 0; w < dp.nworkers(); w++) {
            const uint64_t hb = dp.wk(w).heartbeat.load(std::memory_order_relaxed);
            if (hb != last_hb_[w]) {
                last_hb_[w] = hb;
                hb_moved_tsc_[w] = now;
            }
        }
    }
    if (wd_interval_tsc_ == 0 || now - last_wd_tsc_ < wd_interval_tsc_)
        return;
    last_wd_tsc_ = now;
    for (unsigned w = 0; w < dp.nworkers(); w++) {
        if (now - hb_moved_tsc_[w] > wd_interval_tsc_) {
            if (!wd_withheld_)
                ISAR_LOG(ERR, "worker {} made no progress for {:.1f} s: withholding the "
                              "watchdog ping",
                         w, static_cast<double>(now - hb_moved_tsc_[w]) / hz);
            wd_withheld_ = true;
            return;
        }
    }
    if (wd_withheld_)
        ISAR_LOG(NOTICE, "every worker makes progress again: watchdog pings resume");
    wd_withheld_ = false;
    sd_notify(0, "WATCHDOG=1");
    li_.watchdog_pings++;
}

void event_loop::status_line(uint64_t now)
{
    dp::dataplane& dp = cmds_.dataplane();
    const uint64_t hz = rte_get_tsc_hz();
    if (now - last_status_tsc_ < status_interval_s * hz)
        return;
    uint64_t rx = 0;
    for (unsigned w = 0; w < dp.nworkers(); w++)
        rx += dp::read(dp.wk(w).stats.rx_pkts);
    const double dt = static_cast<double>(now - last_status_tsc_) / hz;
    const double pps = dt > 0 ? static_cast<double>(rx - last_status_rx_) / dt : 0.0;
    last_status_tsc_ = now;
    last_status_rx_ = rx;
    sd_notifyf(0, "STATUS=%s: %zu sessions, %zu legs, %.0f pps, %u workers",
               cmds_.draining() ? "draining" : "running", sm_.sessions().size(), sm_.leg_count(),
               pps, dp.nworkers());
}

void event_loop::post_signal()
{
    io_uring_sqe* s = ctx_.sqe();
    io_uring_prep_read(s, signal_fd_, &sig_, sizeof(sig_), 0);
    io_uring_sqe_set_data64(s, uring_ctx::ud(0, op_signal));
}

// The loop's own kind is the signalfd read; every other one belongs to the
// listener that posted it (completions no one owns, such as liburing's
// internal timeouts, are dropped).
void event_loop::on_cqe(io_uring_cqe* cqe)
{
    const uint64_t data = io_uring_cqe_get_data64(cqe);
    const int res = cqe->res;
    if ((data & 0xff) != op_signal) {
        ctx_.dispatch(data, res);
        return;
    }
    if (res > 0)
        on_signal();
    if (!ctx_.stopping())
        post_signal();
}

void event_loop::periodic(uint64_t now)
{
    const uint64_t hz = rte_get_tsc_hz();
    if (now - last_tick_ >= hz / 10) {
        last_tick_ = now;
        nm_.tick(now);
    }
    if (now - last_expiry_ >= hz) {
        last_expiry_ = now;
        // The SRTP contexts' coarse clock: idle SSRC slots may be reused.
        crypto::set_clock_seconds(static_cast<uint32_t>(now / hz));
        if (turn_manager* t = cmds_.turn())
            t->tick(now);
        unsigned n = sm_.expire_idle(now);
        if (n > 0)
            ISAR_LOG(INFO, "{} idle session(s) expired", n);
    }
    watchdog(now);
    status_line(now);
    check_drain(now);
}

int event_loop::run(const std::function<void()>& on_ready)
{
    mgmt_.start();
    post_signal();
    metrics_.start();
    io_uring* ring = ctx_.ring();
    io_uring_submit(ring);
    start_timers(rte_rdtsc());
    cmds_.on_drain = [this] {
        ISAR_LOG(NOTICE, "draining: no new sessions; {} session(s) left, stopping when they are "
                         "gone or after {} s",
                 sm_.sessions().size(), cfg_.drain_timeout_s);
        sd_notifyf(0, "STOPPING=1\nSTATUS=draining: %zu sessions", sm_.sessions().size());
    };
    if (on_ready)
        on_ready();
    if (metrics_.listening())
        ISAR_LOG(NOTICE, "metrics: http://{}/metrics", cfg_.metrics_listen);
    last_tick_ = last_expiry_ = rte_rdtsc();
    while (!ctx_.stopping()) {
        // 1 ms pacing: the rings to and from the workers are polled here.
        __kernel_timespec ts{0, 1000000};
        io_uring_cqe* cqe = nullptr;
        int rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nullptr);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
            ISAR_LOG(ERR, "io_uring wait failed: {}", strerror(-rc));
            return rc;
        }
        unsigned head, n = 0;
        io_uring_for_each_cqe(ring, head, cqe)
        {
            on_cqe(cqe);
            n++;
        }
        io_uring_cq_advance(ring, n);
        sm_.poll();
        nm_.poll(); // ARP, ICMP and held packets first: never behind TURN requests
        if (turn_manager* t = cmds_.turn())
            t->poll(); // a bounded batch per turn of the loop (policed by the workers too)
        periodic(rte_rdtsc());
    }
    return 0;
}

} // namespace isar::ctl
