// One TURN-over-TCP/TLS connection (stream_conn.h).
#include "control/stream_conn.h"

#include <openssl/bio.h>
#include <openssl/ssl.h>

namespace isar::ctl {

const char* stream_close_name(stream_close why) noexcept
{
    switch (why) {
    case stream_close::peer:
        return "peer closed";
    case stream_close::control:
        return "closed by control";
    case stream_close::garbage:
        return "not TURN framing";
    case stream_close::tls_error:
        return "TLS error";
    case stream_close::io_error:
        return "socket error";
    case stream_close::idle:
        return "timeout: no allocation";
    case stream_close::handshake:
        return "timeout: TLS handshake";
    case stream_close::partial:
        return "timeout: incomplete frame";
    case stream_close::send_stall:
        return "timeout: client not reading";
    case stream_close::keepalive:
        return "timeout: client gone (keepalive)";
    case stream_close::send_overflow:
        return "TLS output over the send buffer (client not reading)";
    case stream_close::shutdown:
        return "server stopping";
    }
    return "?";
}

bool stream_sendq::next()
{
    if (off == inflight.size()) {
        inflight.clear();
        off = 0;
        inflight.swap(pending);
    }
    return off < inflight.size();
}

void stream_sendq::sent(size_t n)
{
    off += n;
    if (off > inflight.size())
        off = inflight.size();
}

void stream_sendq::trim()
{
    constexpr size_t keep = 4096; // about three media frames
    if (off == inflight.size() && inflight.capacity() > keep) {
        std::vector<uint8_t>().swap(inflight);
        off = 0;
    }
    if (pending.empty() && pending.capacity() > keep)
        std::vector<uint8_t>().swap(pending);
}

stream_conn::~stream_conn()
{
    release();
}

void stream_conn::release()
{
    if (ssl != nullptr)
        SSL_free(ssl); // frees rbio and wbio
    ssl = nullptr;
    rbio = wbio = nullptr;
    rx.reset();
    tls_in.reset();
    std::vector<uint8_t>().swap(sq.inflight);
    std::vector<uint8_t>().swap(sq.pending);
    sq.off = 0;
    rx_len = 0;
}

bool stream_conn::tls_partial() const
{
    return rbio != nullptr && BIO_pending(rbio) > 0;
}

} // namespace isar::ctl
