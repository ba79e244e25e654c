#include "control/metrics_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <rte_cycles.h>

#include "control/log.h"
#include "dataplane/dataplane.h"

namespace isar::ctl {

namespace {
// Linked timeouts: the kernel copies the timespec when it takes the SQE.
const __kernel_timespec http_ts{metrics_listener::http_timeout_s, 0};
const __kernel_timespec tick_ts{0, 250000000};
} // namespace

metrics_listener::metrics_listener(uring_ctx& ctx, const config& cfg, commands& cmds,
                                   session_manager& sm, neighbor_manager& nm,
                                   const std::vector<uint64_t>& hb_moved_tsc, loop_info& li)
    : uring_owner(ctx, op_count), cfg_(cfg), cmds_(cmds), sm_(sm), nm_(nm),
      hb_moved_tsc_(hb_moved_tsc), li_(li)
{
}

metrics_listener::~metrics_listener()
{
    for (auto& [id, c] : http_)
        if (c->fd >= 0)
            ::close(c->fd);
    if (fd_ >= 0)
        ::close(fd_);
}

// A failure is logged, not fatal: media keeps flowing without metrics (and
// two test instances on one host do not collide).
void metrics_listener::open()
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
    fd_ = fd;
    port_ = cfg_.metrics_port;
}

void metrics_listener::start()
{
    exporter_ = std::make_unique<metrics_exporter>(cmds_.dataplane(), sm_, nm_, cmds_);
    if (fd_ >= 0) {
        post_accept();
        post_tick();
    }
    serve_tsc_ = rte_rdtsc();
}

void metrics_listener::post_tick()
{
    io_uring_sqe* s = sqe();
    io_uring_prep_timeout(s, const_cast<__kernel_timespec*>(&tick_ts), 0, 0);
    io_uring_sqe_set_data64(s, ud(0, op_tick));
}

// Every connection's deadline, counted from accept: independent of what (and
// whether) the client sends or reads.
void metrics_listener::on_tick()
{
    const uint64_t now = rte_rdtsc(), limit = http_total_timeout_s * rte_get_tsc_hz();
    std::vector<http_client*> late;
    for (auto& [id, c] : http_)
        if (!c->closing && now - c->start_tsc > limit)
            late.push_back(c.get());
    for (http_client* c : late) {
        if (!c->responded) {
            li_.http_errors++;
            static const std::string slow = http_response(408, "text/plain", "request timeout\n");
            (void)!::send(c->fd, slow.data(), slow.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        kill(*c);
    }
    if (!stopping())
        post_tick();
}

void metrics_listener::kill(http_client& c)
{
    if (c.closing)
        return;
    c.closing = true;
    closing_++;
    ::shutdown(c.fd, SHUT_RDWR);
    // Cancel what is posted (shutdown alone may not wake a send on a full socket).
    for (uint8_t o : {op_recv, op_send}) {
        if ((o == op_recv && !c.recv_posted) || (o == op_send && !c.send_posted))
            continue;
        io_uring_sqe* s = sqe();
        io_uring_prep_cancel64(s, ud(c.id, o), 0);
        io_uring_sqe_set_data64(s, ud(c.id, op_cancel));
    }
    reap(c);
}

void metrics_listener::post_accept()
{
    io_uring_sqe* s = sqe();
    io_uring_prep_accept(s, fd_, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, ud(0, op_accept));
}

void metrics_listener::post_recv(http_client& c)
{
    io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, c.fd, c.buf, sizeof(c.buf), 0);
    io_uring_sqe_set_data64(s, ud(c.id, op_recv));
    s->flags |= IOSQE_IO_LINK;
    io_uring_sqe* t = sqe();
    io_uring_prep_link_timeout(t, const_cast<__kernel_timespec*>(&http_ts), 0);
    io_uring_sqe_set_data64(t, ud(c.id, op_timeout));
    c.recv_posted = true;
}

void metrics_listener::post_send(http_client& c)
{
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, ud(c.id, op_send));
    s->flags |= IOSQE_IO_LINK;
    io_uring_sqe* t = sqe();
    io_uring_prep_link_timeout(t, const_cast<__kernel_timespec*>(&http_ts), 0);
    io_uring_sqe_set_data64(t, ud(c.id, op_timeout));
    c.send_posted = true;
}

