// A stream thread's two lanes (stream_thread.h, stream_hub.h): frames cut
// from a connection go to control (requests, policed) or to the owning
// worker (media); control's commands and the workers' frames come back.
#include "control/stream_thread.h"

#include <algorithm>
#include <cstring>

#include <rte_mbuf.h>
#include <rte_ring.h>

#include "control/log.h"
#include "turn/stun.h"

namespace isar::ctl {

namespace {
constexpr unsigned out_burst = 32;
} // namespace

// The thread's token bucket (req_rate_ per second, one second's burst).
bool stream_thread::police_request(uint64_t now)
{
    if (req_rate_ <= 0)
        return true;
    if (now > req_refill_ns_) {
        req_tokens_ = std::min(req_rate_, req_tokens_ + double(now - req_refill_ns_) * 1e-9 *
                                                                req_rate_);
        req_refill_ns_ = now;
    }
    if (req_tokens_ < 1.0)
        return false;
    req_tokens_ -= 1.0;
    return true;
}

void stream_thread::on_frame(stream_conn& c, const uint8_t* p, const turn::stream_frame& f)
{
    if (c.lingering) { // its allocation is gone: nothing more is taken
        ctr_.add(stream_ctr::rx_ignored);
        return;
    }
    if (f.kind == turn::stream_kind::channel_data) {
        to_worker(c, p, f.len);
        return;
    }
    const uint16_t type = static_cast<uint16_t>(p[0] << 8 | p[1]);
    if (type == turn::send_indication_type) {
        to_worker(c, p, f.len);
        return;
    }
    if (turn::type_class(type) != turn::msg_class::request) {
        ctr_.add(stream_ctr::rx_ignored);
        return;
    }
    if (c.last_rx_ns - c.req_window_ns >= 1'000'000'000) {
        c.req_window_ns = c.last_rx_ns;
        c.req_count = 0;
    }
    if (++c.req_count > stream_max_requests_per_s) {
        ctr_.add(stream_ctr::drop_request_rate);
        return;
    }
    if (!police_request(c.last_rx_ns)) {
        ctr_.add(stream_ctr::drop_request_policed);
        return;
    }
    stream_event e = event_of(c, stream_event::request);
    e.msg.assign(p, p + f.len);
    if (!srv_.hub().post(id_, std::move(e))) {
        ctr_.add(stream_ctr::drop_request_hub_full);
        return;
    }
    ctr_.add(stream_ctr::rx_requests);
    last_request_ = c.last_rx_ns;
}

void stream_thread::to_worker(stream_conn& c, const uint8_t* p, size_t n)
{
    if (!c.bound) {
        ctr_.add(stream_ctr::drop_not_bound);
        return;
    }
    rte_mbuf* m = rte_pktmbuf_alloc(srv_.dp().pool);
    if (m == nullptr) {
        ctr_.add(stream_ctr::drop_no_mbuf);
        return;
    }
    auto* d = rte_pktmbuf_mtod(m, uint8_t*);
    if (rte_pktmbuf_append(m, static_cast<uint16_t>(sizeof(stream_frame_hdr) + n)) == nullptr) {
        rte_pktmbuf_free(m); // a frame larger than an mbuf: not media
        ctr_.add(stream_ctr::drop_too_big);
        return;
    }
    const stream_frame_hdr h{c.token, c.relay_port_be, c.iface};
    std::memcpy(d, &h, sizeof h);
    std::memcpy(d + sizeof h, p, n);
    if (rte_ring_sp_enqueue(srv_.dp().ring_in(id_, c.worker), m) != 0) {
        rte_pktmbuf_free(m);
        ctr_.add(stream_ctr::drop_ring_full);
        return;
    }
    ctr_.add(stream_ctr::rx_media);
    ctr_.add(stream_ctr::rx_media_bytes, n);
}

void stream_thread::take_commands(uint64_t now)
{
    cmds_.clear();
    srv_.hub().take_commands(id_, cmds_);
    for (auto& cmd : cmds_) {
        stream_conn* c = find(cmd.token);
        if (c == nullptr) {
            ctr_.add(stream_ctr::stale_commands);
            continue;
        }
        switch (cmd.kind) {
        case stream_command::send:
            if (queue(*c, cmd.msg.data(), cmd.msg.size(), true))
                kick_send(*c, now);
            break;
        case stream_command::bind:
            if (cmd.worker >= srv_.dp().nworkers) {
                ctr_.add(stream_ctr::stale_commands);
                break;
            }
            if (!c->bound) {
                nbound_++;
                ctr_.add(stream_ctr::bound);
            }
            c->bound = true;
            c->worker = cmd.worker;
            c->iface = cmd.iface;
            c->relay_port_be = cmd.relay_port_be;
            break;
        case stream_command::close:
            linger(*c, now);
            break;
        }
    }
}

unsigned stream_thread::drain_workers(uint64_t now)
{
    unsigned taken = 0;
    const stream_dp& d = srv_.dp();
    rte_mbuf* ms[out_burst];
    for (unsigned w = 0; w < d.nworkers; w++) {
        rte_ring* r = d.ring_out(w, id_);
        if (r == nullptr)
            continue;
        const unsigned n = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void**>(ms), out_burst,
                                                     nullptr);
        taken += n;
        for (unsigned i = 0; i < n; i++) {
            rte_mbuf* m = ms[i];
            stream_conn* c = find(static_cast<uint32_t>(m->hash.usr));
            const uint32_t len = rte_pktmbuf_pkt_len(m);
            if (c == nullptr) {
                ctr_.add(stream_ctr::drop_stale);
            } else if (len > turn::stream_max_frame) {
                ctr_.add(stream_ctr::drop_too_big);
            } else {
                const auto* p = static_cast<const uint8_t*>(
                        rte_pktmbuf_read(m, 0, len, scratch_.get()));
                if (p != nullptr && queue(*c, p, len)) {
                    ctr_.add(stream_ctr::tx_media);
                    kick_send(*c, now);
                }
            }
            rte_pktmbuf_free(m);
        }
    }
    return taken;
}

} // namespace isar::ctl
