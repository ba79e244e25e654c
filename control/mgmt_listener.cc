#include "control/mgmt_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "control/log.h"

namespace isar::ctl {

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
}

bool mgmt_listener::sending() const
{
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

void mgmt_listener::post_recv(client& c)
{
    if (c.recv_posted || c.closing)
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

void mgmt_listener::on_cqe(uint8_t op, uint64_t id, int res)
{
    if (op == op_accept) {
        on_accept(res);
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
    c.in.append(c.buf, static_cast<size_t>(res));
    explicit_bzero(c.buf, static_cast<size_t>(res));
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
    if (static_cast<size_t>(res) < c.sending.size())
        c.out.insert(0, c.sending.substr(static_cast<size_t>(res)));
    c.sending.clear();
    post_send(c);
    reap(c);
}

} // namespace isar::ctl