void metrics_listener::reap(http_client& c)
{
    if (c.recv_posted || c.send_posted)
        return;
    if (c.closing)
        closing_--;
    ::close(c.fd);
    http_.erase(c.id);
}

std::string metrics_listener::health(int& code) const
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

void metrics_listener::respond(http_client& c, int code, const std::string& type,
                               const std::string& body, bool head_only)
{
    li_.http_requests++;
    if (code >= 400)
        li_.http_errors++;
    c.responded = true;
    c.out = http_response(code, type, body, head_only);
    c.sent = 0;
    post_send(c);
}

void metrics_listener::on_cqe(uint8_t op, uint64_t id, int res)
{
    if (op == op_accept) {
        on_accept(res);
        return;
    }
    if (op == op_tick) {
        on_tick();
        return;
    }
    if (op == op_timeout || op == op_cancel)
        return; // the linked recv/send completes with -ECANCELED
    auto it = http_.find(id);
    if (it == http_.end())
        return;
    if (op == op_recv)
        on_recv(*it->second, res);
    else if (op == op_send)
        on_send(*it->second, res);
}

void metrics_listener::on_accept(int res)
{
    if (res >= 0) {
        if (live() >= max_http_clients) {
            // Full: the oldest connection goes (ids grow with accept order),
            // so clients that hold slots cannot lock out /healthz.
            for (auto& [id, c] : http_) {
                if (!c->closing) {
                    li_.http_errors++;
                    kill(*c);
                    break;
                }
            }
        }
        if (http_.size() >= 4 * max_http_clients) {
            // Killed ones not reaped yet: a bound all the same.
            static const std::string busy = http_response(503, "text/plain", "too many clients\n");
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
            post_recv(ref);
        }
    } else if (res != -EINTR && res != -ECANCELED) {
        ISAR_LOG(WARNING, "metrics: accept failed: {}", strerror(-res));
    }
    if (!stopping())
        post_accept();
}

void metrics_listener::on_recv(http_client& c, int res)
{
    c.recv_posted = false;
    if (c.closing) {
        reap(c);
        return;
    }
    if (res <= 0 || c.responded) {
        if (res == -ECANCELED && !c.responded) {
            // Timed out: a short 408, best effort, then close.
            li_.http_errors++;
            static const std::string slow = http_response(408, "text/plain", "request timeout\n");
            (void)!::send(c.fd, slow.data(), slow.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        reap(c);
        return;
    }
    c.in.append(c.buf, static_cast<size_t>(res));
    http_request r = parse_http_request(c.in);
    using st = http_request::status;
    switch (r.st) {
    case st::incomplete:
        if (rte_rdtsc() - c.start_tsc > http_total_timeout_s * rte_get_tsc_hz())
            respond(c, 408, "text/plain", "request timeout\n");
        else
            post_recv(c);
        return;
    case st::bad:
        respond(c, 400, "text/plain", "bad request\n");
        return;
    case st::too_large:
        respond(c, 431, "text/plain", "request too large\n");
        return;
    case st::bad_method:
        respond(c, 405, "text/plain", "only GET and HEAD\n");
        return;
    case st::bad_version:
        respond(c, 505, "text/plain", "HTTP/1.0 or HTTP/1.1 only\n");
        return;
    case st::ok:
        break;
    }
    route(c, r);
}

void metrics_listener::route(http_client& c, const http_request& r)
{
    const bool head = r.method == "HEAD";
    if (r.path == "/metrics") {
        li_.draining = cmds_.draining();
        li_.uptime_s = static_cast<double>(rte_rdtsc() - serve_tsc_) / rte_get_tsc_hz();
        respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", exporter_->render(li_), head);
    } else if (r.path == "/healthz") {
        int code = 200;
        std::string body = health(code);
        respond(c, code, "text/plain", body, head);
    } else {
        respond(c, 404, "text/plain", "not found: try /metrics or /healthz\n", head);
    }
}

void metrics_listener::on_send(http_client& c, int res)
{
    c.send_posted = false;
    if (res <= 0 || c.closing) {
        reap(c);
        return;
    }
    c.sent += static_cast<size_t>(res);
    if (c.sent < c.out.size()) {
        post_send(c);
        return;
    }
    ::shutdown(c.fd, SHUT_WR);
    reap(c);
}

} // namespace isar::ctl
