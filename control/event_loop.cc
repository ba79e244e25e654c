#include "control/event_loop.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <rte_cycles.h>
#include <systemd/sd-daemon.h>

#include "control/log.h"
#include "dataplane/dataplane.h"

namespace isar::ctl {

namespace {
uint64_t ud(uint64_t id, uint8_t kind)
{
    return (id << 8) | kind;
}
// Linked timeouts: the kernel copies the timespec when it takes the SQE.
const __kernel_timespec http_ts{event_loop::http_timeout_s, 0};
} // namespace

event_loop::event_loop(const config& cfg, commands& cmds, session_manager& sm,
                       neighbor_manager& nm)
    : cfg_(cfg), cmds_(cmds), sm_(sm), nm_(nm)
{
}

event_loop::~event_loop()
{
    for (auto& [id, c] : clients_)
        if (c->fd >= 0)
            ::close(c->fd);
    if (ring_ok_)
        io_uring_queue_exit(&ring_);
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        ::unlink(cfg_.socket.c_str());
    }
    if (signal_fd_ >= 0)
        ::close(signal_fd_);
    for (auto& [id, c] : http_)
        if (c->fd >= 0)
            ::close(c->fd);
    if (http_fd_ >= 0)
        ::close(http_fd_);
}

bool event_loop::socket_in_use(const std::string& path)
{
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
    bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
    ::close(fd);
    return live;
}

int event_loop::open(std::string& err)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal_fd_ = signalfd(-1, &set, SFD_CLOEXEC);
    if (signal_fd_ < 0) {
        err = std::string("signalfd: ") + strerror(errno);
        return -errno;
    }
    int rc = io_uring_queue_init(256, &ring_, 0);
    if (rc < 0) {
        err = std::string("io_uring_queue_init: ") + strerror(-rc) +
              " (io_uring needs Linux >= 5.6 and must not be disabled by "
              "kernel.io_uring_disabled or a seccomp filter)";
        return rc;
    }
    ring_ok_ = true;

    // The socket's directory (e.g. /run/isar) is created if missing.
    std::string dir = cfg_.socket.substr(0, cfg_.socket.rfind('/'));
    if (!dir.empty())
        ::mkdir(dir.c_str(), 0755);
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) {
        err = std::string("socket: ") + strerror(errno);
        return -errno;
    }
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, cfg_.socket.c_str(), sizeof(sa.sun_path) - 1);
    // A socket file left by a dead isard is replaced; a live one is refused.
    if (::connect(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) {
        err = cfg_.socket + ": another isard is already listening there";
        // Not ours: the destructor must not unlink the live isard's socket.
        ::close(listen_fd_);
        listen_fd_ = -1;
        return -EADDRINUSE;
    }
    ::close(listen_fd_);
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ::unlink(cfg_.socket.c_str());
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
        err = cfg_.socket + ": bind: " + strerror(errno);
        return -errno;
    }
    ::chmod(cfg_.socket.c_str(), cfg_.socket_mode);
    if (::listen(listen_fd_, 128) != 0) {
        err = cfg_.socket + ": listen: " + strerror(errno);
        return -errno;
    }
    open_metrics();
    return 0;
}

// The /metrics listener. A failure is logged, not fatal: media keeps flowing
// without metrics (and two test instances on one host do not collide).
void event_loop::open_metrics()
{
    if (cfg_.metrics_listen.empty())
        return;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ISAR_LOG(ERR, "metrics: socket: {}; /metrics is off", strerror(errno));
        return;
    }
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(cfg_.metrics_ip);
    sa.sin_port = htons(cfg_.metrics_port);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || ::listen(fd, 64) != 0) {
        ISAR_LOG(ERR, "metrics: cannot listen on {}: {}; /metrics is off (change [metrics] "
                      "listen)",
                 cfg_.metrics_listen, strerror(errno));
        ::close(fd);
        return;
    }
    http_fd_ = fd;
    metrics_port_ = cfg_.metrics_port;
}

io_uring_sqe* event_loop::sqe()
{
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    if (s == nullptr) {
        io_uring_submit(&ring_);
        s = io_uring_get_sqe(&ring_);
    }
    return s;
}

void event_loop::post_accept()
{
    io_uring_sqe* s = sqe();
    io_uring_prep_accept(s, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, ud(0, op_accept));
}

void event_loop::post_http_accept()
{
    io_uring_sqe* s = sqe();
    io_uring_prep_accept(s, http_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, ud(0, op_http_accept));
}

