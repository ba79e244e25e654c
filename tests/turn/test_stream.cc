// TURN stream framing (turn/stream.h): STUN messages and padded ChannelData
// back to back over TCP, need-more at every split, garbage early.
#include "turn/stream.h"

#include <gtest/gtest.h>
#include <vector>

#include "turn/stun.h"

using namespace isar::turn;

namespace {

using bytes = std::vector<uint8_t>;

bytes stun_msg(uint16_t type, uint16_t body)
{
    bytes m(20 + body, 0);
    m[0] = static_cast<uint8_t>(type >> 8);
    m[1] = static_cast<uint8_t>(type);
    m[2] = static_cast<uint8_t>(body >> 8);
    m[3] = static_cast<uint8_t>(body);
    m[4] = 0x21, m[5] = 0x12, m[6] = 0xa4, m[7] = 0x42;
    for (size_t i = 8; i < 20; i++)
        m[i] = static_cast<uint8_t>(i);
    return m;
}

bytes channel_data(uint16_t ch, uint16_t len, bool pad)
{
    bytes m(4 + len, 0xab);
    m[0] = static_cast<uint8_t>(ch >> 8);
    m[1] = static_cast<uint8_t>(ch);
    m[2] = static_cast<uint8_t>(len >> 8);
    m[3] = static_cast<uint8_t>(len);
    if (pad)
        m.resize((m.size() + 3) & ~size_t{3}, 0);
    return m;
}

TEST(stream, empty_needs_more)
{
    auto f = stream_next(nullptr, 0);
    EXPECT_EQ(f.kind, stream_kind::need_more);
    EXPECT_EQ(f.len, 1u);
}

TEST(stream, stun_whole_and_every_split)
{
    const bytes m = stun_msg(0x0003, 16);
    auto f = stream_next(m.data(), m.size());
    ASSERT_EQ(f.kind, stream_kind::stun);
    EXPECT_EQ(f.len, 36u);
    EXPECT_EQ(f.consume, 36u);
    for (size_t n = 1; n < m.size(); n++) {
        auto g = stream_next(m.data(), n);
        EXPECT_EQ(g.kind, stream_kind::need_more) << n;
        EXPECT_GE(g.len, 1u) << n;
        EXPECT_LE(n + g.len, m.size()) << n;
    }
}

TEST(stream, stun_followed_by_more)
{
    bytes m = stun_msg(0x0001, 0);
    bytes c = channel_data(0x4001, 5, true);
    m.insert(m.end(), c.begin(), c.end());
    auto f = stream_next(m.data(), m.size());
    ASSERT_EQ(f.kind, stream_kind::stun);
    EXPECT_EQ(f.consume, 20u);
    auto g = stream_next(m.data() + 20, m.size() - 20);
    ASSERT_EQ(g.kind, stream_kind::channel_data);
    EXPECT_EQ(g.len, 9u);
    EXPECT_EQ(g.consume, 12u);
}

TEST(stream, channel_data_padding)
{
    for (uint16_t len : {0, 1, 2, 3, 4, 5, 100, 1203}) {
        bytes c = channel_data(0x7fff, len, true);
        auto f = stream_next(c.data(), c.size());
        ASSERT_EQ(f.kind, stream_kind::channel_data) << len;
        EXPECT_EQ(f.len, 4u + len);
        EXPECT_EQ(f.consume, c.size());
        EXPECT_EQ(f.consume % 4, 0u);
        // Without its padding it is not whole yet (unless none is needed).
        auto g = stream_next(c.data(), 4u + len);
        if (len % 4 == 0)
            EXPECT_EQ(g.kind, stream_kind::channel_data);
        else
            EXPECT_EQ(g.kind, stream_kind::need_more);
    }
}

TEST(stream, garbage_first_byte_at_once)
{
    for (uint8_t b : {0x80, 0xc0, 0xff, 0x16 /* TLS to a TCP port is 0x16: STUN-looking */}) {
        const uint8_t one[1] = {b};
        auto f = stream_next(one, 1);
        if (b >> 6 == 0)
            EXPECT_EQ(f.kind, stream_kind::need_more);
        else {
            EXPECT_EQ(f.kind, stream_kind::garbage);
            EXPECT_EQ(f.why, stream_garbage::bad_first_byte);
        }
    }
    // "GET / HTTP/1.1": 'G' = 0x47 looks like a channel (0x4745) with length
    // 0x5420 > max: garbage after 4 bytes.
    const char* http = "GET / HTTP/1.1\r\n";
    auto f = stream_next(reinterpret_cast<const uint8_t*>(http), 16);
    EXPECT_EQ(f.kind, stream_kind::garbage);
    EXPECT_EQ(f.why, stream_garbage::too_long);
}

TEST(stream, tls_client_hello_on_tcp_port_is_garbage)
{
    // 16 03 01 02 00 01 00 01 fc 03 03: STUN-looking first byte, no cookie.
    const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03};
    auto f = stream_next(hello, sizeof hello);
    EXPECT_EQ(f.kind, stream_kind::garbage);
    EXPECT_EQ(f.why, stream_garbage::bad_cookie);
}

TEST(stream, stun_bad_length_and_too_long)
{
    bytes m = stun_msg(0x0003, 16);
    m[3] = 17;
    EXPECT_EQ(stream_next(m.data(), 4).why, stream_garbage::bad_length);
    bytes big = stun_msg(0x0003, 0);
    big[2] = 0x10, big[3] = 0x00; // 4096 + 20
    EXPECT_EQ(stream_next(big.data(), 20).why, stream_garbage::too_long);
    bytes fits = stun_msg(0x0003, static_cast<uint16_t>(stream_max_frame - 20));
    EXPECT_EQ(stream_next(fits.data(), fits.size()).kind, stream_kind::stun);
}

TEST(stream, channel_too_long)
{
    bytes c = channel_data(0x4000, static_cast<uint16_t>(stream_max_frame - 4), false);
    EXPECT_EQ(stream_next(c.data(), c.size()).kind, stream_kind::channel_data);
    c[2] = 0x10, c[3] = 0x00; // 4096 + 4
    auto f = stream_next(c.data(), 4);
    EXPECT_EQ(f.kind, stream_kind::garbage);
    EXPECT_EQ(f.why, stream_garbage::too_long);
    EXPECT_STREQ(stream_garbage_name(f.why), "too_long");
}

TEST(stream, max_buffered_holds_any_frame)
{
    bytes c = channel_data(0x4000, static_cast<uint16_t>(stream_max_frame - 5), true);
    EXPECT_LE(c.size(), stream_max_buffered);
    EXPECT_EQ(stream_next(c.data(), c.size()).consume, c.size());
}

} // namespace
