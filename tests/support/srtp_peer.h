// The peers' side of SRTP in dataplane tests: a context of another engine
// than the relay's (by default Isar's libsrtp engine, Debian's libsrtp2) with
// the same keys, and RTP protected into a fresh byte vector.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "crypto/srtp_context.h"
#include "crypto/suite.h"

namespace isar::test {

inline std::unique_ptr<crypto::srtp_context> srtp_peer(const crypto::key_material& k,
                                                       crypto::engine e = crypto::engine::libsrtp)
{
    std::string err;
    auto c = crypto::srtp_context::create(k, e, err);
    EXPECT_TRUE(c) << err;
    return c;
}

// `p` (an RTP packet) protected by `c`; a failure is a test failure.
inline std::vector<uint8_t> srtp_protect(crypto::srtp_context& c, std::vector<uint8_t> p)
{
    const size_t len = p.size();
    p.resize(len + crypto::max_trailer);
    size_t out = 0;
    EXPECT_EQ(c.protect_rtp(p.data(), len, p.size(), &out), crypto::status::ok);
    p.resize(out);
    return p;
}

} // namespace isar::test
