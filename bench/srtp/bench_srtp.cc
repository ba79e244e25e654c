// bench_srtp: SRTP protect / unprotect / transcrypt per suite x engine x payload.
//
// Every iteration copies one packet (12-byte header + payload) into a work
// buffer and runs the operation on it, as the dataplane does on mbuf data.
// unprotect and transcrypt cycle through 4096 pre-protected packets and make
// fresh receiving contexts (outside the timed region) when the ring wraps.
// transcrypt = unprotect with the inbound context, then protect with another
// leg's outbound context (another key).
//
// Measured (ns/op CPU time, `build-crypto/bench/srtp/bench_srtp --benchmark_min_time=0.3`),
// AMD EPYC (`model name: AMD EPYC`; flags aes vaes vpclmulqdq avx512f sha_ni),
// 2 vCPUs, shared VM, Debian 12, intel-ipsec-mb 1.3, android-libboringssl,
// libsrtp2 2.5 (NSS), debugoptimized build, load 3-6 from other builds (+-10%):
//
//   suite                    bytes  engine    protect unprotect transcrypt
//   AES_CM_128_HMAC_SHA1_80    160  ipsec_mb      245       228        446
//   AES_CM_128_HMAC_SHA1_80   1200  ipsec_mb      899      1039       1901
//   AES_CM_128_HMAC_SHA1_80    160  boringssl     213       203        427
//   AES_CM_128_HMAC_SHA1_80   1200  boringssl     895      1020       1857
//   AES_CM_128_HMAC_SHA1_80    160  libsrtp      2235      2209       4457
//   AES_CM_128_HMAC_SHA1_80   1200  libsrtp      4786      4989       9684
//   AES_CM_128_HMAC_SHA1_32    160  ipsec_mb      222       229        448
//   AES_CM_128_HMAC_SHA1_32   1200  ipsec_mb      895      1053       1877
//   AES_CM_128_HMAC_SHA1_32    160  boringssl     208       205        411
//   AES_CM_128_HMAC_SHA1_32   1200  boringssl     897      1009       1857
//   AES_CM_128_HMAC_SHA1_32    160  libsrtp      2258      2205       4412
//   AES_CM_128_HMAC_SHA1_32   1200  libsrtp      4878      4915       9639
//   AEAD_AES_128_GCM           160  ipsec_mb       66        55        116
//   AEAD_AES_128_GCM          1200  ipsec_mb      151       166        323
//   AEAD_AES_128_GCM           160  boringssl     141       145        290
//   AEAD_AES_128_GCM          1200  boringssl     373       380        747
//   AEAD_AES_128_GCM           160  libsrtp       732       740       1469
//   AEAD_AES_128_GCM          1200  libsrtp       940      1001       1976
//   AEAD_AES_256_GCM           160  ipsec_mb       66        62        126
//   AEAD_AES_256_GCM          1200  ipsec_mb      182       182        343
//   AEAD_AES_256_GCM           160  boringssl     149       155        300
//   AEAD_AES_256_GCM          1200  boringssl     397       398        802
//   AEAD_AES_256_GCM           160  libsrtp       735       749       1504
//   AEAD_AES_256_GCM          1200  libsrtp       966      1080       2137
//
// auto_select: GCM -> ipsec_mb, AES-CM -> boringssl (see crypto/README.md).
//
// many/<suite>/<engine>: protect with context tx[i], unprotect with rx[i] over
// 1, 1k and 100k context pairs (random order; with and without the worker's
// burst prefetch): what a context's size and layout cost once it is not in
// cache. ipsec_mb_avx2 = GCM with the compact (384-byte) schedule. rtcp/:
// SRTCP protect + unprotect (the schedule is expanded per packet). Numbers:
// crypto/README.md "What an RTP packet reads in a context".
#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "crypto/srtp_context.h"
#include "crypto/srtp_internal.h"
#include "crypto/suite.h"

using namespace isar::crypto;