void event_loop::post_http_recv(http_client& c)
{
    io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, c.fd, c.buf, sizeof(c.buf), 0);
    io_uring_sqe_set_data64(s, ud(c.id, op_http_recv));
    s->flags |= IOSQE_IO_LINK;
    io_uring_sqe* t = sqe();
    io_uring_prep_link_timeout(t, const_cast<__kernel_timespec*>(&http_ts), 0);
    io_uring_sqe_set_data64(t, ud(c.id, op_http_timeout));
    c.recv_posted = true;
}

void event_loop::post_http_send(http_client& c)
{
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, ud(c.id, op_http_send));
    s->flags |= IOSQE_IO_LINK;
    io_uring_sqe* t = sqe();
    io_uring_prep_link_timeout(t, const_cast<__kernel_timespec*>(&http_ts), 0);
    io_uring_sqe_set_data64(t, ud(c.id, op_http_timeout));
    c.send_posted = true;
}

void event_loop::http_reap(http_client& c)
{
    if (c.recv_posted || c.send_posted)
        return;
    ::close(c.fd);
    http_.erase(c.id);
}

std::string event_loop::health(int& code) const
{
    dp::dataplane& dp = cmds_.dataplane();
    const uint64_t now = rte_rdtsc(), hz = rte_get_tsc_hz();
    for (unsigned w = 0; w < dp.nworkers() && w < hb_moved_tsc_.size(); w++) {
        if (now - hb_moved_tsc_[w] > hz) {
            code = 503;
            return "worker " + std::to_string(w) + " stuck\n";
        }
    }
    if (cmds_.draining()) {
        code = 503;
        return "draining\n";
    }
    code = 200;
    return "ok\n";
}

void event_loop::http_respond(http_client& c, int code, const std::string& type,
                              const std::string& body, bool head_only)
{
    li_.http_requests++;
    if (code >= 400)
        li_.http_errors++;
    c.responded = true;
    c.out = http_response(code, type, body, head_only);
    c.sent = 0;
    post_http_send(c);
}

