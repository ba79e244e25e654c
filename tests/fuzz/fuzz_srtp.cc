// libFuzzer target for SRTP/SRTCP (crypto/srtp_context.h): every engine
// (ipsec_mb where the CPU has it, BoringSSL, libsrtp) unprotects and verifies
// arbitrary bytes with fixed keys, and plaintext built from the input goes
// through protect on one engine and unprotect on every other, which must give
// back the plaintext (abort if not). Engines must also agree on whether a
// packet authenticates.
//
// Input: byte 0 = suite (bits 0-1) and mode (bits 2-3), byte 1 = the engine
// that protects (round trips), the rest = the packet.
//   mode 0: unprotect_rtp + verify_rtp      mode 1: unprotect_rtcp + verify_rtcp
//   mode 2: RTP round trip                  mode 3: RTCP round trip
// tests/fuzz/make_seeds.py writes SRTP/SRTCP packets protected with the keys
// below, so the authenticated (decrypting) paths are reached as well.
// Every context is created fresh per input: replay state never leaks between
// inputs, so a crash reproduces from its file alone.
#include "crypto/srtp_context.h"
#include "crypto/srtp_internal.h"
#include "crypto/suite.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace isar::crypto;

namespace {

constexpr suite suites[4] = {suite::aes_cm_128_hmac_sha1_80, suite::aes_cm_128_hmac_sha1_32,
                             suite::aead_aes_128_gcm, suite::aead_aes_256_gcm};

std::vector<engine> engines;

volatile uint32_t sink;

[[noreturn]] void fail(const char* what, engine a, engine b, status sa, status sb)
{
    std::fprintf(stderr, "fuzz_srtp: %s (%s: %s, %s: %s)\n", what, engine_name(a), status_name(sa),
                 engine_name(b), status_name(sb));
    std::abort();
}

// The key every seed was protected with: key bytes 0x01.., salt 0xa0.. .
key_material key_for(suite s)
{
    key_material km;
    km.s = s;
    for (size_t i = 0; i < km.key_len(); i++)
        km.key[i] = static_cast<uint8_t>(i + 1);
    for (size_t i = 0; i < km.salt_len(); i++)
        km.salt[i] = static_cast<uint8_t>(0xa0 + i);
    return km;
}

std::unique_ptr<srtp_context> make(suite s, engine e)
{
    std::string err;
    auto c = srtp_context::create(key_for(s), e, err);
    if (!c) {
        std::fprintf(stderr, "fuzz_srtp: cannot create %s/%s: %s\n",
                     std::string(suite_name(s)).c_str(), engine_name(e), err.c_str());
        std::abort();
    }
    return c;
}

void write_seeds(const char* dir);

void init_once()
{
    if (!engines.empty())
        return;
    if (detail::ipsec_mb_available())
        engines.push_back(engine::ipsec_mb);
    engines.push_back(engine::boringssl);
    engines.push_back(engine::libsrtp);
    prepare_thread();
    // One libsrtp context alive all along: otherwise every context created
    // and freed per input loads and unloads NSS again (100 inputs/s instead
    // of thousands).
    static auto keep_libsrtp = make(suites[0], engine::libsrtp);
    if (const char* dir = std::getenv("FUZZ_SRTP_WRITE_SEEDS")) {
        write_seeds(dir);
        std::exit(0);
    }
}

void unprotect_all(suite s, bool rtcp, const uint8_t* data, size_t size)
{
    status first = status::ok;
    std::vector<uint8_t> first_out;
    for (size_t i = 0; i < engines.size(); i++) {
        // verify records the packet in the replay window as unprotect does:
        // one context each.
        auto vc = make(s, engines[i]);
        auto c = make(s, engines[i]);
        // Exact-size heap copies: a read past the packet is an ASan error.
        std::vector<uint8_t> v(data, data + size);
        const status vs = rtcp ? vc->verify_rtcp(v.data(), v.size()) : vc->verify_rtp(v.data(), v.size());
        if (vs == status::ok) {
            const status vs2 = rtcp ? vc->verify_rtcp(v.data(), v.size()) : vc->verify_rtp(v.data(), v.size());
            if (vs2 == status::ok)
                fail("replayed packet verified", engines[i], engines[i], vs, vs2);
            if (!std::equal(v.begin(), v.end(), data))
                fail("verify changed the packet", engines[i], engines[i], vs, vs2);
        }
        std::vector<uint8_t> buf(data, data + size);
        size_t out = 0;
        const status st = rtcp ? c->unprotect_rtcp(buf.data(), buf.size(), &out)
                               : c->unprotect_rtp(buf.data(), buf.size(), &out);
        if ((vs == status::ok) != (st == status::ok))
            fail("verify and unprotect disagree", engines[i], engines[i], vs, st);
        if (st == status::ok) {
            if (out > size)
                fail("unprotect grew the packet", engines[i], engines[i], st, st);
            buf.resize(out);
            // A second unprotect of the same packet is a replay.
            std::vector<uint8_t> again(data, data + size);
            size_t out2 = 0;
            const status st2 = rtcp ? c->unprotect_rtcp(again.data(), again.size(), &out2)
                                    : c->unprotect_rtp(again.data(), again.size(), &out2);
            if (st2 == status::ok)
                fail("replayed packet accepted", engines[i], engines[i], st, st2);
        }
        if (i == 0) {
            first = st;
            first_out = buf;
        } else if ((first == status::ok) != (st == status::ok)) {
            fail("engines disagree on authentication", engines[0], engines[i], first, st);
        } else if (st == status::ok && buf != first_out) {
            fail("engines decrypt differently", engines[0], engines[i], first, st);
        }
        uint32_t h = 0;
        for (uint8_t b : buf)
            h = h * 31 + b;
        sink = h;
    }
}

void round_trip(suite s, bool rtcp, engine pe, const uint8_t* data, size_t size)
{
    auto p = make(s, pe);
    std::vector<uint8_t> buf(size + max_trailer);
    if (size != 0)
        std::memcpy(buf.data(), data, size);
    size_t plen = 0;
    const status ps = rtcp ? p->protect_rtcp(buf.data(), size, buf.size(), &plen)
                           : p->protect_rtp(buf.data(), size, buf.size(), &plen);
    if (ps != status::ok)
        return; // not a packet protect accepts
    if (plen > size + max_trailer || plen < size)
        fail("protect returned a bad length", pe, pe, ps, ps);
    for (engine ue : engines) {
        auto vc = make(s, ue);
        auto u = make(s, ue);
        std::vector<uint8_t> c(buf.begin(), buf.begin() + static_cast<long>(plen));
        const status vs = rtcp ? vc->verify_rtcp(c.data(), c.size()) : vc->verify_rtp(c.data(), c.size());
        if (vs != status::ok)
            fail("protected packet does not verify", pe, ue, ps, vs);
        size_t out = 0;
        const status us = rtcp ? u->unprotect_rtcp(c.data(), c.size(), &out)
                               : u->unprotect_rtp(c.data(), c.size(), &out);
        if (us != status::ok)
            fail("protected packet does not unprotect", pe, ue, ps, us);
        if (out != size || (size != 0 && std::memcmp(c.data(), data, size) != 0))
            fail("round trip changed the packet", pe, ue, ps, us);
    }
}

// make_seeds.py runs the replay binary with FUZZ_SRTP_WRITE_SEEDS=<dir>:
// the plaintext seeds found there (mode 2/3 inputs) are protected with every
// suite and written back as mode 0/1 seeds, so no SRTP implementation is
// needed in Python and the seeds always match the keys above.
void write_seeds(const char* dir)
{
    std::vector<std::pair<std::string, std::vector<uint8_t>>> plain;
    for (const char* n : {"plain_rtp_basic", "plain_rtp_csrc_ext", "plain_rtp_padding",
                          "plain_rtcp_sr", "plain_rtcp_rr_sdes"}) {
        const std::string path = std::string(dir) + "/" + n;
        FILE* f = std::fopen(path.c_str(), "rb");
        if (f == nullptr) {
            std::fprintf(stderr, "fuzz_srtp: cannot read %s\n", path.c_str());
            std::exit(1);
        }
        std::vector<uint8_t> b;
        int ch;
        while ((ch = std::fgetc(f)) != EOF)
            b.push_back(static_cast<uint8_t>(ch));
        std::fclose(f);
        plain.emplace_back(n + 6, std::vector<uint8_t>(b.begin() + 2, b.end()));
    }
    for (unsigned si = 0; si < 4; si++) {
        for (const auto& [name, pt] : plain) {
            const bool rtcp = name.rfind("rtcp", 0) == 0;
            auto c = make(suites[si], engine::boringssl);
            std::vector<uint8_t> buf(pt.size() + max_trailer);
            std::memcpy(buf.data(), pt.data(), pt.size());
            size_t len = 0;
            const status st = rtcp ? c->protect_rtcp(buf.data(), pt.size(), buf.size(), &len)
                                   : c->protect_rtp(buf.data(), pt.size(), buf.size(), &len);
            if (st != status::ok) {
                std::fprintf(stderr, "fuzz_srtp: protect %s: %s\n", name.c_str(), status_name(st));
                std::exit(1);
            }
            const std::string path = std::string(dir) + "/s" + name + "_" +
                                     std::string(suite_name(suites[si]));
            FILE* f = std::fopen(path.c_str(), "wb");
            const uint8_t hdr[2] = {static_cast<uint8_t>(si | (rtcp ? 1u : 0u) << 2), 0};
            std::fwrite(hdr, 1, 2, f);
            std::fwrite(buf.data(), 1, len, f);
            std::fclose(f);
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    init_once();
    if (size < 2)
        return 0;
    const suite s = suites[data[0] & 3];
    const unsigned mode = (data[0] >> 2) & 3;
    const engine pe = engines[data[1] % engines.size()];
    data += 2;
    size -= 2;
    if (size > 2048)
        size = 2048;
    switch (mode) {
    case 0:
        unprotect_all(s, false, data, size);
        break;
    case 1:
        unprotect_all(s, true, data, size);
        break;
    case 2:
        round_trip(s, false, pe, data, size);
        break;
    default:
        round_trip(s, true, pe, data, size);
        break;
    }
    return 0;
}