namespace {

constexpr size_t ring = 4096;

key_material make_key(suite s, uint32_t seed)
{
    std::mt19937 rng(seed);
    key_material km;
    km.s = s;
    for (auto& b : km.key) {
        b = uint8_t(rng());
    }
    for (auto& b : km.salt) {
        b = uint8_t(rng());
    }
    return km;
}

std::vector<uint8_t> make_rtp(uint16_t seq, size_t payload)
{
    std::vector<uint8_t> p(12 + payload + max_trailer, 0);
    p[0] = 0x80;
    p[1] = 0;
    p[2] = uint8_t(seq >> 8);
    p[3] = uint8_t(seq);
    detail::store_be32(&p[4], uint32_t(seq) * 160);
    detail::store_be32(&p[8], 0x12345678);
    for (size_t i = 0; i < payload; ++i) {
        p[12 + i] = uint8_t(i * 7);
    }
    return p;
}

std::unique_ptr<srtp_context> make_ctx(suite s, engine e, uint32_t seed, benchmark::State& st)
{
    std::string err;
    auto c = srtp_context::create(make_key(s, seed), e, err);
    if (!c) {
        st.SkipWithError(err.c_str());
    }
    return c;
}

// Protected copies of `ring` consecutive packets.
struct wire_ring {
    std::vector<std::vector<uint8_t>> pkts;
    std::vector<size_t> lens;
};

wire_ring make_ring(suite s, engine e, size_t payload, benchmark::State& st)
{
    wire_ring r;
    auto tx = make_ctx(s, e, 1, st);
    if (!tx) {
        return r;
    }
    for (size_t i = 0; i < ring; ++i) {
        auto p = make_rtp(uint16_t(1000 + i), payload);
        size_t len = 0;
        if (tx->protect_rtp(p.data(), 12 + payload, p.size(), &len) != status::ok) {
            st.SkipWithError("protect failed");
            return r;
        }
        r.pkts.push_back(std::move(p));
        r.lens.push_back(len);
    }
    return r;
}

void bm_protect(benchmark::State& st, suite s, engine e)
{
    const size_t payload = size_t(st.range(0));
    prepare_thread();
    auto tx = make_ctx(s, e, 1, st);
    if (!tx) {
        return;
    }
    auto tmpl = make_rtp(0, payload);
    std::vector<uint8_t> buf(tmpl.size());
    uint16_t seq = 0;
    for (auto _ : st) {
        std::memcpy(buf.data(), tmpl.data(), 12 + payload);
        buf[2] = uint8_t(seq >> 8);
        buf[3] = uint8_t(seq);
        ++seq;
        size_t len = 0;
        status r = tx->protect_rtp(buf.data(), 12 + payload, buf.size(), &len);
        if (r != status::ok) {
            st.SkipWithError(status_name(r));
            break;
        }
        benchmark::DoNotOptimize(buf.data());
    }
    st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(payload));
}

void bm_unprotect(benchmark::State& st, suite s, engine e)
{
    const size_t payload = size_t(st.range(0));
    prepare_thread();
    wire_ring r = make_ring(s, e, payload, st);
    if (r.pkts.empty()) {
        return;
    }
    auto rx = make_ctx(s, e, 1, st);
    std::vector<uint8_t> buf(r.pkts[0].size());
    size_t i = 0;
    for (auto _ : st) {
        if (i == ring) {
            st.PauseTiming();
            rx = make_ctx(s, e, 1, st);
            i = 0;
            st.ResumeTiming();
        }
        std::memcpy(buf.data(), r.pkts[i].data(), r.lens[i]);
        size_t len = 0;
        status rs = rx->unprotect_rtp(buf.data(), r.lens[i], &len);
        if (rs != status::ok) {
            st.SkipWithError(status_name(rs));
            break;
        }
        ++i;
        benchmark::DoNotOptimize(buf.data());
    }
    st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(payload));
}

void bm_transcrypt(benchmark::State& st, suite s, engine e)
{
    const size_t payload = size_t(st.range(0));
    prepare_thread();
    wire_ring r = make_ring(s, e, payload, st);
    if (r.pkts.empty()) {
        return;
    }
    auto rx = make_ctx(s, e, 1, st);
    auto tx = make_ctx(s, e, 2, st);
    std::vector<uint8_t> buf(r.pkts[0].size());
    size_t i = 0;
    for (auto _ : st) {
        if (i == ring) {
            st.PauseTiming();
            rx = make_ctx(s, e, 1, st);
            tx = make_ctx(s, e, 2, st);
            i = 0;
            st.ResumeTiming();
        }
        std::memcpy(buf.data(), r.pkts[i].data(), r.lens[i]);
        size_t len = 0;
        status rs = rx->unprotect_rtp(buf.data(), r.lens[i], &len);
        if (rs == status::ok) {
            rs = tx->protect_rtp(buf.data(), len, buf.size(), &len);
        }
        if (rs != status::ok) {
            st.SkipWithError(status_name(rs));
            break;
        }
        ++i;
        benchmark::DoNotOptimize(buf.data());
    }
    st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(payload));
}

