// One stream thread: the io_uring loop over its listeners and connections,
// the hub's commands and the workers' rings (stream_thread.h).
#include "control/stream_thread.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "control/log.h"
#include "turn/stun.h"

namespace isar::ctl {

namespace {

uint64_t now_ns()
{
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         std::chrono::steady_clock::now().time_since_epoch())
                                         .count());
}

constexpr uint64_t ud(uint32_t token, uint8_t op)
{
    return (uint64_t{token} << 8) | op;
}

constexpr unsigned ring_entries = 1024; // SQ
constexpr unsigned min_cq_entries = 4096;

stream_ctr close_counter(stream_close why)
{
    switch (why) {
    case stream_close::peer:
        return stream_ctr::closed_peer;
    case stream_close::control:
        return stream_ctr::closed_control;
    case stream_close::shutdown:
        return stream_ctr::closed_shutdown;
    case stream_close::garbage:
        return stream_ctr::closed_garbage;
    case stream_close::tls_error:
        return stream_ctr::closed_tls_error;
    case stream_close::io_error:
        return stream_ctr::closed_io_error;
    case stream_close::idle:
        return stream_ctr::timeout_idle;
    case stream_close::handshake:
        return stream_ctr::timeout_handshake;
    case stream_close::partial:
        return stream_ctr::timeout_partial;
    case stream_close::send_stall:
        return stream_ctr::timeout_send;
    case stream_close::keepalive:
        return stream_ctr::timeout_keepalive;
    case stream_close::send_overflow:
        return stream_ctr::closed_send_overflow;
    }
    return stream_ctr::closed_io_error;
}


} // namespace

// An event about connection `c` for control: its token and addresses.
stream_event event_of(const stream_conn& c, stream_event::kind_t kind)
{
    stream_event e;
    e.kind = kind;
    e.token = c.token;
    e.client_ip_be = c.client_ip_be;
    e.client_port_be = c.client_port_be;
    e.local_ip_be = c.local_ip_be;
    e.local_port_be = c.local_port_be;
    e.tls = c.tls;
    return e;
}

stream_thread::stream_thread(stream_server& srv, unsigned id)
    : srv_(srv), id_(id), timeout_ns_(uint64_t{srv.cfg().stream_timeout_s} * 1'000'000'000),
      send_cap_(srv.cfg().stream_send_buffer), scratch_(new uint8_t[turn::stream_max_frame]),
      req_rate_(srv.cfg().max_requests_per_s == 0
                        ? 0.0
                        : std::max(1.0, double(srv.cfg().max_requests_per_s) /
                                                std::max(1u, srv.cfg().stream_threads))),
      req_tokens_(req_rate_)
{
}


stream_thread::~stream_thread()
{
    join();
    for (auto& l : listeners_)
        if (l.fd >= 0)
            ::close(l.fd);
    if (ring_ok_)
        io_uring_queue_exit(&ring_);
}

int stream_thread::start(std::string& err)
{
    io_uring_params p{};
    // The CQ holds every completion a sweep or the shutdown may cause at
    // once: a connection's recv, send and cancel, for each of this thread's
    // share of max_connections (CLAMP: at most the kernel's limit).
    const uint64_t per_thread =
            srv_.cfg().max_connections / std::max(1u, srv_.cfg().stream_threads) + 1;
    p.flags = IORING_SETUP_CLAMP | IORING_SETUP_CQSIZE;
    p.cq_entries = static_cast<unsigned>(
            std::min<uint64_t>(std::max<uint64_t>(min_cq_entries, 4 * per_thread), 1u << 20));
    const int rc = io_uring_queue_init_params(ring_entries, &ring_, &p);
    if (rc < 0) {
        err = std::string("io_uring_queue_init: ") + strerror(-rc);
        return rc;
    }
    ring_ok_ = true;
    if ((p.features & IORING_FEAT_EXT_ARG) == 0) {
        err = "io_uring lacks IORING_FEAT_EXT_ARG (NB: this requires a kernel >= 5.11)";
        return -ENOTSUP;
    }
    // Multishot accept and IORING_ASYNC_CANCEL_ALL came with Linux 5.19, as
    // IORING_OP_SOCKET did: an older kernel fails the accept at once, every
    // time (a spinning thread), so refuse to start instead.
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    const bool new_enough = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_SOCKET);
    if (probe != nullptr)
        io_uring_free_probe(probe);
    if (!new_enough) {
        utsname u{};
        uname(&u);
        err = std::string("io_uring lacks multishot accept and IORING_ASYNC_CANCEL_ALL: TURN over "
                          "TCP/TLS needs Linux >= 5.19, this is ") +
              u.release;
        return -ENOTSUP;
    }
    th_ = std::thread([this] { run(); });
    return 0;
}

