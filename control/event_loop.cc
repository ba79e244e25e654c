#include "control/event_loop.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <rte_cycles.h>

#include "control/log.h"

namespace isar::ctl {

namespace {
uint64_t ud(uint64_t id, uint8_t kind)
{
    return (id << 8) | kind;
}
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
    return 0;
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
        if (res > 0) {
            ISAR_LOG(NOTICE, "signal received, stopping");
            stop_ = true;
        } else if (!stop_) {
            post_signal();
        }
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
}

int event_loop::run(const std::function<void()>& on_ready)
{
    post_accept();
    post_signal();
    io_uring_submit(&ring_);
    if (on_ready)
        on_ready();
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