// SRTCP: protect with one context, unprotect with another (same key), 80-byte
// report. Each direction expands the SRTCP key schedule for the packet
// (crypto/README.md: SRTCP keys are kept raw).
void bm_rtcp(benchmark::State& st, suite s, engine e)
{
    prepare_thread();
    auto tx = make_ctx(s, e, 1, st);
    auto rx = make_ctx(s, e, 1, st);
    if (!tx || !rx)
        return;
    std::vector<uint8_t> tmpl(80 + max_trailer, 0x5a), buf(tmpl.size());
    tmpl[0] = 0x80;
    tmpl[1] = 200;
    tmpl[2] = 0;
    tmpl[3] = 80 / 4 - 1;
    for (auto _ : st) {
        std::memcpy(buf.data(), tmpl.data(), 80);
        size_t len = 0;
        status r = tx->protect_rtcp(buf.data(), 80, buf.size(), &len);
        if (r == status::ok)
            r = rx->unprotect_rtcp(buf.data(), len, &len);
        if (r != status::ok) {
            st.SkipWithError(status_name(r));
            break;
        }
        benchmark::DoNotOptimize(buf.data());
    }
}

// ---- many contexts ------------------------------------------------------------------
//
// protect with context tx[i], unprotect with rx[i] (same key): one encrypt and
// one decrypt per packet, as a relay's transcrypt, but over `contexts` pairs
// visited in a fixed random order, so that at 1k and 100k pairs the contexts'
// cache misses show. With prefetch, bursts of 32 are prefetched the way the
// worker does (prefetch_line0() of all, then prefetch()). Compare a row with
// contexts = 1 of the same run.

enum class variant { ipsec_mb, ipsec_mb_avx2, boringssl };

const char* variant_name(variant v)
{
    switch (v) {
    case variant::ipsec_mb:
        return "ipsec_mb";
    case variant::ipsec_mb_avx2:
        return "ipsec_mb_avx2"; // GCM on the AVX2 code: 384 B key schedule
    case variant::boringssl:
        return "boringssl";
    }
    return "?";
}

std::unique_ptr<srtp_context> make_variant(suite s, variant v, uint32_t seed)
{
    std::string err;
    if (v == variant::ipsec_mb_avx2) {
        detail::session_keys k;
        if (!detail::derive_session_keys(make_key(s, seed), k))
            return nullptr;
        return detail::make_ipsec_mb_context(k, err, true);
    }
    return srtp_context::create(make_key(s, seed), v == variant::boringssl ? engine::boringssl
                                                                             : engine::ipsec_mb,
            err);
}

struct many_set {
    suite s = suite::none;
    variant v = variant::boringssl;
    size_t n = 0;
    std::vector<std::unique_ptr<srtp_context>> tx, rx;
    std::vector<uint32_t> order;
    uint16_t round = 0;
};

// The last set built (Google Benchmark calls a case several times).
many_set& many_for(suite s, variant v, size_t n, benchmark::State& st)
{
    static many_set m;
    if (m.s == s && m.v == v && m.n == n)
        return m;
    m = many_set{};
    m.tx.reserve(n);
    m.rx.reserve(n);
    for (size_t i = 0; i < n; i++) {
        m.tx.push_back(make_variant(s, v, uint32_t(i % 64)));
        m.rx.push_back(make_variant(s, v, uint32_t(i % 64)));
        if (!m.tx.back() || !m.rx.back()) {
            st.SkipWithError("cannot make a context");
            m.n = 0;
            return m;
        }
    }
    m.order.resize(n);
    for (size_t i = 0; i < n; i++)
        m.order[i] = uint32_t(i);
    std::shuffle(m.order.begin(), m.order.end(), std::mt19937(7));
    m.s = s;
    m.v = v;
    m.n = n;
    return m;
}

