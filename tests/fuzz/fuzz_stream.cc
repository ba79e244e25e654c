// libFuzzer target for TURN stream framing (turn/stream.h): the input is a
// connection's byte stream. It is framed twice, once whole and once arriving
// in pieces (sizes drawn from the input itself) through a bounded receive
// buffer as the stream threads keep it; both must find the same frames and
// the same end (garbage or not; its reason may depend on how much had
// arrived), and every verdict must respect the bounds (abort if not).
// Each frame is also handed to the STUN / ChannelData parsers.
// tools/fuzz.sh runs it; tests/fuzz/meson.build replays the corpus.
#include "turn/stream.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <vector>

#include "turn/stun.h"

using namespace isar::turn;

namespace {

struct verdict {
    stream_kind kind;
    size_t len;
    stream_garbage why;
    bool operator==(const verdict&) const = default;
};

void check(bool cond)
{
    if (!cond)
        std::abort();
}

volatile size_t sink;

void check_frame(const uint8_t* p, size_t n, const stream_frame& f)
{
    switch (f.kind) {
    case stream_kind::need_more:
        check(f.len >= 1 && n + f.len <= stream_max_buffered);
        break;
    case stream_kind::stun: {
        check(f.len >= header_len && f.len <= stream_max_frame && f.consume == f.len);
        check(f.len % 4 == 0 && f.consume <= n);
        message m;
        sink = static_cast<size_t>(parse(p, f.len, m));
        send_view sv;
        sink = parse_send_indication(p, f.len, sv) ? sv.data_len : 0;
        break;
    }
    case stream_kind::channel_data: {
        check(f.len >= 4 && f.len <= stream_max_frame && f.consume <= n);
        check(f.consume % 4 == 0 && f.consume - f.len < 4);
        uint16_t ch = 0, dlen = 0;
        sink = parse_channel_data(p, f.len, ch, dlen) ? dlen : 0;
        break;
    }
    case stream_kind::garbage:
        check(f.why != stream_garbage::none && f.why < stream_garbage::count);
        break;
    }
}

// Frames `data` arriving in pieces of the given sizes through a bounded
// buffer; returns the frames found, ending with need_more or garbage.
std::vector<verdict> frame(const uint8_t* data, size_t size, const uint8_t* cuts, size_t ncuts)
{
    std::vector<verdict> out;
    std::vector<uint8_t> buf;
    size_t off = 0, c = 0;
    for (;;) {
        // Frame everything buffered.
        for (;;) {
            stream_frame f = stream_next(buf.data(), buf.size());
            check_frame(buf.data(), buf.size(), f);
            if (f.kind == stream_kind::garbage) {
                // Where garbage shows first depends on how much has arrived
                // (4 bytes: a bad length; 8: a bad cookie): only the verdict
                // must agree, not its reason.
                out.push_back({f.kind, 0, stream_garbage::none});
                return out;
            }
            if (f.kind == stream_kind::need_more)
                break;
            out.push_back({f.kind, f.len, f.why});
            buf.erase(buf.begin(), buf.begin() + static_cast<long>(f.consume));
        }
        if (off == size) {
            out.push_back({stream_kind::need_more, 0, stream_garbage::none});
            return out;
        }
        size_t take = ncuts > 0 ? size_t{cuts[c++ % ncuts]} + 1 : size - off;
        take = std::min({take, size - off, stream_max_buffered - buf.size()});
        check(take > 0);
        buf.insert(buf.end(), data + off, data + off + take);
        off += take;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    if (size > 64 * 1024)
        return 0;
    // The first byte says how many of the next bytes are piece sizes.
    size_t ncuts = size > 0 ? std::min<size_t>(data[0] & 15, size - 1) : 0;
    const uint8_t* cuts = size > 0 ? data + 1 : data;
    const uint8_t* s = size > 0 ? data + 1 + ncuts : data;
    const size_t n = size > 0 ? size - 1 - ncuts : 0;
    check(frame(s, n, nullptr, 0) == frame(s, n, cuts, ncuts));
    return 0;
}
