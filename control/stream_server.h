// TURN over TCP and TLS: the stream threads. `[turn] stream_threads` threads,
// each with its own io_uring and its own SO_REUSEPORT listening socket on
// every listen_tcp and listen_tls port (the kernel spreads connections over
// them), serve every connection: framing (turn/stream.h), TLS (BoringSSL on
// memory BIOs; io_uring does the socket I/O), STUN requests to control
// through the stream_hub, media to and from the allocation's owning worker
// through the stream rings (dataplane/stream_ring.h). No thread per
// connection; never on the control lcore.
//
// What control (turn_manager) does with it:
// - stream_hub::take_events(): `request` (one whole STUN request, with the
//   client's and local addresses and whether it came over TLS) and `closed`
//   (the client left, sent garbage or timed out: end its allocation).
// - stream_hub::command(): `send` (one STUN message for the client), `bind`
//   (the connection's allocation: owning worker, iface, relay port; its
//   ChannelData and Send indications flow to that worker from then on),
//   `close` (no `closed` event follows). Commands for a token that is gone
//   are ignored (counted: stale_commands).
// - counters(t) / total(): per-thread relaxed counters for stats and metrics.
// - reload_tls(): SIGHUP.
#pragma once

#include <sched.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "control/config.h"
#include "control/stream_hub.h"
#include "control/tls_context.h"

struct rte_mempool;
struct rte_ring;

namespace isar::dp {
class dataplane;
}

namespace isar::ctl {

// What the stream threads need from the dataplane: the mbuf pool and the
// rings each way between every thread and every worker. A test builds its
// own; isard takes the dataplane's (stream_dp_of).
struct stream_dp {
    rte_mempool* pool = nullptr;
    unsigned nworkers = 0;
    std::vector<rte_ring*> in;  // [t * nworkers + w]: thread t -> worker w
    std::vector<rte_ring*> out; // [t * nworkers + w]: worker w -> thread t
    rte_ring* ring_in(unsigned t, unsigned w) const { return in[t * nworkers + w]; }
    rte_ring* ring_out(unsigned w, unsigned t) const { return out[t * nworkers + w]; }
};
stream_dp stream_dp_of(dp::dataplane& dp, unsigned nthreads);

// Counters of one stream thread (single writer: that thread; relaxed).
#define ISAR_STREAM_COUNTERS(X)                                                                    \
    X(accepted, counter, "connections accepted")                                                   \
    X(refused_max_connections, counter, "connections closed at accept: max_connections reached")  \
    X(accept_errors, counter, "accept failures (e.g. out of file descriptors)")                    \
    X(live, gauge, "connections open now")                                                         \
    X(live_tls, gauge, "TLS connections open now")                                                 \
    X(bound, gauge, "connections with an allocation now")                                          \
    X(closed_peer, counter, "connections the client closed (or reset)")                            \
    X(closed_control, counter, "connections control closed (allocation ended)")                    \
    X(closed_shutdown, counter, "connections closed because the server stopped")                   \
    X(closed_garbage, counter, "connections closed: not TURN framing")                             \
    X(closed_tls_error, counter, "connections closed: TLS handshake or record error")              \
    X(closed_io_error, counter, "connections closed: socket error")                                \
    X(timeout_idle, counter, "connections closed: no allocation stream_timeout_s after opening")   \
    X(timeout_handshake, counter, "connections closed: TLS handshake not finished in time")        \
    X(timeout_partial, counter, "connections closed: a frame left incomplete")                     \
    X(timeout_send, counter, "connections closed: the client read nothing")                        \
    X(timeout_keepalive, counter, "connections closed: TCP keepalives unanswered (half-open)")    \
    X(closed_send_overflow, counter, "TLS connections closed: TLS output outgrew the send buffer")  \
    X(recv_paused, counter, "times reading a connection paused: its send queue over the cap")     \
    X(tls_handshakes, counter, "TLS handshakes completed")                                         \
    X(tls_alpn_refused, counter, "TLS clients refused: they offered ALPN but not stun.turn")       \
    X(rx_bytes, counter, "bytes received (TLS: plaintext)")                                        \
    X(tx_bytes, counter, "bytes sent (TLS: records)")                                              \
    X(rx_requests, counter, "STUN requests handed to control")                                     \
    X(rx_media, counter, "ChannelData and Send indications handed to a worker")                    \
    X(rx_media_bytes, counter, "bytes of those frames")                                            \
    X(rx_ignored, counter, "STUN messages of another class (responses, other indications)")       \
    X(drop_request_rate, counter, "requests dropped: over stream_max_requests_per_s on a connection") \
    X(drop_request_policed, counter, "requests dropped: over max_requests_per_s / stream_threads on the thread") \
    X(drop_request_hub_full, counter, "requests dropped: control has stream_hub_max_events of the thread's waiting") \
    X(drop_not_bound, counter, "media from a connection without an allocation: dropped")           \
    X(drop_ring_full, counter, "media dropped: the worker's stream ring was full")                 \
    X(drop_no_mbuf, counter, "media dropped: no mbuf")                                             \
    X(drop_too_big, counter, "frames dropped: larger than an mbuf (to a worker) or than stream_max_frame (from one)") \
    X(drop_not_ready, counter, "frames for a TLS connection dropped: its handshake not done")      \
    X(tx_frames, counter, "frames queued to clients (responses and media)")                        \
    X(tx_media, counter, "frames from workers queued to clients")                                  \
    X(drop_send_full, counter, "frames dropped whole: the connection's send buffer was full")      \
    X(drop_send_full_control, counter, "control's answers dropped: even the room kept for them was full") \
    X(drop_stale, counter, "frames from workers for a connection that is gone")                    \
    X(stale_commands, counter, "control commands for a connection that is gone")                   \
    X(sqe_shortage, counter, "io_uring operations deferred to the sweep: no free SQE")             \
    X(send_buffer_bytes, gauge, "bytes waiting in send buffers now")

enum class stream_ctr : unsigned {
#define ISAR_X(name, kind, help) name,
    ISAR_STREAM_COUNTERS(ISAR_X)
#undef ISAR_X
    count
};
constexpr unsigned stream_ctr_count = static_cast<unsigned>(stream_ctr::count);
const char* stream_ctr_name(unsigned i) noexcept;
const char* stream_ctr_help(unsigned i) noexcept;
bool stream_ctr_is_gauge(unsigned i) noexcept;

struct alignas(64) stream_counters {
    std::atomic<uint64_t> v[stream_ctr_count] = {};
    uint64_t get(stream_ctr c) const { return v[static_cast<unsigned>(c)].load(std::memory_order_relaxed); }
    // Single writer: load + store, no read-modify-write.
    void add(stream_ctr c, uint64_t n = 1)
    {
        auto& a = v[static_cast<unsigned>(c)];
        a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void sub(stream_ctr c, uint64_t n = 1) { add(c, uint64_t{0} - n); }
};

class stream_thread;

class stream_server {
public:
    // `bind_ip_be`: the address the listeners bind (0 = 0.0.0.0). The hub
    // must have cfg.stream_threads threads.
    stream_server(const turn_config& cfg, stream_hub& hub, stream_dp dp, uint32_t bind_ip_be = 0);
    ~stream_server();
    stream_server(const stream_server&) = delete;
    stream_server& operator=(const stream_server&) = delete;