void bm_many(benchmark::State& st, suite s, variant v)
{
    const size_t payload = size_t(st.range(0));
    const size_t n = size_t(st.range(1));
    const bool pf = st.range(2) != 0;
    prepare_thread();
    many_set& m = many_for(s, v, n, st);
    if (m.n != n)
        return;
    auto tmpl = make_rtp(0, payload);
    std::vector<uint8_t> buf(tmpl.size());
    constexpr size_t burst = 32;
    size_t j = 0;
    for (auto _ : st) {
        if (j % n == 0)
            ++m.round;
        const size_t k = j % n;
        if (pf && k % burst == 0) {
            const size_t e = std::min(n, k + burst);
            for (size_t q = k; q < e; q++) {
                m.rx[m.order[q]]->prefetch_line0();
                m.tx[m.order[q]]->prefetch_line0();
            }
            for (size_t q = k; q < e; q++) {
                m.rx[m.order[q]]->prefetch();
                m.tx[m.order[q]]->prefetch();
            }
        }
        const uint32_t i = m.order[k];
        std::memcpy(buf.data(), tmpl.data(), 12 + payload);
        buf[2] = uint8_t(m.round >> 8);
        buf[3] = uint8_t(m.round);
        size_t len = 0;
        status r = m.tx[i]->protect_rtp(buf.data(), 12 + payload, buf.size(), &len);
        if (r == status::ok)
            r = m.rx[i]->unprotect_rtp(buf.data(), len, &len);
        if (r != status::ok) {
            st.SkipWithError(status_name(r));
            break;
        }
        ++j;
        benchmark::DoNotOptimize(buf.data());
    }
    st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(payload));
}

void register_many()
{
    const suite suites[] = {suite::aes_cm_128_hmac_sha1_80, suite::aead_aes_128_gcm};
    for (suite s : suites) {
        std::vector<variant> vs;
        if (detail::ipsec_mb_available()) {
            vs.push_back(variant::ipsec_mb);
            if (s == suite::aead_aes_128_gcm && detail::ipsec_mb_gcm_key_bytes(true) <
                                                        detail::ipsec_mb_gcm_key_bytes(false))
                vs.push_back(variant::ipsec_mb_avx2);
        }
        vs.push_back(variant::boringssl);
        for (variant v : vs) {
            std::string n = std::string("many/") + std::string(suite_name(s)) + "/" +
                            variant_name(v);
            auto* b = benchmark::RegisterBenchmark(n.c_str(), bm_many, s, v);
            b->ArgNames({"bytes", "contexts", "prefetch"});
            for (int64_t bytes : {160, 1200})
                for (int64_t c : {1, 1000, 100000})
                    for (int64_t pf : {0, 1})
                        if (c > 1 || pf == 0)
                            b->Args({bytes, c, pf});
        }
    }
}

int register_all()
{
    register_many();
    const suite suites[] = {suite::aes_cm_128_hmac_sha1_80, suite::aes_cm_128_hmac_sha1_32,
            suite::aead_aes_128_gcm, suite::aead_aes_256_gcm};
    std::vector<engine> engines;
    if (detail::ipsec_mb_available()) {
        engines.push_back(engine::ipsec_mb);
    }
    engines.push_back(engine::boringssl);
    engines.push_back(engine::libsrtp);
    for (suite s : suites) {
        for (engine e : engines) {
            std::string n = std::string(suite_name(s)) + "/" + engine_name(e);
            benchmark::RegisterBenchmark(("protect/" + n).c_str(), bm_protect, s, e)->Arg(160)->Arg(1200);
            benchmark::RegisterBenchmark(("unprotect/" + n).c_str(), bm_unprotect, s, e)->Arg(160)->Arg(1200);
            benchmark::RegisterBenchmark(("transcrypt/" + n).c_str(), bm_transcrypt, s, e)->Arg(160)->Arg(1200);
            benchmark::RegisterBenchmark(("rtcp/" + n).c_str(), bm_rtcp, s, e);
        }
    }
    return 0;
}

const int registered = register_all();

} // namespace

BENCHMARK_MAIN();
