// One stream thread (stream_server.h): its io_uring, its listening sockets,
// its connections in a slot array (token = thread | generation | slot), its
// counters. Everything here runs on that thread, except the constructor,
// start() and join().
#pragma once

#include <liburing.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "control/stream_conn.h"
#include "control/stream_hub.h"
#include "control/stream_server.h"

struct rte_mbuf;

namespace isar::ctl {

// How the thread waits (see README "TURN over TCP and TLS"). Workers never
// wake it (no system call on a worker), so it looks at its rings on a timer:
// while it has a connection with an allocation, or handed a request to
// control within busy_linger_ns, it waits busy_wait_min_ns after a turn that
// found frames on the rings, doubling up to busy_wait_max_ns while they stay
// empty (a frame after a silence waits at most that long; a steady stream
// keeps the wait short); otherwise it waits idle_wait_ns. Socket I/O wakes it
// at once either way. Measured in test_stream_server (wait_latency_and_idle_cost).
constexpr uint64_t stream_busy_wait_min_ns = 50'000;
constexpr uint64_t stream_busy_wait_max_ns = 500'000;
constexpr uint64_t stream_idle_wait_ns = 10'000'000;
constexpr uint64_t stream_busy_linger_ns = 200'000'000;
constexpr uint64_t stream_sweep_ns = 100'000'000; // timeout checks

class stream_thread {
public:
    struct listener {
        int fd = -1;
        bool tls = false;
        bool armed = false;
    };

    stream_thread(stream_server& srv, unsigned id);
    ~stream_thread();
    // Takes the listening sockets (closed by this thread at the end).
    void add_listener(int fd, bool tls) { listeners_.push_back({fd, tls}); }
    int start(std::string& err);
    void join();

    const stream_counters& counters() const { return ctr_; }

private:
    enum op : uint8_t { op_accept = 1, op_recv, op_send, op_cancel };

    void run();
    void loop_once(uint64_t now);
    void wait(uint64_t now);
    struct cqe_copy {
        uint64_t data;
        int32_t res;
        uint32_t flags;
    };
    void reap();                    // CQ -> cqes_ (frees the CQ's room)
    void handle_cqes(uint64_t now); // reap() and on_cqe() each
    void on_cqe(const cqe_copy& cqe, uint64_t now);
    // A free SQE, or null when none is free even after submitting and
    // reaping (counted: sqe_shortage); every caller copes with null (the
    // sweep re-arms what was not armed).
    io_uring_sqe* sqe();

    // connections
    void arm_accept(unsigned i);
    void on_accept(unsigned i, int res, bool more, uint64_t now);
    stream_conn* open_conn(int fd, bool tls, uint64_t now);
    stream_conn* find(uint32_t token);
    void arm_recv(stream_conn& c);
    void on_recv(stream_conn& c, int res, uint64_t now);
    bool tls_in(stream_conn& c, size_t n, uint64_t now);
    bool take_frames(stream_conn& c, uint64_t now);
    void on_frame(stream_conn& c, const uint8_t* p, const turn::stream_frame& f);
    void to_worker(stream_conn& c, const uint8_t* p, size_t n);
    bool police_request(uint64_t now);
    // `control`: an answer from control, which may use
    // stream_control_reserve beyond the cap (media is dropped first).
    bool queue(stream_conn& c, const uint8_t* p, size_t n, bool control = false);
    void flush_tls(stream_conn& c);
    void send_alert(stream_conn& c);
    void kick_send(stream_conn& c, uint64_t now);
    void on_send(stream_conn& c, int res, uint64_t now);
    void close(stream_conn& c, stream_close why, bool post);
    void linger(stream_conn& c, uint64_t now);
    void finish(stream_conn& c);
    void sweep(uint64_t now);

    // control and workers
    void take_commands(uint64_t now);
    unsigned drain_workers(uint64_t now); // frames taken

    stream_server& srv_;
    const unsigned id_;
    const uint64_t timeout_ns_;
    const size_t send_cap_;
    io_uring ring_{};
    bool ring_ok_ = false;
    std::thread th_;
    std::vector<listener> listeners_;
    std::vector<std::unique_ptr<stream_conn>> conns_; // by slot
    std::vector<uint8_t> gen_;                        // by slot
    // Free slots, oldest first: a slot is reused as late as possible, so its
    // 8-bit generation comes back to an old token's only after 255 reuses
    // of each of the free slots, not after 255 reconnects.
    std::deque<uint32_t> free_;
    std::vector<stream_command> cmds_;
    std::vector<cqe_copy> cqes_; // reaped, not yet handled
    std::unique_ptr<uint8_t[]> scratch_;              // one frame from a chained mbuf
    uint64_t last_sweep_ = 0, last_request_ = 0;
    // max_requests_per_s / stream_threads: the requests this thread hands
    // control per second, all connections together (0: unpoliced); a token
    // bucket of one second's worth.
    const double req_rate_;
    double req_tokens_;
    uint64_t req_refill_ns_ = 0;
    unsigned nbound_ = 0;
    uint64_t busy_wait_ns_ = stream_busy_wait_min_ns;
    stream_counters ctr_;
};

// An event about connection `c` for control: its token and addresses.
stream_event event_of(const stream_conn& c, stream_event::kind_t kind);

} // namespace isar::ctl
