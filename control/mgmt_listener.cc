#include "control/mgmt_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <vector>

#include <rte_cycles.h>

#include "control/log.h"

namespace isar::ctl {

namespace {
// The idle check's period (the kernel copies the timespec when it takes the SQE).
const __kernel_timespec tick_ts{1, 0};
} // namespace

uint64_t mgmt_listener::now_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

mgmt_listener::mgmt_listener(uring_ctx& ctx, const config& cfg, commands& cmds)
    : uring_owner(ctx, op_count), cfg_(cfg), cmds_(cmds)
{
}

mgmt_listener::~mgmt_listener()
{
    for (auto& [id, c] : clients_)
        if (c->fd >= 0)
            ::close(c->fd);
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        ::unlink(cfg_.socket.c_str());
    }
}

bool mgmt_listener::socket_in_use(const std::string& path)
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

int mgmt_listener::open(std::string& err)
{
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
    // Group first, then the mode: never a moment with the mode on the wrong group.
    if (cfg_.socket_gid != UINT32_MAX &&
        ::chown(cfg_.socket.c_str(), static_cast<uid_t>(-1), cfg_.socket_gid) != 0) {
        err = cfg_.socket + ": chown to group " + cfg_.socket_group + ": " + strerror(errno);
        return -errno;
    }
    ::chmod(cfg_.socket.c_str(), cfg_.socket_mode);
    if (::listen(listen_fd_, 128) != 0) {
        err = cfg_.socket + ": listen: " + strerror(errno);
        return -errno;
    }
    return 0;
}

void mgmt_listener::start()
{
    post_accept();
    post_tick();
}

bool mgmt_listener::sending() const
{
    // Past the drain timeout nothing is worth waiting for.
    if (cmds_.draining() &&
        rte_rdtsc() - cmds_.drain_start_tsc() >= cfg_.drain_timeout_s * rte_get_tsc_hz())
        return false;
    for (auto& [id, c] : clients_)
        if (c->send_posted || !c->out.empty())
            return true;
    return false;
}

void mgmt_listener::post_accept()
{
    io_uring_sqe* s = sqe();
    io_uring_prep_accept(s, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, ud(0, op_accept));
}

void mgmt_listener::post_tick()
{
    io_uring_sqe* s = sqe();
    io_uring_prep_timeout(s, const_cast<__kernel_timespec*>(&tick_ts), 0, 0);
    io_uring_sqe_set_data64(s, ud(0, op_tick));
}

// Closes the clients that neither sent nor read anything for idle_timeout_s
// (one waiting for a worker's answer is not idle).
void mgmt_listener::on_tick()
{
    const uint64_t now = now_ns(), limit = uint64_t{cfg_.idle_timeout_mgmt_s} * 1000000000ull;
    std::vector<uint64_t> idle;
    for (auto& [id, c] : clients_)
        if (!c->busy && now - c->last_ns >= limit)
            idle.push_back(id);
    for (uint64_t id : idle) {
        auto it = clients_.find(id);
        if (it == clients_.end())
            continue;
        client& c = *it->second;
        if (!c.closing)
            ISAR_LOG(INFO, "{}: idle for {} s, closing", c.who, cfg_.idle_timeout_mgmt_s);
        // Both ways: a send stuck on a client that does not read completes too.
        c.out.clear();
        c.closing = true;
        ::shutdown(c.fd, SHUT_RDWR);
        reap(c);
    }
    if (!stopping())
        post_tick();
}

void mgmt_listener::post_recv(client& c)
{
    // Reading pauses while the buffer holds a full line's worth (an earlier
    // request waits for a worker): the line limit holds at all times.
    if (c.recv_posted || c.closing || c.in.size() > max_line)
        return;
    io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, c.fd, c.buf, sizeof(c.buf), 0);
    io_uring_sqe_set_data64(s, ud(c.id, op_recv));
    c.recv_posted = true;
}

void mgmt_listener::post_send(client& c)
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

void mgmt_listener::close_client(client& c)
{
    if (!c.closing) {
        c.closing = true;
        ::shutdown(c.fd, SHUT_RD); // completes a pending recv; queued replies still go out
    }
    reap(c);
}

void mgmt_listener::reap(client& c)
{
    if (c.closing && !c.recv_posted && !c.send_posted && c.out.empty() && !c.busy) {
        ::close(c.fd);
        clients_.erase(c.id);
    }
}

