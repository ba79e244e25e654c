// TURN over TCP and TLS as the dataplane sees it: connections are served by
// stream threads outside the dataplane (control/stream_server.h), which put
// a client's ChannelData and Send indications on the owning worker's
// stream-in ring and take the frames for the client from its stream-out
// ring. A connection is named by a token on both rings.
//
// stream-in (thread t -> worker w, single producer, single consumer): an
// mbuf holding a stream_frame_hdr and then the frame exactly as the client
// sent it (ChannelData, with or without its TCP padding, or a Send
// indication); at least 64 bytes of headroom for the worker's headers.
// stream-out (worker w -> thread t, single producer, single consumer): an
// mbuf holding just the frame for the client (ChannelData padded to 4 bytes
// as RFC 8656 §12.5 asks over TCP, or a Data indication), the token in
// m->hash.usr.
#pragma once

#include <cstdint>

namespace isar::dp {

constexpr unsigned max_stream_threads = 16;

// thread (4 bits) | generation (8 bits) | slot (20 bits); never 0 (a
// connection's generation starts at 1). A token whose slot was reused is
// stale: whoever holds state for it ignores what arrives with the old one.
constexpr uint32_t stream_max_slots = 1u << 20;
constexpr uint32_t make_stream_token(unsigned thread, unsigned gen, uint32_t slot) noexcept
{
    return (uint32_t{thread} << 28) | (uint32_t{gen & 0xffu} << 20) | (slot & 0xfffffu);
}
constexpr unsigned stream_thread_of(uint32_t token) noexcept { return token >> 28; }
constexpr uint32_t stream_slot_of(uint32_t token) noexcept { return token & 0xfffffu; }

// The first bytes of a stream-in mbuf. The worker finds the allocation by
// (iface, relay port) in its flow table and relays only when the
// allocation's stream token is `token`.
struct stream_frame_hdr {
    uint32_t token;
    uint16_t relay_port_be;
    uint16_t iface;
};
static_assert(sizeof(stream_frame_hdr) == 8);

} // namespace isar::dp