void stream_thread::join()
{
    if (th_.joinable())
        th_.join();
}

io_uring_sqe* stream_thread::sqe()
{
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    // The SQ is full: submit it. That may fail (-EBUSY) while completions
    // wait for room in the CQ: reap them (handled later by handle_cqes())
    // and submit again.
    for (int i = 0; s == nullptr && i < 4; i++) {
        if (i > 0)
            reap();
        io_uring_submit(&ring_);
        s = io_uring_get_sqe(&ring_);
    }
    if (s == nullptr)
        ctr_.add(stream_ctr::sqe_shortage);
    return s;
}

void stream_thread::reap()
{
    unsigned head, seen = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe)
    {
        cqes_.push_back({io_uring_cqe_get_data64(cqe), cqe->res, cqe->flags});
        seen++;
    }
    io_uring_cq_advance(&ring_, seen);
}

void stream_thread::handle_cqes(uint64_t now)
{
    reap();
    // on_cqe() may reap more (through sqe()): by index, by copy.
    for (size_t i = 0; i < cqes_.size(); i++) {
        const cqe_copy x = cqes_[i];
        on_cqe(x, now);
    }
    cqes_.clear();
}

void stream_thread::run()
{
    char name[16];
    snprintf(name, sizeof name, "isar-st-%u", id_);
    pthread_setname_np(pthread_self(), name);
    if (const cpu_set_t* cpus = srv_.cpus())
        pthread_setaffinity_np(pthread_self(), sizeof(*cpus), cpus);
    // Short waits must be short: the default 50 us timer slack would double them.
    prctl(PR_SET_TIMERSLACK, 5000UL, 0, 0, 0);
    // An lcore id gives rte_mempool a per-thread cache; without one the pool
    // still works (shared, a little slower).
    const bool registered = rte_thread_register() == 0;
    if (!registered)
        ISAR_LOG(WARNING, "stream thread {}: rte_thread_register failed ({}): mbufs without a "
                          "per-thread cache", id_, rte_strerror(rte_errno));
    for (unsigned i = 0; i < listeners_.size(); i++)
        arm_accept(i);
    while (!srv_.stopping())
        loop_once(now_ns());
    // No new connections from here on: the accepts are cancelled (what they
    // still complete with is closed at once, on_accept) and the listening
    // sockets closed once they are.
    for (unsigned i = 0; i < listeners_.size(); i++)
        if (listeners_[i].armed)
            if (io_uring_sqe* s = sqe(); s != nullptr) {
                io_uring_prep_cancel64(s, ud(i, op_accept), IORING_ASYNC_CANCEL_ALL);
                io_uring_sqe_set_data64(s, ud(0, op_cancel));
            }
    for (auto& c : conns_)
        if (c && c->fd >= 0 && !c->closing)
            close(*c, stream_close::shutdown, false);
    // Let the cancelled operations complete (their buffers are ours), then
    // close what is left.
    for (int i = 0; i < 50 && srv_.live_total().load() > 0; i++) {
        wait(0);
        handle_cqes(now_ns());
        if (std::none_of(conns_.begin(), conns_.end(),
                         [](const auto& c) { return c && c->fd >= 0; }) &&
            std::none_of(listeners_.begin(), listeners_.end(),
                         [](const listener& l) { return l.armed; }))
            break;
    }
    for (auto& l : listeners_)
        if (l.fd >= 0) {
            ::close(l.fd);
            l.fd = -1;
        }
    // An operation still in flight may write into its connection's buffers:
    // the ring goes first (the kernel cancels what it still has), then the
    // buffers.
    if (std::any_of(conns_.begin(), conns_.end(),
                    [](const auto& c) { return c && c->fd >= 0 && c->ops > 0; })) {
        io_uring_queue_exit(&ring_);
        ring_ok_ = false;
    }
    for (auto& c : conns_)
        if (c && c->fd >= 0) {
            c->ops = 0;
            finish(*c);
        }
    drain_workers(now_ns()); // frees what is left on the rings
    if (registered)
        rte_thread_unregister();
}

