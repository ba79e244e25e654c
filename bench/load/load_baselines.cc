// isar-bench baselines measured in the same run: a minimal DPDK forwarder
// over the same ring ports, a kernel UDP relay (recvmmsg/sendmmsg on
// loopback), and each crypto engine's raw decrypt+encrypt cost.
#include "bench/load/load_common.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

namespace isar::bench_load {
namespace {

// ---------------------------------------------------- baseline: forwarder --
struct fwd_state {
    uint16_t port;
    std::atomic<bool> stop{false};
    uint64_t busy = 0, pkts = 0;
};
int fwd_main(void* a)
{
    auto* f = static_cast<fwd_state*>(a);
    rte_mbuf* b[32];
    while (!f->stop.load(std::memory_order_relaxed)) {
        const uint64_t t = rte_rdtsc();
        uint16_t n = rte_eth_rx_burst(f->port, 0, b, 32);
        if (n == 0)
            continue;
        for (uint16_t i = 0; i < n; i++) {
            auto* e = rte_pktmbuf_mtod(b[i], rte_ether_hdr*);
            rte_ether_addr t2 = e->src_addr;
            e->src_addr = e->dst_addr;
            e->dst_addr = t2;
        }
        uint16_t s = rte_eth_tx_burst(f->port, 0, b, n);
        if (s < n)
            rte_pktmbuf_free_bulk(b + s, n - s);
        f->pkts += s;
        f->busy += rte_rdtsc() - t;
    }
    return 0;
}

} // namespace

fwd_rig::fwd_rig(const options& o, unsigned payload, unsigned max_pkts) : max_pkts_(max_pkts)
{
    const std::string id = std::to_string(port_seq++);
    pool_ = rte_pktmbuf_pool_create(("fwdp" + id).c_str(), max_pkts + 8191, 256, 0,
                                    RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
    port_ = std::make_unique<ring_port>("fw" + id, 1, 1u << 17, 1u << 16);
    lcore_ = rte_get_next_lcore(-1, 1, 0);
    if (pool_ == nullptr || lcore_ >= RTE_MAX_LCORE)
        return;
    const auto pid = static_cast<uint16_t>(port_->port);
    rte_eth_conf conf{};
    if (rte_eth_dev_configure(pid, 1, 1, &conf) != 0 ||
        rte_eth_rx_queue_setup(pid, 0, 512, rte_socket_id(), nullptr, pool_) != 0 ||
        rte_eth_tx_queue_setup(pid, 0, 512, rte_socket_id(), nullptr) != 0 ||
        rte_eth_dev_start(pid) != 0)
        return;
    // The forwarder frees what it sent as Isar's worker does (ring_port.h).
    if (o.tx_free_worker && !port_->enable_completion())
        fprintf(stderr, "isar-bench: forwarder: no transmit completion on the worker: %s\n",
                rte_strerror(rte_errno));
    len_ = 42 + 12 + payload;
    frame_[12] = 0x08;
    frame_[14] = 0x45;
    frame_[42] = 0x80;
    ok_ = true;
}

fwd_rig::~fwd_rig()
{
    if (port_) {
        port_->disable_completion();
        rte_eth_dev_stop(static_cast<uint16_t>(port_->port));
    }
    port_.reset(); // removes the port, frees queued mbufs
    rte_mempool_free(pool_);
}

double fwd_rig::rep(unsigned n)
{
    if (!ok_)
        return 0;
    n = std::min(n, max_pkts_);
    ring_port& p = *port_;
    rte_mbuf* b[32];
    unsigned filled = 0;
    while (filled < n) {
        if (rte_pktmbuf_alloc_bulk(pool_, b, 32) != 0)
            break;
        for (auto* m : b) {
            auto* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(len_)));
            memcpy(d, frame_, len_);
            d[44] = static_cast<uint8_t>(++seq_ >> 8);
            d[45] = static_cast<uint8_t>(seq_);
        }
        const unsigned k = rte_ring_sp_enqueue_burst(p.rx, reinterpret_cast<void**>(b), 32, nullptr);
        filled += k;
        if (k < 32) { // the RX ring is full
            rte_pktmbuf_free_bulk(b + k, 32 - k);
            break;
        }
    }
    fwd_state f;
    f.port = static_cast<uint16_t>(p.port);
    const uint64_t t0 = rte_rdtsc();
    if (rte_eal_remote_launch(fwd_main, &f, lcore_) != 0) { // the lcore is busy
        void* left[32];
        unsigned k;
        while ((k = rte_ring_sc_dequeue_burst(p.rx, left, 32, nullptr)) != 0)
            rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(left), k);
        return 0;
    }
    uint64_t got = 0, tl = t0;
    while (got < filled && rte_rdtsc() < t0 + hz) {
        unsigned k = rte_ring_sc_dequeue_burst(p.tx[0], reinterpret_cast<void**>(b), 32, nullptr);
        if (k) {
            p.complete(0, b, k);
            got += k;
            tl = rte_rdtsc();
        }
    }
    f.stop = true;
    rte_eal_wait_lcore(lcore_);
    busy += f.busy;
    pkts += f.pkts;
    wall += tl - t0;
    return f.pkts != 0 ? static_cast<double>(f.busy) / static_cast<double>(f.pkts) : 0;
}