void event_loop::on_http_cqe(uint8_t kind, uint64_t id, int res)
{
    if (kind == op_http_accept) {
        if (res >= 0) {
            if (http_.size() >= max_http_clients) {
                static const std::string busy =
                        http_response(503, "text/plain", "too many clients\n");
                (void)!::send(res, busy.data(), busy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
                ::close(res);
                li_.http_errors++;
            } else {
                auto c = std::make_unique<http_client>();
                c->id = next_http_++;
                c->fd = res;
                c->start_tsc = rte_rdtsc();
                http_client& ref = *c;
                http_.emplace(c->id, std::move(c));
                post_http_recv(ref);
            }
        } else if (res != -EINTR && res != -ECANCELED) {
            ISAR_LOG(WARNING, "metrics: accept failed: {}", strerror(-res));
        }
        if (!stop_)
            post_http_accept();
        return;
    }
    if (kind == op_http_timeout)
        return; // the linked recv/send completes with -ECANCELED
    auto it = http_.find(id);
    if (it == http_.end())
        return;
    http_client& c = *it->second;
    if (kind == op_http_recv) {
        c.recv_posted = false;
        if (res <= 0 || c.responded) {
            if (res == -ECANCELED && !c.responded) {
                // Timed out: a short 408, best effort, then close.
                li_.http_errors++;
                static const std::string slow =
                        http_response(408, "text/plain", "request timeout\n");
                (void)!::send(c.fd, slow.data(), slow.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            }
            http_reap(c);
            return;
        }
        c.in.append(c.buf, static_cast<size_t>(res));
        http_request r = parse_http_request(c.in);
        using st = http_request::status;
        switch (r.st) {
        case st::incomplete:
            if (rte_rdtsc() - c.start_tsc > http_total_timeout_s * rte_get_tsc_hz())
                http_respond(c, 408, "text/plain", "request timeout\n");
            else
                post_http_recv(c);
            return;
        case st::bad:
            http_respond(c, 400, "text/plain", "bad request\n");
            return;
        case st::too_large:
            http_respond(c, 431, "text/plain", "request too large\n");
            return;
        case st::bad_method:
            http_respond(c, 405, "text/plain", "only GET and HEAD\n");
            return;
        case st::bad_version:
            http_respond(c, 505, "text/plain", "HTTP/1.0 or HTTP/1.1 only\n");
            return;
        case st::ok:
            break;
        }
        const bool head = r.method == "HEAD";
        if (r.path == "/metrics") {
            li_.draining = cmds_.draining();
            li_.uptime_s = static_cast<double>(rte_rdtsc() - serve_tsc_) / rte_get_tsc_hz();
            http_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8",
                         exporter_->render(li_), head);
        } else if (r.path == "/healthz") {
            int code = 200;
            std::string body = health(code);
            http_respond(c, code, "text/plain", body, head);
        } else {
            http_respond(c, 404, "text/plain", "not found: try /metrics or /healthz\n", head);
        }
        return;
    }
    if (kind == op_http_send) {
        c.send_posted = false;
        if (res <= 0) {
            http_reap(c);
            return;
        }
        c.sent += static_cast<size_t>(res);
        if (c.sent < c.out.size()) {
            post_http_send(c);
            return;
        }
        ::shutdown(c.fd, SHUT_WR);
        http_reap(c);
    }
}

void event_loop::on_signal()
{
    const auto* si = reinterpret_cast<const signalfd_siginfo*>(&sig_);
    const char* name = si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
    signals_++;
    if (signals_ >= 2 || cfg_.drain_timeout_s == 0) {
        ISAR_LOG(NOTICE, "{} received, stopping now", name);
        stop_ = true;
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
    for (auto& [id, c] : clients_)
        if (c->send_posted || !c->out.empty())
            return;
    if (sm_.sessions().empty() && !sm_.pending()) {
        ISAR_LOG(NOTICE, "drained: no sessions left, stopping");
        stop_ = true;
    } else if (now - cmds_.drain_start_tsc() >= cfg_.drain_timeout_s * rte_get_tsc_hz()) {
        ISAR_LOG(WARNING, "drain timeout ({} s) with {} session(s) left, stopping",
                 cfg_.drain_timeout_s, sm_.sessions().size());
        stop_ = true;
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
    io_uring_sqe* s = sqe();
    io_uring_prep_read(s, signal_fd_, &sig_, sizeof(sig_), 0);
    io_uring_sqe_set_data64(s, ud(0, op_signal));
}

void event_loop::post_recv(client& c)
{
    if (c.recv_posted || c.closing)
        return;
    io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, c.fd, c.buf, sizeof(c.buf), 0);
    io_uring_sqe_set_data64(s, ud(c.id, op_recv));
    c.recv_posted = true;
}

void event_loop::post_send(client& c)
{
    if (c.send_posted || c.out.empty())
        return;
    c.sending.swap(c.out);
    c.out.clear();
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, c.fd, c.sending.data(), c.sending.size(), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, ud(c.id, op_send));
    c.send_posted = true;
}

void event_loop::close_client(client& c)
{
    if (!c.closing) {
        c.closing = true;
        ::shutdown(c.fd, SHUT_RD); // completes a pending recv; queued replies still go out
    }
    reap(c);
}

void event_loop::reap(client& c)
{
    if (c.closing && !c.recv_posted && !c.send_posted && c.out.empty() && !c.busy) {
        ::close(c.fd);
        clients_.erase(c.id);
    }
}

void event_loop::reply(uint64_t id, const nlohmann::json& j)
{
    auto it = clients_.find(id);
    if (it == clients_.end())
        return; // the client went away; the change itself still happened
    client& c = *it->second;
    c.busy = false;
    if (c.out.size() + c.sending.size() > max_out) {
        // A client that does not read its answers is cut off.
        c.out.clear();
        close_client(c);
        return;
    }
    c.out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    c.out += '\n';
    post_send(c);
    if (c.closing)
        reap(c);
    else if (!c.processing)
        process_lines(c); // the next pipelined request, if any
}

void event_loop::process_lines(client& c)
{
    const uint64_t cid = c.id;
    c.processing = true;
    while (!c.busy && !c.closing) {
        auto nl = c.in.find('\n');
        // Too long whether or not its newline came in the same read.
        if (nl == std::string::npos || nl > max_line) {
            if (nl != std::string::npos || c.in.size() > max_line) {
                c.busy = true;
                c.in.clear();
                const uint64_t id = c.id;
                reply(id, commands::error_json("too_long", "request line longer than 65536 bytes"));
                if (auto it = clients_.find(id); it != clients_.end()) {
                    it->second->processing = false;
                    close_client(*it->second);
                }
                return;
            }
            break;
        }
        std::string line = c.in.substr(0, nl);
        // Requests may carry SRTP keys: wipe every copy of the line we held.
        explicit_bzero(c.in.data(), nl + 1);
        c.in.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos)
            continue;
        c.busy = true;
        const uint64_t id = c.id;
        cmds_.handle_line(line, [this, id](const nlohmann::json& j) { reply(id, j); });
        explicit_bzero(line.data(), line.size());
        if (clients_.find(id) == clients_.end())
            return;
    }
    if (auto it = clients_.find(cid); it != clients_.end())
        it->second->processing = false;
}