// Commands first, so that a bind control issued before the client's media
// arrived applies to it; then the workers' frames, then the sockets.
void stream_thread::loop_once(uint64_t now)
{
    wait(now);
    now = now_ns();
    take_commands(now);
    if (drain_workers(now) > 0)
        busy_wait_ns_ = stream_busy_wait_min_ns;
    else
        busy_wait_ns_ = std::min(busy_wait_ns_ * 2, stream_busy_wait_max_ns);
    handle_cqes(now);
    if (now - last_sweep_ >= stream_sweep_ns) {
        last_sweep_ = now;
        sweep(now);
    }
}

void stream_thread::wait(uint64_t now)
{
    const bool busy = nbound_ > 0 || now - last_request_ < stream_busy_linger_ns;
    const uint64_t ns = busy ? busy_wait_ns_ : stream_idle_wait_ns;
    __kernel_timespec ts{static_cast<long long>(ns / 1'000'000'000),
                         static_cast<long long>(ns % 1'000'000'000)};
    io_uring_cqe* cqe = nullptr;
    io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
}

void stream_thread::on_cqe(const cqe_copy& cqe, uint64_t now)
{
    const uint64_t data = cqe.data;
    const auto kind = static_cast<uint8_t>(data & 0xff);
    const auto token = static_cast<uint32_t>(data >> 8);
    if (kind == op_cancel)
        return;
    if (kind == op_accept) {
        on_accept(token, cqe.res, (cqe.flags & IORING_CQE_F_MORE) != 0, now);
        return;
    }
    const uint32_t slot = stream_slot_of(token);
    if (slot >= conns_.size() || !conns_[slot] || conns_[slot]->token != token)
        return; // cannot happen: a slot is reused only once its ops are done
    stream_conn& c = *conns_[slot];
    c.ops--;
    if (kind == op_recv) {
        c.recv_armed = false;
        on_recv(c, cqe.res, now);
    } else if (kind == op_send) {
        c.send_armed = false;
        on_send(c, cqe.res, now);
    }
    if (c.closing && c.ops == 0)
        finish(c);
}

// ---- accept -------------------------------------------------------------

void stream_thread::arm_accept(unsigned i)
{
    io_uring_sqe* s = sqe();
    if (s == nullptr) {
        listeners_[i].armed = false; // the sweep tries again
        return;
    }
    io_uring_prep_multishot_accept(s, listeners_[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, ud(i, op_accept));
    listeners_[i].armed = true;
}

void stream_thread::on_accept(unsigned i, int res, bool more, uint64_t now)
{
    if (i >= listeners_.size())
        return;
    if (srv_.stopping()) { // the thread is closing its connections: none new
        if (!more)
            listeners_[i].armed = false;
        if (res >= 0)
            ::close(res);
        return;
    }
    if (!more) {
        listeners_[i].armed = false;
        // The multishot accept ended. Without an error (e.g. the CQ was
        // full) it is re-armed at once; after an error (out of file
        // descriptors or memory, or anything else) by the next sweep
        // (100 ms): re-arming at once would spin on the same error.
        if (!srv_.stopping() && res >= 0)
            arm_accept(i);
    }
    if (res < 0) {
        if (res != -ECANCELED)
            ctr_.add(stream_ctr::accept_errors);
        return;
    }
    const uint32_t max = srv_.cfg().max_connections;
    if (srv_.live_total().fetch_add(1, std::memory_order_relaxed) >= max) {
        srv_.live_total().fetch_sub(1, std::memory_order_relaxed);
        ctr_.add(stream_ctr::refused_max_connections);
        ::close(res);
        return;
    }
    stream_conn* c = open_conn(res, listeners_[i].tls, now);
    if (c == nullptr) {
        srv_.live_total().fetch_sub(1, std::memory_order_relaxed);
        ctr_.add(stream_ctr::accept_errors);
        ::close(res);
        return;
    }
    ctr_.add(stream_ctr::accepted);
    ctr_.add(stream_ctr::live);
    if (c->tls)
        ctr_.add(stream_ctr::live_tls);
    arm_recv(*c);
}

stream_conn* stream_thread::open_conn(int fd, bool tls, uint64_t now)
{
    uint32_t slot;
    if (!free_.empty()) {
        slot = free_.front();
        free_.pop_front();
    } else if (conns_.size() < dp::stream_max_slots) {
        slot = static_cast<uint32_t>(conns_.size());
        conns_.push_back(nullptr);
        gen_.push_back(0);
    } else {
        return nullptr;
    }
    conns_[slot] = std::make_unique<stream_conn>();
    stream_conn& c = *conns_[slot];
    gen_[slot] = static_cast<uint8_t>(gen_[slot] + 1 == 256 ? 1 : gen_[slot] + 1);
    c.fd = fd;
    c.token = make_stream_token(id_, gen_[slot], slot);
    c.tls = tls;
    c.opened_ns = c.last_rx_ns = now;
    c.rx.reset(new uint8_t[turn::stream_max_buffered]);
    // Media: no Nagle. Half-open connections (the client vanished without a
    // FIN, e.g. a laptop lid closed) are found by TCP keepalives after
    // stream_timeout_s of silence, even with an allocation.
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const int idle = static_cast<int>(std::max<uint64_t>(timeout_ns_ / 1'000'000'000, 1));
    const int intvl = std::max(idle / 3, 1), cnt = 3;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 && a.sin_family == AF_INET) {
        c.client_ip_be = a.sin_addr.s_addr;
        c.client_port_be = a.sin_port;
    }
    len = sizeof a;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 && a.sin_family == AF_INET) {
        c.local_ip_be = a.sin_addr.s_addr;
        c.local_port_be = a.sin_port;
    }
    if (tls) {
        c.tls_in.reset(new uint8_t[stream_tls_in_size]);
        c.ssl = srv_.tls() != nullptr ? srv_.tls()->new_ssl(&c.alpn_refused) : nullptr;
        c.rbio = BIO_new(BIO_s_mem());
        c.wbio = BIO_new(BIO_s_mem());
        if (c.ssl == nullptr || c.rbio == nullptr || c.wbio == nullptr) {
            BIO_free(c.rbio);
            BIO_free(c.wbio);
            c.rbio = c.wbio = nullptr;
            c.release();
            c.fd = -1;
            free_.push_back(slot);
            return nullptr;
        }
        SSL_set_bio(c.ssl, c.rbio, c.wbio);
    }
    return &c;
}

stream_conn* stream_thread::find(uint32_t token)
{
    const uint32_t slot = stream_slot_of(token);
    if (stream_thread_of(token) != id_ || slot >= conns_.size() || !conns_[slot])
        return nullptr;
    stream_conn* c = conns_[slot].get();
    return c->token == token && c->fd >= 0 && !c->closing ? c : nullptr;
}

// ---- receive ------------------------------------------------------------

// Not while the send queue is over the cap (only TLS output gets there):
// don't read while you can't write; on_send re-arms it once it drains.
void stream_thread::arm_recv(stream_conn& c)
{
    if (c.recv_armed || c.closing)
        return;
    if (c.sq.used() > send_cap_) {
        if (!c.recv_paused)
            ctr_.add(stream_ctr::recv_paused);
        c.recv_paused = true;
        return;
    }
    c.recv_paused = false;
    io_uring_sqe* s = sqe();
    if (s == nullptr)
        return; // the sweep tries again
    if (c.tls)
        io_uring_prep_recv(s, c.fd, c.tls_in.get(), stream_tls_in_size, 0);
    else
        io_uring_prep_recv(s, c.fd, c.rx.get() + c.rx_len, turn::stream_max_buffered - c.rx_len,
                           0);
    io_uring_sqe_set_data64(s, ud(c.token, op_recv));
    c.recv_armed = true;
    c.ops++;
}

void stream_thread::on_recv(stream_conn& c, int res, uint64_t now)
{
    if (c.closing)
        return;
    if (res <= 0) {
        close(c, res == 0 || res == -ECONNRESET ? stream_close::peer
                 : res == -ETIMEDOUT            ? stream_close::keepalive
                                                : stream_close::io_error,
              true);
        return;
    }
    c.last_rx_ns = now;
    const auto n = static_cast<size_t>(res);
    bool ok;
    if (c.tls) {
        ok = tls_in(c, n, now);
    } else {
        ctr_.add(stream_ctr::rx_bytes, n);
        c.rx_len += n;
        ok = take_frames(c, now);
    }
    if (!ok)
        return;
    if (c.sq.used() > send_cap_ + stream_tls_send_allowance) {
        close(c, stream_close::send_overflow, true);
        return;
    }
    arm_recv(c);
}

// Handles every whole frame in rx and keeps the rest. False when the
// connection was closed (garbage).
bool stream_thread::take_frames(stream_conn& c, uint64_t now)
{
    size_t off = 0;
    bool any = false;
    for (;;) {
        const turn::stream_frame f = turn::stream_next(c.rx.get() + off, c.rx_len - off);
        if (f.kind == turn::stream_kind::need_more)
            break;
        if (f.kind == turn::stream_kind::garbage) {
            close(c, stream_close::garbage, true);
            return false;
        }
        on_frame(c, c.rx.get() + off, f);
        off += f.consume;
        any = true;
        if (c.closing)
            return false;
    }
    if (off > 0) {
        std::memmove(c.rx.get(), c.rx.get() + off, c.rx_len - off);
        c.rx_len -= off;
    }
    if (c.rx_len == 0 && !c.tls_partial())
        c.partial_since_ns = 0;
    else if (any || c.partial_since_ns == 0)
        c.partial_since_ns = now;
    return true;
}



// ---- send -----------------------------------------------------------------

// Queues one whole frame, or drops it whole (counted) when it does not fit.
bool stream_thread::queue(stream_conn& c, const uint8_t* p, size_t n, bool control)
{
    const size_t need = n + (c.tls ? stream_tls_overhead : 0);
    if (c.tls && !c.handshake_done) {
        ctr_.add(stream_ctr::drop_not_ready);
        return false;
    }
    if (c.sq.used() + need > send_cap_ + (control ? stream_control_reserve : 0)) {
        ctr_.add(control ? stream_ctr::drop_send_full_control : stream_ctr::drop_send_full);
        return false;
    }
    if (c.tls) {
        if (SSL_write(c.ssl, p, static_cast<int>(n)) != static_cast<int>(n)) {
            ERR_clear_error();
            close(c, stream_close::tls_error, true);
            return false;
        }
        flush_tls(c);
    } else {
        const size_t before = c.sq.used();
        c.sq.pending.insert(c.sq.pending.end(), p, p + n);
        ctr_.add(stream_ctr::send_buffer_bytes, c.sq.used() - before);
    }
    ctr_.add(stream_ctr::tx_frames);
    return true;
}

void stream_thread::kick_send(stream_conn& c, uint64_t now)
{
    if (c.send_armed || c.closing || !c.sq.next())
        return;
    if (c.tx_stall_since_ns == 0)
        c.tx_stall_since_ns = now;
    io_uring_sqe* s = sqe();
    if (s == nullptr)
        return; // the sweep tries again
    io_uring_prep_send(s, c.fd, c.sq.inflight.data() + c.sq.off, c.sq.inflight.size() - c.sq.off,
                       MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, ud(c.token, op_send));
    c.send_armed = true;
    c.ops++;
}

void stream_thread::on_send(stream_conn& c, int res, uint64_t now)
{
    if (c.closing)
        return;
    if (res < 0) {
        close(c, res == -EPIPE || res == -ECONNRESET ? stream_close::peer
                                                     : stream_close::io_error,
              true);
        return;
    }
    const auto n = static_cast<size_t>(res);
    c.sq.sent(n);
    ctr_.add(stream_ctr::tx_bytes, n);
    ctr_.sub(stream_ctr::send_buffer_bytes, n);
    c.tx_stall_since_ns = c.sq.used() > 0 && n == 0 ? c.tx_stall_since_ns : 0;
    c.sq.trim();
    if (c.lingering && c.sq.used() == 0) { // all out: it ends
        close(c, stream_close::control, false);
        return;
    }
    kick_send(c, now);
    if (!c.recv_armed)
        arm_recv(c); // reading was paused while the queue was over the cap
}

// ---- close ----------------------------------------------------------------

// A close command from control (the allocation ended): the answer queued
// just before it (a Refresh of lifetime 0, an error) still goes out, then
// the connection ends; at most stream_timeout_s later if the client does not
// read.
void stream_thread::linger(stream_conn& c, uint64_t now)
{
    if (c.bound) {
        c.bound = false;
        nbound_--;
        ctr_.sub(stream_ctr::bound);
    }
    if (c.sq.used() == 0 && !c.send_armed) {
        close(c, stream_close::control, false);
        return;
    }
    c.lingering = true;
    c.linger_since_ns = now;
}

// Ends the connection now for everyone (no more frames in or out); the slot
// is reused once its io_uring operations have completed (finish()).
void stream_thread::close(stream_conn& c, stream_close why, bool post)
{
    if (c.closing)
        return;
    c.closing = true;
    ctr_.add(close_counter(why));
    if (post && !c.lingering) { // control closed a lingering one: it knows
        stream_event e = event_of(c, stream_event::closed);
        e.why = stream_close_name(why);
        srv_.hub().post(id_, std::move(e));
    }
    if (c.bound) {
        c.bound = false;
        nbound_--;
        ctr_.sub(stream_ctr::bound);
    }
    if (c.ops > 0) {
        // Wakes the pending recv/send; the cancel makes sure of it.
        ::shutdown(c.fd, SHUT_RDWR);
        if (io_uring_sqe* s = sqe(); s != nullptr) { // without it, the shutdown does it
            io_uring_prep_cancel_fd(s, c.fd, IORING_ASYNC_CANCEL_ALL);
            io_uring_sqe_set_data64(s, ud(0, op_cancel));
        }
        return;
    }
    finish(c);
}

void stream_thread::finish(stream_conn& c)
{
    if (c.fd < 0)
        return;
    ::close(c.fd);
    c.fd = -1;
    ctr_.sub(stream_ctr::send_buffer_bytes, c.sq.used());
    ctr_.sub(stream_ctr::live);
    if (c.tls)
        ctr_.sub(stream_ctr::live_tls);
    c.release();
    srv_.live_total().fetch_sub(1, std::memory_order_relaxed);
    free_.push_back(stream_slot_of(c.token));
    c.token = 0;
}

void stream_thread::sweep(uint64_t now)
{
    for (unsigned i = 0; i < listeners_.size(); i++)
        if (!listeners_[i].armed && !srv_.stopping())
            arm_accept(i);
    // Every timestamp was taken on this thread before `now`; still, a
    // difference is never read as a wrapped-around huge one.
    const auto over = [&](uint64_t since) { return timeout_ns_ != 0 && since != 0 && now > since &&
                                                   now - since >= timeout_ns_; };
    for (auto& p : conns_) {
        if (!p || p->fd < 0 || p->closing)
            continue;
        stream_conn& c = *p;
        // What an SQE shortage left unarmed (sqe()).
        if (!c.recv_armed)
            arm_recv(c);
        kick_send(c, now);
        if (c.closing)
            continue;
        // A lingering connection (control closed it, its answer is on its
        // way out) ends by its linger timeout only, posting nothing: the
        // other rules would read it as idle (linger() cleared `bound`) and
        // tell control about a connection it closed itself.
        if (c.lingering) {
            if (over(c.linger_since_ns))
                close(c, stream_close::control, false);
            continue;
        }
        if (c.tls && !c.handshake_done && over(c.opened_ns))
            close(c, stream_close::handshake, true);
        else if (over(c.partial_since_ns))
            close(c, stream_close::partial, true);
        // Without an allocation a connection lives stream_timeout_s from
        // when it opened, whatever it sends: a byte every few seconds (or a
        // TLS record trickled in, which BoringSSL takes out of the rbio where
        // tls_partial() cannot see it) must not keep it forever.
        else if (!c.bound && over(c.opened_ns))
            close(c, stream_close::idle, true);
        else if (over(c.tx_stall_since_ns))
            close(c, stream_close::send_stall, true);
    }
}



} // namespace isar::ctl
