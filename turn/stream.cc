// TURN stream framing (stream.h).
#include "turn/stream.h"

#include "turn/stun.h"

namespace isar::turn {

const char* stream_garbage_name(stream_garbage g) noexcept
{
    switch (g) {
    case stream_garbage::none:
        return "none";
    case stream_garbage::bad_first_byte:
        return "bad_first_byte";
    case stream_garbage::bad_cookie:
        return "bad_cookie";
    case stream_garbage::bad_length:
        return "bad_length";
    case stream_garbage::too_long:
        return "too_long";
    case stream_garbage::count:
        break;
    }
    return "?";
}

namespace {

stream_frame garbage(stream_garbage why) noexcept
{
    stream_frame f;
    f.kind = stream_kind::garbage;
    f.why = why;
    return f;
}

stream_frame need(size_t have, size_t want) noexcept
{
    stream_frame f;
    f.kind = stream_kind::need_more;
    f.len = want - have;
    return f;
}

stream_frame stun_frame(const uint8_t* p, size_t n) noexcept
{
    // Check what is there as early as it is there.
    if (n >= 8) {
        const uint32_t cookie = uint32_t{p[4]} << 24 | uint32_t{p[5]} << 16 |
                                uint32_t{p[6]} << 8 | p[7];
        if (cookie != magic_cookie)
            return garbage(stream_garbage::bad_cookie);
    }
    if (n < 4)
        return need(n, header_len);
    const size_t body = size_t{p[2]} << 8 | p[3];
    if (body % 4 != 0)
        return garbage(stream_garbage::bad_length);
    const size_t len = header_len + body;
    if (len > stream_max_frame)
        return garbage(stream_garbage::too_long);
    if (n < len)
        return need(n, len);
    stream_frame f;
    f.kind = stream_kind::stun;
    f.len = len;
    f.consume = len;
    return f;
}

stream_frame channel_frame(const uint8_t* p, size_t n) noexcept
{
    if (n < 4)
        return need(n, 4);
    const size_t len = 4 + (size_t{p[2]} << 8 | p[3]);
    if (len > stream_max_frame)
        return garbage(stream_garbage::too_long);
    const size_t padded = (len + 3) & ~size_t{3};
    if (n < padded)
        return need(n, padded);
    stream_frame f;
    f.kind = stream_kind::channel_data;
    f.len = len;
    f.consume = padded;
    return f;
}

} // namespace

stream_frame stream_next(const uint8_t* p, size_t n) noexcept
{
    if (n == 0)
        return need(0, 1);
    switch (p[0] >> 6) {
    case 0:
        return stun_frame(p, n);
    case 1:
        return channel_frame(p, n);
    default:
        return garbage(stream_garbage::bad_first_byte);
    }
}

} // namespace isar::turn