void run_forwarder(const options& o, unsigned payload)
{
    fwd_rig rig(o, payload, o.drain_pkts);
    if (!rig.ok()) {
        errors.push_back("dpdk-forwarder: cannot set up its port or pool");
        return;
    }
    const uint64_t end = rte_rdtsc() + static_cast<uint64_t>(o.phase_s * static_cast<double>(hz));
    do
        rig.rep(o.drain_pkts);
    while (rte_rdtsc() < end);
    const double cpp = static_cast<double>(rig.busy) / static_cast<double>(rig.pkts);
    json j{{"name", "dpdk-forwarder"},
           {"payload", payload},
           {"mpps_per_core", static_cast<double>(rig.pkts) / secs(rig.wall) / 1e6},
           {"capacity_mpps", static_cast<double>(hz) / cpp / 1e6},
           {"cycles_per_packet", cpp}};
    fprintf(stderr, "isar-bench: baseline dpdk-forwarder %u B: %.2f Mpps (cap %.2f), %.1f cyc/pkt\n",
            payload, j["mpps_per_core"].get<double>(), j["capacity_mpps"].get<double>(), cpp);
    baselines.push_back(j);
}

// ----------------------------------------------- baseline: kernel UDP relay --
namespace {

// A UDP socket bound to 127.0.0.1:port with 16 MiB buffers, or -1.
int bind_loopback(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int sz = 16 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

// The relay thread: recvmmsg on rfd, sendmmsg to the sink, until `stop`;
// its own CPU time into relay_cpu.
void relay_loop(int rfd, sockaddr_in& to_sink, const std::atomic<bool>& stop,
                std::atomic<uint64_t>& relayed, double& relay_cpu)
{
    cpu_set_t cs;
    CPU_ZERO(&cs);
    CPU_SET(std::min<unsigned>(1, std::thread::hardware_concurrency() - 1), &cs);
    pthread_setaffinity_np(pthread_self(), sizeof(cs), &cs);
    constexpr unsigned B = 32;
    static uint8_t buf[B][2048];
    mmsghdr msgs[B];
    iovec iov[B];
    timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    while (!stop.load(std::memory_order_relaxed)) {
        for (unsigned i = 0; i < B; i++) {
            iov[i] = {buf[i], sizeof(buf[i])};
            msgs[i] = {};
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(rfd, msgs, B, 0, nullptr);
        if (n <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            iov[i].iov_len = msgs[i].msg_len;
            msgs[i].msg_hdr.msg_name = &to_sink;
            msgs[i].msg_hdr.msg_namelen = sizeof(to_sink);
        }
        int s = sendmmsg(rfd, msgs, static_cast<unsigned>(n), 0);
        if (s > 0)
            relayed.fetch_add(static_cast<uint64_t>(s), std::memory_order_relaxed);
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    relay_cpu = static_cast<double>(c1.tv_sec - c0.tv_sec) +
                static_cast<double>(c1.tv_nsec - c0.tv_nsec) * 1e-9;
}

using deadline = decltype(std::chrono::steady_clock::now() + std::chrono::duration<double>(0));

// The generator (to the relay) and the sink, both on this thread, until tend.
void generate(int gfd, int sfd, sockaddr_in& to_relay, unsigned sz, deadline tend, uint64_t& sent,
              uint64_t& got)
{
    constexpr unsigned B = 32;
    static uint8_t gb[B][2048], sb[B][2048];
    mmsghdr gm[B], sm[B];
    iovec gi[B], si[B];
    uint16_t seq = 0;
    while (std::chrono::steady_clock::now() < tend && sent < 20000000) {
        for (unsigned i = 0; i < B; i++) {
            gb[i][0] = 0x80;
            gb[i][2] = static_cast<uint8_t>(++seq >> 8);
            gb[i][3] = static_cast<uint8_t>(seq);
            gi[i] = {gb[i], sz};
            gm[i] = {};
            gm[i].msg_hdr.msg_iov = &gi[i];
            gm[i].msg_hdr.msg_iovlen = 1;
            gm[i].msg_hdr.msg_name = &to_relay;
            gm[i].msg_hdr.msg_namelen = sizeof(to_relay);
        }
        int s = sendmmsg(gfd, gm, B, MSG_DONTWAIT);
        if (s > 0)
            sent += static_cast<uint64_t>(s);
        for (;;) {
            for (unsigned i = 0; i < B; i++) {
                si[i] = {sb[i], sizeof(sb[i])};
                sm[i] = {};
                sm[i].msg_hdr.msg_iov = &si[i];
                sm[i].msg_hdr.msg_iovlen = 1;
            }
            int r = recvmmsg(sfd, sm, B, MSG_DONTWAIT, nullptr);
            if (r <= 0)
                break;
            got += static_cast<uint64_t>(r);
        }
    }
}

} // namespace

void run_kernel_relay(const options& o, unsigned payload)
{
    const uint16_t base = static_cast<uint16_t>(41000 + (getpid() % 1000) * 3);
    int gfd = bind_loopback(base), rfd = bind_loopback(base + 1), sfd = bind_loopback(base + 2);
    if (gfd < 0 || rfd < 0 || sfd < 0) {
        errors.push_back("kernel relay: cannot bind loopback UDP sockets");
        return;
    }
    timeval tv{0, 100000};
    setsockopt(rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in to_relay{}, to_sink{};
    to_relay.sin_family = to_sink.sin_family = AF_INET;
    to_relay.sin_addr.s_addr = to_sink.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to_relay.sin_port = htons(base + 1);
    to_sink.sin_port = htons(base + 2);
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> relayed{0};
    double relay_cpu = 0;
    const unsigned sz = 12 + payload;
    std::thread relay([&] { relay_loop(rfd, to_sink, stop, relayed, relay_cpu); });
    uint64_t sent = 0, got = 0;
    const auto t0 = std::chrono::steady_clock::now();
    const auto tend = t0 + std::chrono::duration<double>(std::max(0.5, o.phase_s * 2));
    generate(gfd, sfd, to_relay, sz, tend, sent, got);
    const double el =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stop = true;
    relay.join();
    close(gfd);
    close(rfd);
    close(sfd);
    const double mpps_core = static_cast<double>(relayed.load()) / relay_cpu / 1e6;
    json j{{"name", "kernel-udp-relay"},
           {"payload", payload},
           {"mpps_per_core", mpps_core},
           {"achieved_mpps", static_cast<double>(relayed.load()) / el / 1e6},
           {"relay_cpu_s", relay_cpu},
           {"sent", sent},
           {"relayed", relayed.load()},
           {"received", got}};
    fprintf(stderr,
            "isar-bench: baseline kernel-udp-relay %u B: %.3f Mpps per relay core (%.3f Mpps "
            "achieved, relay thread CPU %.2f s)\n",
            payload, mpps_core, j["achieved_mpps"].get<double>(), relay_cpu);
    baselines.push_back(j);
}

// ----------------------------------------------------- baseline: raw crypto --
raw_pair::raw_pair(crypto::suite s, crypto::engine e, unsigned payload) : payload_(payload)
{
    crypto::key_material k1, k2;
    make_key(k1, s, 11);
    make_key(k2, s, 12);
    std::string err;
    snd_ = crypto::srtp_context::create(k1, e, err);
    rin_ = crypto::srtp_context::create(k1, e, err);
    rout_ = crypto::srtp_context::create(k2, e, err);
    vin_ = crypto::srtp_context::create(k1, e, err);
    pk_.assign(size_t{n} * 1600, 0);
    w_.assign(size_t{n} * 1600, 0);
}

bool raw_pair::ok() const
{
    return snd_ && rin_ && rout_ && vin_ && !bad;
}

// n packets protected by the sender (not timed), then each unprotected
// with the receiver's context and protected with the other key (timed),
// then verified by a context with the sender's key (timed).
void raw_pair::round()
{
    if (!ok())
        return;
    size_t plen[n] = {};
    for (unsigned i = 0; i < n; i++) {
        uint8_t* p = &pk_[size_t{i} * 1600];
        memset(p, 0x5a, 12 + payload_);
        p[0] = 0x80;
        p[1] = 0;
        ++seq_;
        p[2] = static_cast<uint8_t>(seq_ >> 8);
        p[3] = static_cast<uint8_t>(seq_);
        p[8] = 0x12;
        if (snd_->protect_rtp(p, 12 + payload_, 1600, &plen[i]) != crypto::status::ok) {
            bad = true;
            return;
        }
        memcpy(&w_[size_t{i} * 1600], p, plen[i]);
    }
    uint64_t t = rte_rdtsc();
    for (unsigned i = 0; i < n; i++) {
        size_t l = 0, l2 = 0;
        uint8_t* q = &w_[size_t{i} * 1600];
        if (rin_->unprotect_rtp(q, plen[i], &l) != crypto::status::ok ||
            rout_->protect_rtp(q, l, 1600, &l2) != crypto::status::ok)
            bad = true;
    }
    cyc += rte_rdtsc() - t;
    t = rte_rdtsc();
    for (unsigned i = 0; i < n; i++)
        if (vin_->verify_rtp(&pk_[size_t{i} * 1600], plen[i]) != crypto::status::ok)
            bad = true;
    vcyc += rte_rdtsc() - t;
    pkts += n;
}

namespace {
struct raw_job {
    raw_pair* pair;
    unsigned rounds;
};
int raw_main(void* a)
{
    auto* j = static_cast<raw_job*>(a);
    crypto::prepare_thread();
    for (unsigned r = 0; r < j->rounds; r++)
        j->pair->round();
    return 0;
}
} // namespace

bool raw_pair::on_worker_lcore(unsigned rounds, double& transcrypt, double& verify)
{
    const unsigned lcore = rte_get_next_lcore(-1, 1, 0);
    const uint64_t c0 = cyc, v0 = vcyc, p0 = pkts;
    raw_job j{this, rounds};
    if (lcore >= RTE_MAX_LCORE || rte_eal_remote_launch(raw_main, &j, lcore) != 0)
        return false;
    rte_eal_wait_lcore(lcore);
    if (bad || pkts == p0)
        return false;
    transcrypt = static_cast<double>(cyc - c0) / static_cast<double>(pkts - p0);
    verify = static_cast<double>(vcyc - v0) / static_cast<double>(pkts - p0);
    return true;
}

void run_crypto(const options& o)
{
    using crypto::engine;
    const crypto::suite suites[] = {crypto::suite::aes_cm_128_hmac_sha1_80,
                                    crypto::suite::aead_aes_128_gcm};
    const engine engines[] = {engine::ipsec_mb, engine::boringssl, engine::libsrtp};
    crypto::prepare_thread();
    for (auto s : suites) {
        for (unsigned payload : o.payloads) {
            for (auto e : engines) {
                raw_pair rp(s, e, payload);
                if (!rp.ok())
                    continue;
                const uint64_t end =
                        rte_rdtsc() + static_cast<uint64_t>(std::min(0.15, o.phase_s / 2) *
                                                            static_cast<double>(hz));
                do
                    rp.round();
                while (rte_rdtsc() < end && !rp.bad);
                const double cpp = static_cast<double>(rp.cyc) / static_cast<double>(rp.pkts);
                const double vcpp = static_cast<double>(rp.vcyc) / static_cast<double>(rp.pkts);
                json j{{"suite", std::string(crypto::suite_name(s))},
                       {"engine", crypto::engine_name(e)},
                       {"payload", payload},
                       {"transcrypt_cycles", cpp},
                       {"transcrypt_mpps", static_cast<double>(hz) / cpp / 1e6},
                       {"verify_cycles", vcpp},
                       {"verify_mpps", static_cast<double>(hz) / vcpp / 1e6},
                       {"auto", crypto::auto_engine(s) == e}};
                if (rp.bad)
                    j["error"] = "crypto round trip failed";
                crypto_j.push_back(j);
                fprintf(stderr,
                        "isar-bench: raw crypto %s %s %u B: decrypt+encrypt %.0f cyc (%.2f Mpps), "
                        "verify %.0f cyc%s\n",
                        std::string(crypto::suite_name(s)).c_str(), crypto::engine_name(e), payload,
                        cpp, j["transcrypt_mpps"].get<double>(), vcpp,
                        crypto::auto_engine(s) == e ? " [auto]" : "");
                baselines.push_back({{"name", std::string("raw-crypto-") + crypto::engine_name(e) +
                                                      "-" + std::string(crypto::suite_name(s))},
                                     {"payload", payload},
                                     {"mpps_per_core", j["transcrypt_mpps"]},
                                     {"cycles_per_packet", cpp}});
            }
        }
    }
}

} // namespace isar::bench_load
