// Replay window, tamper, wrong key, SSRC table limits, no_room, and malformed
// input (including a randomized fuzz loop), for every engine and suite.
#include <gtest/gtest.h>

#include "tests/crypto/crypto_test_util.h"

using namespace isar::crypto;
using namespace isar::crypto::test;

namespace {

struct pair_ctx {
    std::unique_ptr<srtp_context> tx, rx;
};

pair_ctx make_pair(suite s, engine e, std::mt19937& rng)
{
    key_material km = random_key(s, rng);
    std::string err;
    pair_ctx p{srtp_context::create(km, e, err), srtp_context::create(km, e, err)};
    EXPECT_TRUE(p.tx && p.rx) << err;
    return p;
}

packet protect(srtp_context& tx, uint32_t ssrc, uint16_t seq, std::mt19937& rng, size_t payload = 160)
{
    packet p = make_rtp(ssrc, seq, payload, rng);
    EXPECT_EQ(tx.protect_rtp(p.data(), p.len, p.cap(), &p.len), status::ok);
    return p;
}

status unprotect(srtp_context& rx, packet p) // by value: the original stays intact
{
    return rx.unprotect_rtp(p.data(), p.len, &p.len);
}

struct each : ::testing::TestWithParam<std::tuple<suite, engine>> {};

TEST_P(each, replay_window)
{
    auto [s, e] = GetParam();
    std::mt19937 rng(7);
    auto c = make_pair(s, e, rng);
    std::vector<packet> w;
    for (int i = 0; i < 400; ++i) {
        w.push_back(protect(*c.tx, 42, uint16_t(1000 + i), rng));
    }
    EXPECT_EQ(unprotect(*c.rx, w[0]), status::ok);
    EXPECT_EQ(unprotect(*c.rx, w[0]), status::replay);      // same packet twice
    EXPECT_EQ(unprotect(*c.rx, w[300]), status::ok);        // jump ahead
    EXPECT_EQ(unprotect(*c.rx, w[200]), status::ok);        // 100 back: inside the window
    EXPECT_EQ(unprotect(*c.rx, w[173]), status::ok);        // 127 back: last slot
    EXPECT_EQ(unprotect(*c.rx, w[172]), status::replay);    // 128 back: too old
    EXPECT_EQ(unprotect(*c.rx, w[100]), status::replay);    // far too old
    EXPECT_EQ(unprotect(*c.rx, w[200]), status::replay);    // seen
    EXPECT_EQ(unprotect(*c.rx, w[299]), status::ok);        // out of order, unseen
    EXPECT_EQ(unprotect(*c.rx, w[399]), status::ok);
    EXPECT_EQ(unprotect(*c.rx, w[299]), status::replay);

    // verify_rtp shares the window and leaves the packet alone.
    bytes before = w[398].view();
    EXPECT_EQ(c.rx->verify_rtp(w[398].data(), w[398].len), status::ok);
    EXPECT_EQ(w[398].view(), before);
    EXPECT_EQ(c.rx->verify_rtp(w[398].data(), w[398].len), status::replay);
    EXPECT_EQ(unprotect(*c.rx, w[398]), status::replay);
}

TEST_P(each, rtcp_replay)
{
    auto [s, e] = GetParam();
    std::mt19937 rng(8);
    auto c = make_pair(s, e, rng);
    std::vector<packet> w;
    for (int i = 0; i < 3; ++i) {
        packet p = make_rtcp(42, 6, rng);
        ASSERT_EQ(c.tx->protect_rtcp(p.data(), p.len, p.cap(), &p.len), status::ok);
        w.push_back(p);
    }
    auto un = [&](packet p) { return c.rx->unprotect_rtcp(p.data(), p.len, &p.len); };
    EXPECT_EQ(un(w[1]), status::ok);
    EXPECT_EQ(un(w[1]), status::replay);
    EXPECT_EQ(un(w[0]), status::ok); // out of order, inside the window
    EXPECT_EQ(c.rx->verify_rtcp(w[2].data(), w[2].len), status::ok);
    EXPECT_EQ(un(w[2]), status::replay);
}

TEST_P(each, tamper_and_wrong_key)
{
    auto [s, e] = GetParam();
    std::mt19937 rng(9);
    auto c = make_pair(s, e, rng);
    packet good = protect(*c.tx, 42, 5, rng);
    const size_t tag = suite_rtp_tag_len(s);
    for (size_t pos : {size_t(2), size_t(12), good.len / 2, good.len - tag - 1, good.len - tag,
                 good.len - 1}) {
        packet t = good;
        t.data()[pos] ^= 0x20;
        EXPECT_EQ(unprotect(*c.rx, t), status::auth_fail) << "byte " << pos;
        EXPECT_EQ(c.rx->verify_rtp(t.data(), t.len), status::auth_fail) << "byte " << pos;
    }
    // Failed attempts did not touch the replay state: the genuine packet passes.
    EXPECT_EQ(unprotect(*c.rx, good), status::ok);

    // Another key.
    auto other = make_pair(s, e, rng);
    packet p = protect(*c.tx, 42, 6, rng);
    EXPECT_EQ(unprotect(*other.rx, p), status::auth_fail);

    // SRTCP: tag and body.
    packet r = make_rtcp(42, 5, rng);
    ASSERT_EQ(c.tx->protect_rtcp(r.data(), r.len, r.cap(), &r.len), status::ok);
    for (size_t pos : {size_t(1), size_t(9), r.len - 5, r.len - 1}) {
        packet t = r;
        t.data()[pos] ^= 0x01;
        EXPECT_EQ(c.rx->unprotect_rtcp(t.data(), t.len, &t.len), status::auth_fail) << pos;
    }
    EXPECT_EQ(c.rx->unprotect_rtcp(r.data(), r.len, &r.len), status::ok);
    packet r2 = make_rtcp(42, 5, rng);
    ASSERT_EQ(c.tx->protect_rtcp(r2.data(), r2.len, r2.cap(), &r2.len), status::ok);
    EXPECT_EQ(other.rx->unprotect_rtcp(r2.data(), r2.len, &r2.len), status::auth_fail);
}

TEST_P(each, ssrc_limit_and_no_room)
{
    auto [s, e] = GetParam();
    std::mt19937 rng(10);
    auto c = make_pair(s, e, rng);
    for (uint32_t ssrc = 1; ssrc <= max_ssrcs; ++ssrc) {
        packet p = protect(*c.tx, ssrc, 1, rng);
        EXPECT_EQ(unprotect(*c.rx, p), status::ok) << ssrc;
    }
    packet extra = make_rtp(1000, 1, 20, rng);
    EXPECT_EQ(c.tx->protect_rtp(extra.data(), extra.len, extra.cap(), &extra.len), status::ssrc_limit);
    // Known SSRCs keep working.
    EXPECT_EQ(unprotect(*c.rx, protect(*c.tx, 3, 2, rng)), status::ok);

    auto c2 = make_pair(s, e, rng);
    packet x = protect(*c2.tx, 1000, 1, rng);
    EXPECT_EQ(unprotect(*c.rx, x), status::ssrc_limit);

    packet tight = make_rtp(1, 3, 20, rng);
    EXPECT_EQ(c.tx->protect_rtp(tight.data(), tight.len, tight.len + suite_rtp_tag_len(s) - 1,
                      &tight.len),
            status::no_room);
    packet r = make_rtcp(1, 2, rng);
    EXPECT_EQ(c.tx->protect_rtcp(r.data(), r.len, r.len + 3, &r.len), status::no_room);
}

TEST_P(each, malformed)
{
    auto [s, e] = GetParam();
    std::mt19937 rng(11);
    auto c = make_pair(s, e, rng);
    const size_t tag = suite_rtp_tag_len(s);
    size_t out = 0;
    uint8_t buf[256] = {};
    // Too short for header + tag.
    buf[0] = 0x80;
    for (size_t len = 0; len < 12 + tag; ++len) {
        EXPECT_EQ(c.rx->unprotect_rtp(buf, len, &out), status::too_short) << len;
        EXPECT_EQ(c.rx->verify_rtp(buf, len), status::too_short) << len;
    }
    EXPECT_EQ(c.tx->protect_rtp(buf, 11, sizeof buf, &out), status::too_short);
    // Not version 2.
    buf[0] = 0x40;
    EXPECT_EQ(c.rx->unprotect_rtp(buf, 100, &out), status::bad_packet);
    EXPECT_EQ(c.tx->protect_rtp(buf, 100, sizeof buf, &out), status::bad_packet);
    // 15 CSRCs do not fit in 40 bytes.
    buf[0] = 0x8f;
    EXPECT_EQ(c.rx->unprotect_rtp(buf, 40 + tag, &out), status::bad_packet);
    EXPECT_EQ(c.tx->protect_rtp(buf, 40, sizeof buf, &out), status::bad_packet);
    // Extension header cut off, and extension length past the end.
    buf[0] = 0x90;
    EXPECT_EQ(c.rx->unprotect_rtp(buf, 14 + tag, &out), status::bad_packet);
    buf[14] = 0x01;
    buf[15] = 0x00; // 256 words
    EXPECT_EQ(c.rx->unprotect_rtp(buf, 40 + tag, &out), status::bad_packet);
    EXPECT_EQ(c.rx->verify_rtp(buf, 40 + tag), status::bad_packet);
    EXPECT_EQ(c.tx->protect_rtp(buf, 40, sizeof buf, &out), status::bad_packet);
    // SRTCP shorter than header + index + tag.
    buf[0] = 0x80;
    const size_t trailer = 4 + suite_rtcp_tag_len(s);
    for (size_t len = 0; len < 8 + trailer; ++len) {
        EXPECT_EQ(c.rx->unprotect_rtcp(buf, len, &out), status::too_short) << len;
        EXPECT_EQ(c.rx->verify_rtcp(buf, len), status::too_short) << len;
    }
    EXPECT_EQ(c.tx->protect_rtcp(buf, 7, sizeof buf, &out), status::too_short);
    buf[0] = 0x00;
    EXPECT_EQ(c.rx->unprotect_rtcp(buf, 60, &out), status::bad_packet);
}

// Random garbage and random mutations of genuine packets: never ok unless the
// packet is genuine, never a crash (run under ASan in CI to catch overreads).
TEST_P(each, fuzz)
{
    auto [s, e] = GetParam();
    std::mt19937 rng(12 + int(s) + 16 * int(e));
    auto c = make_pair(s, e, rng);
    int oks = 0;
    for (int i = 0; i < 3000; ++i) {
        packet p = protect(*c.tx, 42, uint16_t(i), rng, rng() % 64);
        bytes b(p.buf.begin(), p.buf.begin() + long(p.len));
        switch (rng() % 4) {
        case 0: // random bytes, random length
            b.resize(rng() % 80);
            for (auto& x : b) {
                x = uint8_t(rng());
            }
            if (!b.empty() && rng() % 2 == 0) {
                b[0] = uint8_t(0x80 | (rng() & 0x3f));
            }
            break;
        case 1: // truncated
            b.resize(rng() % (b.size() + 1));
            break;
        case 2: // a flipped byte in the header (CC, X, lengths...)
            b[rng() % 16 % b.size()] ^= uint8_t(1 + rng() % 255);
            break;
        default: // genuine
            break;
        }
        bytes copy = b;
        size_t out = 0;
        status st;
        if (rng() % 2 == 0) {
            st = c.rx->verify_rtp(b.data(), b.size());
            EXPECT_EQ(b, copy);
        } else {
            st = c.rx->unprotect_rtp(b.data(), b.size(), &out);
        }
        if (st == status::ok) {
            ++oks;
            EXPECT_EQ(copy, p.view()) << "a modified packet was accepted";
        }
        bytes r = b;
        r.resize(r.size() + max_trailer);
        (void)c.rx->unprotect_rtcp(r.data(), b.size(), &out);
        (void)c.rx->verify_rtcp(r.data(), b.size());
        (void)c.tx->protect_rtcp(r.data(), b.size(), r.size(), &out);
    }
    EXPECT_GT(oks, 300); // the genuine quarter went through
}

std::vector<std::tuple<suite, engine>> params()
{
    std::vector<std::tuple<suite, engine>> v;
    for (suite s : all_suites()) {
        for (engine e : all_engines()) {
            v.emplace_back(s, e);
        }
    }
    return v;
}

INSTANTIATE_TEST_SUITE_P(all, each, ::testing::ValuesIn(params()), [](const auto& tp) {
    return std::string(suite_name(std::get<0>(tp.param))) + "_" +
           engine_name(std::get<1>(tp.param));
});

TEST(create, rejects_none_and_reports_engines)
{
    key_material km;
    std::string err;
    EXPECT_EQ(srtp_context::create(km, engine::auto_select, err), nullptr);
    EXPECT_FALSE(err.empty());
    std::mt19937 rng(1);
    for (suite s : all_suites()) {
        km = random_key(s, rng);
        auto c = srtp_context::create(km, engine::auto_select, err);
        ASSERT_TRUE(c) << err;
        EXPECT_EQ(c->get_suite(), s);
        EXPECT_EQ(c->get_engine(), auto_engine(s));
        EXPECT_NE(c->get_engine(), engine::libsrtp);
    }
    EXPECT_TRUE(prepare_thread());
    EXPECT_STREQ(status_name(status::auth_fail), "auth_fail");
    EXPECT_STREQ(engine_name(engine::ipsec_mb), "ipsec_mb");
}

} // namespace
