// One stream thread's TLS: records in, plaintext out, through BoringSSL on
// memory BIOs (the thread's io_uring does the socket I/O). See
// stream_thread.h.
#include "control/stream_thread.h"

#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace isar::ctl {

// Feeds `n` received bytes to the SSL; runs the handshake, then reads the
// plaintext into rx and frames it. False when the connection was closed.
bool stream_thread::tls_in(stream_conn& c, size_t n, uint64_t now)
{
    BIO_write(c.rbio, c.tls_in.get(), static_cast<int>(n));
    if (!c.handshake_done) {
        const int r = SSL_do_handshake(c.ssl);
        flush_tls(c);
        const int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c.ssl, r);
        if (r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            if (c.alpn_refused)
                ctr_.add(stream_ctr::tls_alpn_refused);
            ERR_clear_error();
            send_alert(c);
            close(c, stream_close::tls_error, true);
            return false;
        }
        kick_send(c, now);
        if (r != 1)
            return true;
        c.handshake_done = true;
        ctr_.add(stream_ctr::tls_handshakes);
    }
    for (;;) {
        const size_t room = turn::stream_max_buffered - c.rx_len;
        const int r = SSL_read(c.ssl, c.rx.get() + c.rx_len, static_cast<int>(room));
        if (r <= 0) {
            const int e = SSL_get_error(c.ssl, r);
            flush_tls(c); // e.g. a KeyUpdate answer
            kick_send(c, now);
            if (e == SSL_ERROR_WANT_READ)
                break;
            ERR_clear_error();
            close(c, e == SSL_ERROR_ZERO_RETURN ? stream_close::peer : stream_close::tls_error,
                  true);
            return false;
        }
        ctr_.add(stream_ctr::rx_bytes, static_cast<uint64_t>(r));
        c.rx_len += static_cast<size_t>(r);
        if (!take_frames(c, now))
            return false;
    }
    if (c.tls_partial() && c.partial_since_ns == 0)
        c.partial_since_ns = now;
    return true;
}

// Moves what the SSL wrote into its memory BIO to the send queue.
void stream_thread::flush_tls(stream_conn& c)
{
    const uint8_t* data = nullptr;
    size_t len = 0;
    if (c.wbio == nullptr || BIO_mem_contents(c.wbio, &data, &len) != 1 || len == 0)
        return;
    c.sq.pending.insert(c.sq.pending.end(), data, data + len);
    ctr_.add(stream_ctr::send_buffer_bytes, len);
    BIO_reset(c.wbio);
}

// A failed handshake's alert (e.g. no_application_protocol) goes out at once
// with one non-blocking send, best effort, so the client learns why; the
// connection closes right after and must not wait on a client that may never
// read.
void stream_thread::send_alert(stream_conn& c)
{
    if (c.send_armed || !c.sq.next())
        return;
    const ssize_t n = ::send(c.fd, c.sq.inflight.data() + c.sq.off,
                             c.sq.inflight.size() - c.sq.off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
        c.sq.sent(static_cast<size_t>(n));
        ctr_.add(stream_ctr::tx_bytes, static_cast<uint64_t>(n));
        ctr_.sub(stream_ctr::send_buffer_bytes, static_cast<uint64_t>(n));
    }
}

} // namespace isar::ctl
