// TURN over TCP and TLS: what the stream threads (stream_server.h) and the
// control lcore (turn_manager) tell each other, and how a connection is named
// on the dataplane's rings.
//
// The bytes of a connection take two lanes:
// - STUN/TURN requests (the slow path) go to the control lcore as a
//   stream_event and come back as stream_command::send, like UDP requests
//   through a worker's TURN ring; control tells the thread which allocation
//   the connection now has (bind) and when it is over (close).
// - ChannelData and Send indications (media) go straight to the allocation's
//   owning worker on an rte_ring (stream_frame_hdr + the frame), and the
//   worker's ChannelData and Data indications for the client come back on
//   another (the frame alone, the token in m->hash.usr). Neither lane passes
//   the control lcore.
//
// The hub's queues are mutex-protected vectors: slow-path messages only, a
// few per allocation. A thread's pending requests are capped
// (stream_hub_max_events): control that falls behind sheds requests (the
// thread counts them, drop_request_hub_full), never `closed` events (one per
// connection at most, so bounded by max_connections).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "dataplane/stream_ring.h"

namespace isar::ctl {

using dp::make_stream_token;
using dp::stream_frame_hdr;
using dp::stream_slot_of;
using dp::stream_thread_of;
constexpr unsigned stream_max_threads = dp::max_stream_threads;
constexpr size_t stream_hub_max_events = 4096; // per thread, requests waiting for control

// Thread -> control.
struct stream_event {
    enum kind_t : uint8_t {
        request, // one whole STUN message (class request) from the client
        closed,  // the connection is gone (its allocation ends)
    } kind = request;
    uint32_t token = 0;
    uint32_t client_ip_be = 0; // the client's address and port (getpeername)
    uint16_t client_port_be = 0;
    uint32_t local_ip_be = 0;  // the address and port it connected to (getsockname)
    uint16_t local_port_be = 0;
    bool tls = false;
    std::vector<uint8_t> msg;  // request
    std::string why;           // closed: for the log ("peer closed", "timeout", ...)
};

// Control -> thread.
struct stream_command {
    enum kind_t : uint8_t {
        send,  // queue msg (one STUN message) on the connection
        bind,  // the connection's allocation: where its media goes
        close, // end the connection (allocation deleted or expired); no closed event follows
    } kind = send;
    uint32_t token = 0;
    std::vector<uint8_t> msg; // send
    uint16_t worker = 0;      // bind: the allocation's owning worker,
    uint16_t iface = 0;       //       its interface and relayed port
    uint16_t relay_port_be = 0;
};

class stream_hub {
public:
    explicit stream_hub(unsigned nthreads, size_t max_events = stream_hub_max_events)
        : boxes_(nthreads), max_events_(max_events)
    {
    }
    stream_hub(const stream_hub&) = delete;
    stream_hub& operator=(const stream_hub&) = delete;

    unsigned nthreads() const noexcept { return static_cast<unsigned>(boxes_.size()); }

    // ---- stream thread side ---------------------------------------------
    // False (nothing queued) for a request when `thread` already has
    // max_events waiting; a `closed` event is always queued.
    bool post(unsigned thread, stream_event&& e)
    {
        std::lock_guard<std::mutex> g(boxes_[thread].mu);
        auto& ev = boxes_[thread].events;
        if (e.kind == stream_event::request && ev.size() >= max_events_)
            return false;
        ev.push_back(std::move(e));
        return true;
    }
    // Moves every command for `thread` into `out` (appended).
    void take_commands(unsigned thread, std::vector<stream_command>& out)
    {
        std::lock_guard<std::mutex> g(boxes_[thread].mu);
        for (auto& c : boxes_[thread].commands)
            out.push_back(std::move(c));
        boxes_[thread].commands.clear();
    }

    // ---- control side ----------------------------------------------------
    // Moves the threads' events into `out` (appended), at most `max` in
    // all (oldest first within a thread); the rest wait for the next call.
    void take_events(std::vector<stream_event>& out, size_t max = SIZE_MAX)
    {
        for (auto& b : boxes_) {
            if (max == 0)
                break;
            std::lock_guard<std::mutex> g(b.mu);
            const size_t n = std::min(max, b.events.size());
            for (size_t i = 0; i < n; i++)
                out.push_back(std::move(b.events[i]));
            b.events.erase(b.events.begin(), b.events.begin() + static_cast<std::ptrdiff_t>(n));
            max -= n;
        }
    }
    // Routed by the token's thread; a token of no thread is ignored.
    void command(stream_command&& c)
    {
        const unsigned t = stream_thread_of(c.token);
        if (t >= boxes_.size())
            return;
        std::lock_guard<std::mutex> g(boxes_[t].mu);
        boxes_[t].commands.push_back(std::move(c));
    }

private:
    struct box {
        std::mutex mu;
        std::vector<stream_event> events;
        std::vector<stream_command> commands;
    };
    std::vector<box> boxes_;
    const size_t max_events_;
};

} // namespace isar::ctl
