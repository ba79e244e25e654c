// One TURN-over-TCP/TLS connection of a stream thread (stream_thread.h):
// its receive buffer (one frame at most, turn/stream.h), its bounded send
// buffer, its TLS state on memory BIOs and its timestamps. No I/O here: the
// thread owns the socket and the io_uring operations.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <openssl/base.h>

#include "turn/stream.h"

namespace isar::ctl {

// Why a connection ended (stream_counters, and the `closed` event's `why`).
enum class stream_close : uint8_t {
    peer,        // the client closed or reset it
    control,     // a close command (no event)
    garbage,     // not TURN framing
    tls_error,   // handshake or record failure (ALPN refusal included)
    io_error,    // socket error
    idle,        // no allocation stream_timeout_s after it opened
    handshake,   // TLS handshake not finished in time
    partial,     // a frame left incomplete
    send_stall,  // the client read nothing
    send_overflow, // TLS output (e.g. KeyUpdate answers) outgrew the send buffer
    keepalive,   // TCP keepalives unanswered: the client is gone (half-open)
    shutdown,    // the server stops
};
const char* stream_close_name(stream_close why) noexcept;

// A connection's bytes on their way out. Two buffers so that the one an
// io_uring send is reading never moves: `inflight` (from `off`) is being sent,
// `pending` collects what comes meanwhile and takes its place.
struct stream_sendq {
    std::vector<uint8_t> inflight, pending;
    size_t off = 0;

    size_t used() const { return inflight.size() - off + pending.size(); }
    // Promotes `pending` when `inflight` is done; true if there is something
    // to send from inflight[off..].
    bool next();
    // `n` bytes of inflight were sent; returns true when it is all gone.
    void sent(size_t n);
    // Gives memory back once empty (a burst must not pin 64 KiB forever).
    void trim();
};

struct stream_conn {
    int fd = -1;
    uint32_t token = 0;
    bool tls = false;
    bool closing = false;
    bool lingering = false;      // control closed it: what is queued goes out, then it ends
    uint64_t linger_since_ns = 0;
    bool bound = false;
    bool handshake_done = false;
    bool alpn_refused = false;   // set by the ALPN callback (tls_context.h)
    bool recv_armed = false, send_armed = false;
    bool recv_paused = false;    // not read: its send queue is over the cap
    unsigned ops = 0;            // io_uring operations in flight
    // bind: where the media goes
    uint16_t worker = 0, iface = 0, relay_port_be = 0;
    // addresses, network order
    uint32_t client_ip_be = 0, local_ip_be = 0;
    uint16_t client_port_be = 0, local_port_be = 0;
    // receive: at most one frame and its padding (plaintext)
    std::unique_ptr<uint8_t[]> rx;
    size_t rx_len = 0;
    // TLS: the records io_uring receives into, and the SSL on memory BIOs
    std::unique_ptr<uint8_t[]> tls_in;
    SSL* ssl = nullptr;
    BIO* rbio = nullptr; // owned by ssl
    BIO* wbio = nullptr; // owned by ssl
    stream_sendq sq;
    // requests handed to control in the current one-second window
    uint64_t req_window_ns = 0;
    uint32_t req_count = 0;
    // timestamps (steady clock, ns)
    uint64_t opened_ns = 0, last_rx_ns = 0, partial_since_ns = 0, tx_stall_since_ns = 0;

    ~stream_conn();
    void release(); // frees the SSL and the buffers (the fd is the thread's)
    // Bytes the TLS layer still holds of an incomplete record.
    bool tls_partial() const;
};

// STUN requests one connection may hand to control per second; the excess is
// dropped (counted: drop_request_rate). A TURN client sends a handful (an
// Allocate twice, refreshes, permissions, channel binds); a flood from one
// connection must not load control for everyone.
constexpr uint32_t stream_max_requests_per_s = 50;

// Room beyond stream_send_buffer for control's answers (send commands):
// over TCP a client does not retransmit, so a dropped Allocate, Refresh or
// ChannelBind answer would stall it; media, which can be lost, is dropped
// first.
constexpr size_t stream_control_reserve = 8192;

constexpr size_t stream_tls_in_size = 4096;
// What one TLS record adds to a frame at most (header, tag, padding).
constexpr size_t stream_tls_overhead = 64;
// The TLS layer writes without asking queue() (handshake flights, KeyUpdate
// and alert answers). While a connection's send queue is over
// stream_send_buffer the thread stops reading it (what it would read could
// only make more output); past stream_send_buffer + this allowance (one
// 4 KiB read's worth of answers, a certificate chain) it is closed
// (closed_send_overflow).
constexpr size_t stream_tls_send_allowance = 32768;

} // namespace isar::ctl