    // Loads TLS (when listen_tls), opens every listener (a port 0 is bound
    // once and the others join it: tests) and starts the threads. 0 or
    // -errno and `err`.
    int start(std::string& err);
    // Stops and joins the threads (closing every connection, posting nothing).
    void stop();

    // SIGHUP: a new TLS context from the files for new connections (existing
    // ones keep theirs). Logs one line. 0, or -errno and `err` (old one kept).
    int reload_tls(std::string& err);

    unsigned nthreads() const { return static_cast<unsigned>(threads_.size()); }
    const stream_counters& counters(unsigned t) const;
    uint64_t total(stream_ctr c) const;
    // The ports actually bound, in the order of listen_tcp / listen_tls.
    const std::vector<uint16_t>& tcp_ports() const { return tcp_ports_; }
    const std::vector<uint16_t>& tls_ports() const { return tls_ports_; }

    // Shared by the threads.
    const turn_config& cfg() const { return cfg_; }
    stream_hub& hub() { return hub_; }
    const stream_dp& dp() const { return dp_; }
    // The CPUs the threads run on (before start): isard's start-up set minus
    // the workers' (the threads are created by the control lcore, whose EAL
    // affinity is one CPU). Unset: inherited.
    void set_cpus(const cpu_set_t& s)
    {
        cpus_ = s;
        have_cpus_ = true;
    }
    const cpu_set_t* cpus() const { return have_cpus_ ? &cpus_ : nullptr; }
    tls_context* tls() { return tls_.get(); }
    std::atomic<uint32_t>& live_total() { return live_total_; }
    bool stopping() const { return stop_.load(std::memory_order_relaxed); }

private:
    int open_listeners(std::string& err);

    const turn_config cfg_;
    stream_hub& hub_;
    const stream_dp dp_;
    const uint32_t bind_ip_be_;
    cpu_set_t cpus_{};
    bool have_cpus_ = false;
    std::unique_ptr<tls_context> tls_;
    std::vector<std::unique_ptr<stream_thread>> threads_;
    std::vector<uint16_t> tcp_ports_, tls_ports_;
    std::atomic<uint32_t> live_total_{0};
    std::atomic<bool> stop_{false};
};

} // namespace isar::ctl
