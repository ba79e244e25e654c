// TURN over TCP and TLS (RFC 8656 §12.5, RFC 5766 §11.5): finding the frames
// in a connection's byte stream. A stream carries STUN messages (first two
// bits 00, magic cookie, length a multiple of 4) and ChannelData (channel
// 0x4000-0x7FFF, padded to a multiple of 4 over TCP) back to back, nothing
// else. Pure: no allocation, no I/O, safe on any input.
#pragma once

#include <cstddef>
#include <cstdint>

namespace isar::turn {

// The largest frame (header included, padding excluded) a stream may carry.
// A STUN request or Send indication and a ChannelData with an MTU-sized
// datagram fit; anything larger is not media and not a sane request, and
// bounds what a connection may make Isar buffer before a whole frame is in.
constexpr size_t stream_max_frame = 4096;
// A connection's receive buffer holds one whole frame and its padding.
constexpr size_t stream_max_buffered = stream_max_frame + 3;

enum class stream_kind : uint8_t {
    need_more,    // no whole frame yet: keep reading (len: bytes still missing, >= 1)
    stun,         // a STUN message of `len` bytes (20 + its length field)
    channel_data, // ChannelData: `len` = 4 + its length, `consume` adds the padding
    garbage,      // not a TURN stream: end the connection (`why` says what)
};

enum class stream_garbage : uint8_t {
    none,
    bad_first_byte,  // neither 00xxxxxx (STUN) nor 01xxxxxx (channel 0x4000-0x7FFF)
    bad_cookie,      // STUN without the magic cookie (RFC 5389 and later only)
    bad_length,      // STUN length not a multiple of 4
    too_long,        // over stream_max_frame
    count
};
const char* stream_garbage_name(stream_garbage g) noexcept;

struct stream_frame {
    stream_kind kind = stream_kind::need_more;
    size_t len = 0;     // the frame (stun, channel_data); bytes missing (need_more)
    size_t consume = 0; // what to drop from the buffer once handled (len + padding)
    stream_garbage why = stream_garbage::none;
};

// Looks at the first bytes buffered for a connection. `n` may be anything,
// including 0 (need_more). Garbage is reported as soon as the first bytes
// show it (a bad first byte after 1 byte, a bad cookie after 8), so a hostile
// client cannot make Isar wait for a frame that can never be valid.
// ChannelData needs its padding too before it is a whole frame: the padding
// belongs to it on the wire (the last frame of a stream is always padded).
stream_frame stream_next(const uint8_t* p, size_t n) noexcept;

} // namespace isar::turn