void event_loop::on_cqe(io_uring_cqe* cqe)
{
    const uint64_t data = io_uring_cqe_get_data64(cqe);
    const uint8_t kind = data & 0xff;
    const uint64_t id = data >> 8;
    const int res = cqe->res;
    switch (kind) {
    case op_accept:
        if (res >= 0) {
            if (clients_.size() >= cfg_.max_clients) {
                static const char msg[] =
                        "{\"error\":{\"code\":\"busy\",\"message\":\"too many clients\"}}\n";
                (void)!::send(res, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
                ::close(res);
            } else {
                auto c = std::make_unique<client>();
                c->id = next_client_++;
                c->fd = res;
                client& ref = *c;
                clients_.emplace(c->id, std::move(c));
                post_recv(ref);
            }
        } else if (res != -EINTR && res != -ECANCELED) {
            ISAR_LOG(WARNING, "accept failed: {}", strerror(-res));
        }
        if (!stop_)
            post_accept();
        return;
    case op_signal:
        if (res > 0)
            on_signal();
        if (!stop_)
            post_signal();
        return;
    case op_http_accept:
    case op_http_recv:
    case op_http_send:
    case op_http_timeout:
        on_http_cqe(kind, id, res);
        return;
    default:
        break;
    }
    auto it = clients_.find(id);
    if (it == clients_.end())
        return;
    client& c = *it->second;
    if (kind == op_recv) {
        c.recv_posted = false;
        if (res <= 0) {
            close_client(c);
            return;
        }
        c.in.append(c.buf, static_cast<size_t>(res));
        explicit_bzero(c.buf, static_cast<size_t>(res));
        process_lines(c);
        if (clients_.count(id)) {
            post_recv(c);
            reap(c);
        }
    } else if (kind == op_send) {
        c.send_posted = false;
        if (res < 0) {
            c.out.clear();
            c.sending.clear();
            close_client(c);
            return;
        }
        if (static_cast<size_t>(res) < c.sending.size())
            c.out.insert(0, c.sending.substr(static_cast<size_t>(res)));
        c.sending.clear();
        post_send(c);
        reap(c);
    }
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
    post_accept();
    post_signal();
    dp::dataplane& dp = cmds_.dataplane();
    exporter_ = std::make_unique<metrics_exporter>(dp, sm_, nm_, cmds_);
    if (http_fd_ >= 0)
        post_http_accept();
    io_uring_submit(&ring_);
    const uint64_t now = rte_rdtsc();
    serve_tsc_ = now;
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
    cmds_.on_drain = [this] {
        ISAR_LOG(NOTICE, "draining: no new sessions; {} session(s) left, stopping when they are "
                         "gone or after {} s",
                 sm_.sessions().size(), cfg_.drain_timeout_s);
        sd_notifyf(0, "STOPPING=1\nSTATUS=draining: %zu sessions", sm_.sessions().size());
    };
    if (on_ready)
        on_ready();
    if (http_fd_ >= 0)
        ISAR_LOG(NOTICE, "metrics: http://{}/metrics", cfg_.metrics_listen);
    last_tick_ = last_expiry_ = rte_rdtsc();
    while (!stop_) {
        // 1 ms pacing: the rings to and from the workers are polled here.
        __kernel_timespec ts{0, 1000000};
        io_uring_cqe* cqe = nullptr;
        int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
            ISAR_LOG(ERR, "io_uring wait failed: {}", strerror(-rc));
            return rc;
        }
        unsigned head, n = 0;
        io_uring_for_each_cqe(&ring_, head, cqe)
        {
            on_cqe(cqe);
            n++;
        }
        io_uring_cq_advance(&ring_, n);
        sm_.poll();
        nm_.poll();
        periodic(rte_rdtsc());
    }
    return 0;
}

} // namespace isar::ctl