void mgmt_listener::reply(uint64_t id, const nlohmann::json& j)
{
    auto it = clients_.find(id);
    if (it == clients_.end())
        return; // the client went away; the change itself still happened
    client& c = *it->second;
    c.busy = false;
    c.last_ns = now_ns();
    if (c.out.size() + c.sending.size() > max_out) {
        // A client that does not read its answers is cut off.
        c.out.clear();
        close_client(c);
        return;
    }
    c.out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    c.out += '\n';
    post_send(c);
    if (c.closing) {
        reap(c);
    } else if (!c.processing) {
        process_lines(c); // the next pipelined request, if any
        if (auto i = clients_.find(id); i != clients_.end())
            post_recv(*i->second); // reading resumes if it had paused
    }
}

// One request: refused as busy beyond max_inflight, else handed to commands
// (with the peer's credentials for the audit log). The line is wiped after.
void mgmt_listener::start_request(client& c, std::string& line)
{
    c.busy = true;
    const uint64_t id = c.id;
    if (inflight_ >= cfg_.max_inflight) {
        explicit_bzero(line.data(), line.size());
        reply(id, commands::error_json("busy", "too many requests in flight (" +
                                                       std::to_string(cfg_.max_inflight) +
                                                       ", [control] max_inflight): retry later"));
        return;
    }
    inflight_++;
    cmds_.handle_line(
            line,
            [this, id](const nlohmann::json& j) {
                inflight_--;
                reply(id, j);
            },
            c.who);
    explicit_bzero(line.data(), line.size());
}

void mgmt_listener::process_lines(client& c)
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
        const size_t before = c.in.size();
        c.in.erase(0, nl + 1);
        // erase() moved the rest to the front: wipe its old copy behind the end.
        explicit_bzero(c.in.data() + c.in.size(), before - c.in.size());
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos)
            continue;
        const uint64_t id = c.id;
        start_request(c, line);
        if (clients_.find(id) == clients_.end())
            return;
    }
    if (auto it = clients_.find(cid); it != clients_.end())
        it->second->processing = false;
}

void mgmt_listener::on_cqe(uint8_t op, uint64_t id, int res)
{
    if (op == op_accept) {
        on_accept(res);
        return;
    }
    if (op == op_tick) {
        on_tick();
        return;
    }
    auto it = clients_.find(id);
    if (it == clients_.end())
        return;
    if (op == op_recv)
        on_recv(*it->second, res);
    else if (op == op_send)
        on_send(*it->second, res);
}

void mgmt_listener::on_accept(int res)
{
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
            c->last_ns = now_ns();
            ucred cr{};
            socklen_t len = sizeof(cr);
            if (::getsockopt(res, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0)
                c->who = "uid " + std::to_string(cr.uid) + " gid " + std::to_string(cr.gid) +
                         " pid " + std::to_string(cr.pid);
            else
                c->who = "uid ? gid ? pid ?";
            client& ref = *c;
            clients_.emplace(c->id, std::move(c));
            post_recv(ref);
        }
    } else if (res != -EINTR && res != -ECANCELED) {
        ISAR_LOG(WARNING, "accept failed: {}", strerror(-res));
    }
    if (!stopping())
        post_accept();
}

void mgmt_listener::on_recv(client& c, int res)
{
    c.recv_posted = false;
    if (res <= 0) {
        close_client(c);
        return;
    }
    const uint64_t id = c.id;
    c.last_ns = now_ns();
    const size_t n = static_cast<size_t>(res);
    if (c.in.size() + n > c.in.capacity()) {
        // Grow by hand: std::string would free the old buffer (part of a
        // request, maybe a key) without wiping it.
        std::string bigger;
        bigger.reserve(std::max(2 * c.in.capacity(), c.in.size() + n));
        bigger = c.in;
        explicit_bzero(c.in.data(), c.in.size());
        c.in.swap(bigger);
    }
    c.in.append(c.buf, n);
    explicit_bzero(c.buf, n);
    process_lines(c);
    if (clients_.count(id)) {
        post_recv(c);
        reap(c);
    }
}

void mgmt_listener::on_send(client& c, int res)
{
    c.send_posted = false;
    if (res < 0) {
        c.out.clear();
        c.sending.clear();
        close_client(c);
        return;
    }
    if (res > 0)
        c.last_ns = now_ns();
    if (static_cast<size_t>(res) < c.sending.size())
        c.out.insert(0, c.sending.substr(static_cast<size_t>(res)));
    c.sending.clear();
    post_send(c);
    reap(c);
}

} // namespace isar::ctl
