// The stream threads (control/stream_server.h) end to end on 127.0.0.1 with
// ephemeral TCP and TLS ports: the test is control (the stream_hub) and the
// workers (its own rings and mempool). Requests reach the hub with the right
// addresses and answers reach the client; bound ChannelData reaches the
// worker's ring, frames from the worker reach the client; TLS 1.2 and 1.3
// with ALPN; SIGHUP-style reload; garbage, stalls, silence, a client that
// never reads and max_connections each end or drop with their counter while
// others keep working.
#include "control/stream_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "control/stream_conn.h"
#include "control/stream_thread.h"
#include "tests/support/eal_env.h"

ISAR_TEST_EAL_ENV("test_stream_server");

using namespace isar;
using namespace isar::ctl;
using namespace std::chrono_literals;

namespace {

using bytes = std::vector<uint8_t>;
constexpr unsigned nworkers = 2;

bytes stun_msg(uint16_t type, uint8_t tag)
{
    // Type, length 8, cookie, txid, REQUESTED-TRANSPORT (UDP).
    bytes m = {uint8_t(type >> 8), uint8_t(type), 0, 8, 0x21, 0x12, 0xa4, 0x42};
    for (int i = 0; i < 12; i++)
        m.push_back(uint8_t(tag + i));
    bytes a = {0x00, 0x19, 0x00, 0x04, 17, 0, 0, 0};
    m.insert(m.end(), a.begin(), a.end());
    return m;
}

bytes channel_data(uint16_t ch, size_t len, uint8_t fill, bool pad)
{
    bytes m = {uint8_t(ch >> 8), uint8_t(ch), uint8_t(len >> 8), uint8_t(len)};
    m.insert(m.end(), len, fill);
    if (pad)
        m.resize((m.size() + 3) & ~size_t{3}, 0);
    return m;
}

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds max = 3000ms)
{
    const auto end = std::chrono::steady_clock::now() + max;
    while (std::chrono::steady_clock::now() < end) {
        if (cond())
            return true;
        std::this_thread::sleep_for(1ms);
    }
    return cond();
}

// ---- certificates ---------------------------------------------------------

bool write_cert(const std::string& dir, const std::string& cn, std::string& cert,
                std::string& key)
{
    bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
    if (!ec || !EC_KEY_generate_key(ec.get()))
        return false;
    bssl::UniquePtr<EVP_PKEY> pk(EVP_PKEY_new());
    EVP_PKEY_assign_EC_KEY(pk.get(), ec.release());
    bssl::UniquePtr<X509> x(X509_new());
    X509_set_version(x.get(), X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600);
    X509_NAME* name = X509_get_subject_name(x.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const uint8_t*>(cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(x.get(), name);
    X509_set_pubkey(x.get(), pk.get());
    if (!X509_sign(x.get(), pk.get(), EVP_sha256()))
        return false;
    cert = dir + "/" + cn + ".crt";
    key = dir + "/" + cn + ".key";
    bssl::UniquePtr<BIO> c(BIO_new_file(cert.c_str(), "w"));
    if (!c || !PEM_write_bio_X509(c.get(), x.get()))
        return false;
    bssl::UniquePtr<BIO> k(BIO_new_file(key.c_str(), "w"));
    ::chmod(key.c_str(), 0600);
    return k && PEM_write_bio_PrivateKey(k.get(), pk.get(), nullptr, nullptr, 0, nullptr, nullptr);
}

// ---- clients --------------------------------------------------------------

struct client {
    int fd = -1;
    SSL* ssl = nullptr;
    ~client()
    {
        SSL_free(ssl);
        if (fd >= 0)
            ::close(fd);
    }
    uint16_t port_be() const
    {
        sockaddr_in a{};
        socklen_t len = sizeof a;
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        return a.sin_port;
    }
    bool send(const bytes& b)
    {
        if (ssl != nullptr)
            return SSL_write(ssl, b.data(), int(b.size())) == int(b.size());
        return ::send(fd, b.data(), b.size(), MSG_NOSIGNAL) == ssize_t(b.size());
    }
    // Reads exactly n bytes (false on EOF, error or the 3 s timeout).
    bool recv(bytes& out, size_t n)
    {
        out.assign(n, 0);
        size_t got = 0;
        while (got < n) {
            const ssize_t r = ssl != nullptr ? SSL_read(ssl, out.data() + got, int(n - got))
                                             : ::recv(fd, out.data() + got, n - got, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return false;
            got += size_t(r);
        }
        return true;
    }
    // True when the server ended the connection (EOF or reset) within 5 s.
    bool closed_by_server()
    {
        uint8_t b[256];
        for (;;) {
            const ssize_t r = ::recv(fd, b, sizeof b, 0);
            if (r == 0 || (r < 0 && errno == ECONNRESET))
                return true;
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0) {
                ADD_FAILURE() << "recv: " << strerror(errno);
                return false; // timeout
            }
        }
    }
};

std::unique_ptr<client> connect_to(uint16_t port, int rcvbuf = 0)
{
    auto c = std::make_unique<client>();
    c->fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    timeval tv{5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::connect(c->fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
        return nullptr;
    return c;
}

// A TLS client: `version` TLS1_2_VERSION or TLS1_3_VERSION; `alpn` "" = none.
std::unique_ptr<client> connect_tls(uint16_t port, uint16_t version, const std::string& alpn,
                                    std::string* peer_cn = nullptr)
{
    auto c = connect_to(port);
    if (!c)
        return nullptr;
    bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_min_proto_version(ctx.get(), version);
    SSL_CTX_set_max_proto_version(ctx.get(), version);
    c->ssl = SSL_new(ctx.get());
    SSL_set_fd(c->ssl, c->fd);
    if (!alpn.empty()) {
        bytes protos = {uint8_t(alpn.size())};
        protos.insert(protos.end(), alpn.begin(), alpn.end());
        SSL_set_alpn_protos(c->ssl, protos.data(), protos.size());
    }
    if (SSL_connect(c->ssl) != 1)
        return nullptr;
    if (SSL_version(c->ssl) != version)
        return nullptr;
    if (peer_cn != nullptr) {
        bssl::UniquePtr<X509> x(SSL_get_peer_certificate(c->ssl));
        char buf[64] = {};
        if (x)
            X509_NAME_get_text_by_NID(X509_get_subject_name(x.get()), NID_commonName, buf,
                                      sizeof buf);
        *peer_cn = buf;
    }
    return c;
}

// ---- the fixture: control and the workers --------------------------------

class stream_server_test : public ::testing::Test {
protected:
    void SetUp() override
    {
        ASSERT_TRUE(isar::test::eal_env::ready());
        static unsigned seq = 0;
        seq++;
        dir_ = std::filesystem::temp_directory_path() /
               ("isar_stream_" + std::to_string(getpid()) + "_" + std::to_string(seq));
        std::filesystem::create_directories(dir_);
        ASSERT_TRUE(write_cert(dir_, "isar-test-one", cert_, key_));
        const std::string p = "st" + std::to_string(seq);
        pool_ = rte_pktmbuf_pool_create((p + "pool").c_str(), 8191, 32, 0,
                                        RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
        ASSERT_NE(pool_, nullptr);
        dp_.pool = pool_;
        dp_.nworkers = nworkers;
        for (unsigned t = 0; t < threads_; t++)
            for (unsigned w = 0; w < nworkers; w++) {
                const std::string n = p + "_" + std::to_string(t) + std::to_string(w);
                dp_.in.push_back(rte_ring_create((n + "i").c_str(), 1024, SOCKET_ID_ANY,
                                                 RING_F_SP_ENQ | RING_F_SC_DEQ));
                dp_.out.push_back(rte_ring_create((n + "o").c_str(), 1024, SOCKET_ID_ANY,
                                                  RING_F_SP_ENQ | RING_F_SC_DEQ));
                ASSERT_NE(dp_.in.back(), nullptr);
                ASSERT_NE(dp_.out.back(), nullptr);
            }
        cfg_.listen_tcp = {0};
        cfg_.listen_tls = {0};
        cfg_.tls_cert = cert_;
        cfg_.tls_key = key_;
        cfg_.stream_threads = threads_;
    }

    void TearDown() override
    {
        srv_.reset();
        for (auto* r : dp_.in)
            drain_free(r), rte_ring_free(r);
        for (auto* r : dp_.out)
            drain_free(r), rte_ring_free(r);
        // Every mbuf the threads took or made came back.
        EXPECT_EQ(rte_mempool_in_use_count(pool_), 0u);
        rte_mempool_free(pool_);
        std::filesystem::remove_all(dir_);
    }

    static void drain_free(rte_ring* r)
    {
        void* m;
        while (r != nullptr && rte_ring_dequeue(r, &m) == 0)
            rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    }

    void start()
    {
        hub_ = std::make_unique<stream_hub>(threads_);
        srv_ = std::make_unique<stream_server>(cfg_, *hub_, dp_, htonl(INADDR_LOOPBACK));
        std::string err;
        ASSERT_EQ(srv_->start(err), 0) << err;
        tcp_ = srv_->tcp_ports().at(0);
        tls_ = srv_->tls_ports().at(0);
        ASSERT_NE(tcp_, 0);
        ASSERT_NE(tls_, 0);
    }

    // Waits for the next event matching `pred`; other events are kept.
    bool next_event(stream_event& out, const std::function<bool(const stream_event&)>& pred)
    {
        return wait_for([&] {
            hub_->take_events(events_);
            for (auto it = events_.begin(); it != events_.end(); ++it)
                if (pred(*it)) {
                    out = std::move(*it);
                    events_.erase(it);
                    return true;
                }
            return false;
        });
    }
    bool request_from(client& c, stream_event& e)
    {
        const uint16_t port = c.port_be();
        return next_event(e, [&](const stream_event& x) {
            return x.kind == stream_event::request && x.client_port_be == port;
        });
    }
    bool closed_event(uint32_t token, stream_event& e)
    {
        return next_event(e, [&](const stream_event& x) {
            return x.kind == stream_event::closed && x.token == token;
        });
    }
    void send_cmd(uint32_t token, const bytes& msg)
    {
        stream_command c;
        c.kind = stream_command::send;
        c.token = token;
        c.msg = msg;
        hub_->command(std::move(c));
    }
    void bind_cmd(uint32_t token, uint16_t worker, uint16_t relay_port)
    {
        stream_command c;
        c.kind = stream_command::bind;
        c.token = token;
        c.worker = worker;
        c.iface = 0;
        c.relay_port_be = htons(relay_port);
        hub_->command(std::move(c));
    }
    // A request from `c` answered through the hub: returns its token.
    uint32_t round_trip(client& c, uint8_t tag)
    {
        const bytes req = stun_msg(0x0003, tag);
        EXPECT_TRUE(c.send(req));
        stream_event e;
        if (!request_from(c, e)) {
            ADD_FAILURE() << "no request event";
            return 0;
        }
        EXPECT_EQ(e.msg, req);
        const bytes resp = stun_msg(0x0103, tag);
        send_cmd(e.token, resp);
        bytes got;
        EXPECT_TRUE(c.recv(got, resp.size()));
        EXPECT_EQ(got, resp);
        return e.token;
    }
    bool push_out(unsigned w, uint32_t token, const bytes& frame)
    {
        rte_mbuf* m = rte_pktmbuf_alloc(pool_);
        if (m == nullptr)
            return false;
        std::memcpy(rte_pktmbuf_append(m, uint16_t(frame.size())), frame.data(), frame.size());
        m->hash.usr = token;
        if (rte_ring_enqueue(dp_.ring_out(w, stream_thread_of(token)), m) != 0) {
            rte_pktmbuf_free(m);
            return false;
        }
        return true;
    }
    uint64_t total(stream_ctr c) const { return srv_->total(c); }

    static constexpr unsigned threads_ = 2;
    std::filesystem::path dir_;
    std::string cert_, key_;
    rte_mempool* pool_ = nullptr;
    stream_dp dp_;
    turn_config cfg_;
    std::unique_ptr<stream_hub> hub_;
    std::unique_ptr<stream_server> srv_;
    std::vector<stream_event> events_;
    uint16_t tcp_ = 0, tls_ = 0;
};

TEST_F(stream_server_test, tcp_request_bind_media_both_ways_close)
{
    start();
    auto c = connect_to(tcp_);
    ASSERT_TRUE(c);
    const bytes req = stun_msg(0x0003, 1);
    ASSERT_TRUE(c->send(req));
    stream_event e;
    ASSERT_TRUE(request_from(*c, e));
    EXPECT_EQ(e.msg, req);
    EXPECT_FALSE(e.tls);
    EXPECT_EQ(e.client_ip_be, htonl(INADDR_LOOPBACK));
    EXPECT_EQ(e.local_ip_be, htonl(INADDR_LOOPBACK));
    EXPECT_EQ(e.local_port_be, htons(tcp_));
    EXPECT_NE(e.token, 0u);
    const uint32_t tok = e.token;
    const unsigned t = stream_thread_of(tok);
    ASSERT_LT(t, threads_);

    const bytes resp = stun_msg(0x0103, 1);
    send_cmd(tok, resp);
    bytes got;
    ASSERT_TRUE(c->recv(got, resp.size()));
    EXPECT_EQ(got, resp);

    // Before the bind, media is dropped (counted).
    ASSERT_TRUE(c->send(channel_data(0x4001, 5, 0xaa, true)));
    ASSERT_TRUE(wait_for([&] { return total(stream_ctr::drop_not_bound) == 1; }));

    bind_cmd(tok, 1, 50000);
    std::this_thread::sleep_for(50ms);
    // ChannelData with its padding, then a Send indication, arrive in pieces.
    bytes cd = channel_data(0x4001, 5, 0xbb, true);
    bytes si = stun_msg(0x0016, 9);
    bytes both = cd;
    both.insert(both.end(), si.begin(), si.end());
    ASSERT_TRUE(c->send(bytes(both.begin(), both.begin() + 3)));
    std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(c->send(bytes(both.begin() + 3, both.end())));
    rte_ring* in = dp_.ring_in(t, 1);
    std::vector<rte_mbuf*> ms;
    ASSERT_TRUE(wait_for([&] {
        void* m;
        while (rte_ring_dequeue(in, &m) == 0)
            ms.push_back(static_cast<rte_mbuf*>(m));
        return ms.size() >= 2;
    }));
    ASSERT_EQ(ms.size(), 2u);
    for (unsigned i = 0; i < 2; i++) {
        rte_mbuf* m = ms[i];
        EXPECT_GE(rte_pktmbuf_headroom(m), 64u);
        stream_frame_hdr h;
        std::memcpy(&h, rte_pktmbuf_mtod(m, void*), sizeof h);
        EXPECT_EQ(h.token, tok);
        EXPECT_EQ(h.relay_port_be, htons(50000));
        EXPECT_EQ(h.iface, 0);
        const auto* p = rte_pktmbuf_mtod_offset(m, const uint8_t*, sizeof h);
        const bytes frame(p, p + rte_pktmbuf_pkt_len(m) - sizeof h);
        if (i == 0)
            EXPECT_EQ(frame, bytes(cd.begin(), cd.begin() + 9)); // padding dropped
        else
            EXPECT_EQ(frame, si);
        rte_pktmbuf_free(m);
    }
    EXPECT_EQ(total(stream_ctr::rx_media), 2u);
    EXPECT_EQ(total(stream_ctr::bound), 1u);

    // A frame from worker 0 reaches the client; one for a stale token is dropped.
    const bytes out = channel_data(0x4001, 3, 0xcc, true);
    ASSERT_TRUE(push_out(0, tok, out));
    ASSERT_TRUE(c->recv(got, out.size()));
    EXPECT_EQ(got, out);
    const uint32_t stale = make_stream_token(t, ((tok >> 20) & 0xff) + 1, stream_slot_of(tok));
    ASSERT_TRUE(push_out(1, stale, out));
    ASSERT_TRUE(wait_for([&] { return total(stream_ctr::drop_stale) == 1; }));
    send_cmd(stale, resp);
    ASSERT_TRUE(wait_for([&] { return total(stream_ctr::stale_commands) == 1; }));

    // Other STUN classes are ignored.
    ASSERT_TRUE(c->send(stun_msg(0x0101, 3)));
    ASSERT_TRUE(wait_for([&] { return total(stream_ctr::rx_ignored) == 1; }));

    // A flood of requests on one connection: control gets at most
    // stream_max_requests_per_s a second of them, the rest is counted.
    bytes flood;
    for (int i = 0; i < 200; i++) {
        const bytes r = stun_msg(0x0004, uint8_t(i));
        flood.insert(flood.end(), r.begin(), r.end());
    }
    ASSERT_TRUE(c->send(flood));
    ASSERT_TRUE(wait_for([&] {
        return total(stream_ctr::rx_requests) + total(stream_ctr::drop_request_rate) == 201;
    }));
    EXPECT_LE(total(stream_ctr::rx_requests), 1u + 2 * stream_max_requests_per_s);
    EXPECT_GE(total(stream_ctr::drop_request_rate), 200u - 2 * stream_max_requests_per_s);
    hub_->take_events(events_);
    events_.clear();

    // The client leaves: control hears of it.
    ::shutdown(c->fd, SHUT_WR);
    ASSERT_TRUE(closed_event(tok, e));
    EXPECT_EQ(e.why, "peer closed");
    EXPECT_TRUE(wait_for([&] { return total(stream_ctr::live) == 0; }));
    EXPECT_EQ(total(stream_ctr::closed_peer), 1u);
    EXPECT_EQ(total(stream_ctr::bound), 0u);
    EXPECT_EQ(total(stream_ctr::accepted), 1u);
    EXPECT_GT(total(stream_ctr::rx_bytes), 0u);
    EXPECT_GT(total(stream_ctr::tx_bytes), 0u);
}

TEST_F(stream_server_test, worker_ring_full_drops_counted)
{
    start();
    auto c = connect_to(tcp_);
    ASSERT_TRUE(c);
    const uint32_t tok = round_trip(*c, 1);
    bind_cmd(tok, 1, 50040);
    std::this_thread::sleep_for(30ms);
    // 1100 frames while the worker takes none: the ring holds 1023.
    bytes many;
    for (int i = 0; i < 1100; i++) {
        const bytes f = channel_data(0x4001, 4, uint8_t(i), false);
        many.insert(many.end(), f.begin(), f.end());
    }
    ASSERT_TRUE(c->send(many));
    ASSERT_TRUE(wait_for([&] {
        return total(stream_ctr::rx_media) + total(stream_ctr::drop_ring_full) == 1100;
    }));
    EXPECT_EQ(total(stream_ctr::rx_media), 1023u);
    EXPECT_EQ(total(stream_ctr::drop_ring_full), 77u);
    EXPECT_EQ(rte_ring_count(dp_.ring_in(stream_thread_of(tok), 1)), 1023u);
    // The connection is fine: control still reaches it.
    round_trip(*c, 2);
}

TEST_F(stream_server_test, close_command_posts_nothing)
{
    start();
    auto c = connect_to(tcp_);
    ASSERT_TRUE(c);
    const uint32_t tok = round_trip(*c, 7);
    stream_command cmd;
    cmd.kind = stream_command::close;
    cmd.token = tok;
    hub_->command(std::move(cmd));
    EXPECT_TRUE(c->closed_by_server());
    EXPECT_TRUE(wait_for([&] { return total(stream_ctr::live) == 0; }));
    EXPECT_EQ(total(stream_ctr::closed_control), 1u);
    std::this_thread::sleep_for(50ms);
    hub_->take_events(events_);
    EXPECT_TRUE(events_.empty());
}

TEST_F(stream_server_test, tls_12_and_13_with_alpn)
{
    start();
    for (uint16_t v : {uint16_t(TLS1_2_VERSION), uint16_t(TLS1_3_VERSION)}) {
        for (const char* alpn : {"stun.turn", ""}) {
            SCOPED_TRACE(std::to_string(v) + " alpn=" + alpn);
            auto c = connect_tls(tls_, v, alpn);
            ASSERT_TRUE(c);
            const uint8_t* sel = nullptr;
            unsigned len = 0;
            SSL_get0_alpn_selected(c->ssl, &sel, &len);
            EXPECT_EQ(std::string(reinterpret_cast<const char*>(sel), len), alpn);
            const bytes req = stun_msg(0x0003, 4);
            ASSERT_TRUE(c->send(req));
            stream_event e;
            ASSERT_TRUE(request_from(*c, e));
            EXPECT_TRUE(e.tls);
            EXPECT_EQ(e.local_port_be, htons(tls_));
            EXPECT_EQ(e.msg, req);
            send_cmd(e.token, stun_msg(0x0103, 4));
            bytes got;
            ASSERT_TRUE(c->recv(got, 28));
            EXPECT_EQ(got, stun_msg(0x0103, 4));
            // Media both ways over TLS.
            bind_cmd(e.token, 0, 50002);
            std::this_thread::sleep_for(30ms);
            ASSERT_TRUE(c->send(channel_data(0x4002, 6, 1, true)));
            rte_ring* in = dp_.ring_in(stream_thread_of(e.token), 0);
            void* m = nullptr;
            ASSERT_TRUE(wait_for([&] { return rte_ring_dequeue(in, &m) == 0; }));
            EXPECT_EQ(rte_pktmbuf_pkt_len(static_cast<rte_mbuf*>(m)), 8u + 10u);
            rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
            ASSERT_TRUE(push_out(1, e.token, channel_data(0x4002, 1, 2, true)));
            ASSERT_TRUE(c->recv(got, 8));
            EXPECT_EQ(got, channel_data(0x4002, 1, 2, true));
        }
    }
    EXPECT_EQ(total(stream_ctr::tls_handshakes), 4u);
    // A client that offers only another protocol is refused, and told why.
    ERR_clear_error();
    EXPECT_FALSE(connect_tls(tls_, TLS1_3_VERSION, "h2"));
    EXPECT_EQ(ERR_GET_REASON(ERR_peek_last_error()), SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL);
    ERR_clear_error();
    EXPECT_TRUE(wait_for([&] { return total(stream_ctr::tls_alpn_refused) == 1; }));
    EXPECT_TRUE(wait_for([&] { return total(stream_ctr::closed_tls_error) == 1; }));
    // Plain TCP sent to the TLS port: a TLS error, counted.
    auto p = connect_to(tls_);
    ASSERT_TRUE(p);
    ASSERT_TRUE(p->send(stun_msg(0x0001, 1)));
    EXPECT_TRUE(p->closed_by_server());
    EXPECT_TRUE(wait_for([&] { return total(stream_ctr::closed_tls_error) == 2; }));
}

TEST_F(stream_server_test, reload_keeps_connections_new_ones_get_the_new_cert)
{
    start();
    std::string cn;
    auto a = connect_tls(tls_, TLS1_3_VERSION, "stun.turn", &cn);
    ASSERT_TRUE(a);
    EXPECT_EQ(cn, "isar-test-one");
    round_trip(*a, 1);

    std::string cert2, key2;
    ASSERT_TRUE(write_cert(dir_, "isar-test-two", cert2, key2));
    std::filesystem::rename(cert2, cert_);
    std::filesystem::rename(key2, key_);
    std::string err;
    ASSERT_EQ(srv_->reload_tls(err), 0) << err;
    round_trip(*a, 2); // the old connection still works
    auto b = connect_tls(tls_, TLS1_2_VERSION, "stun.turn", &cn);
    ASSERT_TRUE(b);
    EXPECT_EQ(cn, "isar-test-two");
    round_trip(*b, 3);

    // A key others can read is refused, and the current one stays.
    ::chmod(key_.c_str(), 0644);
    EXPECT_NE(srv_->reload_tls(err), 0);
    EXPECT_NE(err.find("others may read"), std::string::npos) << err;
    EXPECT_EQ(err.find("PRIVATE KEY"), std::string::npos);
    // A broken certificate file is refused too.
    ::chmod(key_.c_str(), 0600);
    FILE* f = fopen(cert_.c_str(), "w");
    fputs("not a certificate\n", f);
    fclose(f);
    EXPECT_NE(srv_->reload_tls(err), 0);
    auto c = connect_tls(tls_, TLS1_3_VERSION, "", &cn);
    ASSERT_TRUE(c);
    EXPECT_EQ(cn, "isar-test-two");
    round_trip(*a, 4);
}

TEST_F(stream_server_test, hostile_clients_end_others_unaffected)
{
    cfg_.stream_timeout_s = 1;
    start();
    auto good = connect_to(tcp_);
    ASSERT_TRUE(good);
    const uint32_t good_tok = round_trip(*good, 1);
    bind_cmd(good_tok, 0, 50010); // bound: no idle timeout

    auto garbage = connect_to(tcp_);
    ASSERT_TRUE(garbage);
    const std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_TRUE(garbage->send(bytes(http.begin(), http.end())));
    auto stall = connect_to(tcp_);
    ASSERT_TRUE(stall);
    const bytes req = stun_msg(0x0003, 2);
    ASSERT_TRUE(stall->send(bytes(req.begin(), req.begin() + 10)));
    auto silent = connect_to(tcp_);
    ASSERT_TRUE(silent);
    auto silent_tls = connect_to(tls_);
    ASSERT_TRUE(silent_tls);
    // A TLS client that stops mid-handshake record.
    auto half_tls = connect_to(tls_);
    ASSERT_TRUE(half_tls);
    ASSERT_TRUE(half_tls->send({0x16, 0x03, 0x01, 0x00, 0x80, 0x01}));

    EXPECT_TRUE(garbage->closed_by_server());
    EXPECT_TRUE(stall->closed_by_server());
    EXPECT_TRUE(silent->closed_by_server());
    EXPECT_TRUE(silent_tls->closed_by_server());
    EXPECT_TRUE(half_tls->closed_by_server());
    EXPECT_EQ(total(stream_ctr::closed_garbage), 1u);
    EXPECT_TRUE(wait_for([&] {
        return total(stream_ctr::timeout_partial) == 1 && total(stream_ctr::timeout_idle) == 1 &&
               total(stream_ctr::timeout_handshake) == 2;
    })) << total(stream_ctr::timeout_partial) << " " << total(stream_ctr::timeout_idle) << " "
        << total(stream_ctr::timeout_handshake);
    // Each was reported to control with its reason.
    std::vector<std::string> whys;
    wait_for([&] {
        hub_->take_events(events_);
        return events_.size() >= 5;
    });
    for (auto& e : events_)
        if (e.kind == stream_event::closed)
            whys.push_back(e.why);
    EXPECT_EQ(whys.size(), 5u);
    EXPECT_NE(std::find(whys.begin(), whys.end(), "not TURN framing"), whys.end());
    EXPECT_NE(std::find(whys.begin(), whys.end(), "timeout: incomplete frame"), whys.end());
    // The good one is still served.
    send_cmd(good_tok, stun_msg(0x0103, 9));
    bytes got;
    ASSERT_TRUE(good->recv(got, 28));
    EXPECT_EQ(got, stun_msg(0x0103, 9));
    EXPECT_EQ(total(stream_ctr::live), 1u);
}

TEST_F(stream_server_test, never_reads_bounded_then_closed)
{
    cfg_.stream_timeout_s = 1;
    cfg_.stream_send_buffer = 8192;
    start();
    auto slow = connect_to(tcp_, 4096);
    ASSERT_TRUE(slow);
    const uint32_t slow_tok = round_trip(*slow, 1);
    bind_cmd(slow_tok, 0, 50020);
    auto good = connect_to(tcp_);
    ASSERT_TRUE(good);
    const uint32_t good_tok = round_trip(*good, 2);
    bind_cmd(good_tok, 1, 50021);
    std::this_thread::sleep_for(20ms);

    // The worker pours frames at the slow one until the kernel's buffers
    // are full and Isar's bounded one too: the excess is dropped whole and
    // counted; once nothing drains for stream_timeout_s the connection ends.
    const bytes frame = channel_data(0x4000, 996, 7, true);
    uint64_t max_buffered = 0;
    bool good_served = false;
    stream_event e;
    const auto end = std::chrono::steady_clock::now() + 15s;
    bool closed = false;
    while (!closed && std::chrono::steady_clock::now() < end) {
        for (int i = 0; i < 16; i++)
            push_out(0, slow_tok, frame);
        max_buffered = std::max(max_buffered, total(stream_ctr::send_buffer_bytes));
        if (!good_served && total(stream_ctr::drop_send_full) > 0) {
            // Meanwhile the good one gets its frames.
            ASSERT_TRUE(push_out(1, good_tok, frame));
            bytes got;
            ASSERT_TRUE(good->recv(got, frame.size()));
            EXPECT_EQ(got, frame);
            good_served = true;
        }
        hub_->take_events(events_);
        for (auto& x : events_)
            if (x.kind == stream_event::closed && x.token == slow_tok)
                e = x, closed = true;
        std::this_thread::sleep_for(2ms);
    }
    ASSERT_TRUE(closed) << "buffered " << total(stream_ctr::send_buffer_bytes) << " tx "
                        << total(stream_ctr::tx_bytes) << " drops "
                        << total(stream_ctr::drop_send_full);
    EXPECT_TRUE(good_served);
    EXPECT_GT(total(stream_ctr::drop_send_full), 0u);
    EXPECT_LE(max_buffered, cfg_.stream_send_buffer);
    EXPECT_GT(max_buffered, cfg_.stream_send_buffer / 2);
    EXPECT_EQ(e.why, "timeout: client not reading");
    EXPECT_EQ(total(stream_ctr::timeout_send), 1u);
    EXPECT_TRUE(wait_for([&] { return total(stream_ctr::send_buffer_bytes) == 0; }));
    EXPECT_TRUE(wait_for([&] { return total(stream_ctr::live) == 1; }));
    round_trip(*good, 3);
}

TEST_F(stream_server_test, max_connections_in_all_threads)
{
    cfg_.max_connections = 3;
    start();
    std::vector<std::unique_ptr<client>> cs;
    for (int i = 0; i < 3; i++) {
        cs.push_back(i == 2 ? connect_tls(tls_, TLS1_3_VERSION, "stun.turn") : connect_to(tcp_));
        ASSERT_TRUE(cs.back());
    }
    ASSERT_TRUE(wait_for([&] { return total(stream_ctr::live) == 3; }));
    auto extra = connect_to(tcp_);
    ASSERT_TRUE(extra);
    EXPECT_TRUE(extra->closed_by_server());
    EXPECT_EQ(total(stream_ctr::refused_max_connections), 1u);
    for (int i = 0; i < 3; i++)
        round_trip(*cs[size_t(i)], uint8_t(i));
    // One leaves: room for another.
    cs.erase(cs.begin());
    ASSERT_TRUE(wait_for([&] { return total(stream_ctr::live) == 2; }));
    auto again = connect_to(tcp_);
    ASSERT_TRUE(again);
    round_trip(*again, 9);
}

TEST_F(stream_server_test, many_connections_few_threads)
{
    cfg_.max_connections = 2000;
    start();
    // Heap per idle connection (the server's side; the test's clients hold
    // no heap for plain TCP). Printed for the README.
    const auto heap = [] { return double(mallinfo2().uordblks); };
    const double h0 = heap();
    std::vector<std::unique_ptr<client>> cs;
    for (int i = 0; i < 500; i++) {
        cs.push_back(connect_to(tcp_));
        ASSERT_TRUE(cs.back());
    }
    ASSERT_TRUE(wait_for([&] { return total(stream_ctr::live) == 500; }));
    printf("  heap per idle TCP connection: %.0f bytes\n", (heap() - h0) / 500);
    // Both threads took some (SO_REUSEPORT spreads them).
    EXPECT_GT(srv_->counters(0).get(stream_ctr::live), 0u);
    EXPECT_GT(srv_->counters(1).get(stream_ctr::live), 0u);
    for (int i = 0; i < 500; i += 50)
        round_trip(*cs[size_t(i)], uint8_t(i));
    // TLS: measured with a client that holds its SSL, so the test's own
    // client state is taken out by measuring it alone first.
    std::vector<std::unique_ptr<client>> ts;
    const double t0 = heap();
    for (int i = 0; i < 50; i++) {
        ts.push_back(connect_tls(tls_, TLS1_3_VERSION, "stun.turn"));
        ASSERT_TRUE(ts.back());
    }
    ASSERT_TRUE(wait_for([&] { return total(stream_ctr::tls_handshakes) == 50; }));
    for (auto& t : ts)
        round_trip(*t, 1);
    const double both = (heap() - t0) / 50;
    printf("  heap per idle TLS 1.3 connection: %.0f bytes (server and test client together)\n",
           both);
    // Stopping with 550 connections open closes them all, promptly.
    const auto s0 = std::chrono::steady_clock::now();
    srv_->stop();
    const double stop_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0).count();
    printf("  stop with 550 connections: %.0f ms\n", stop_ms);
    EXPECT_LT(stop_ms, 1000);
    EXPECT_TRUE(cs[0]->closed_by_server());
}

// The wait strategy (stream_thread.h): what a worker's frame waits before
// the thread notices it, with and without a bound connection, and what the
// short waits cost in CPU while nothing moves. Printed for the README; the
// bounds asserted are loose (a loaded 2-core CI machine).
double cpu_seconds()
{
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

TEST_F(stream_server_test, wait_latency_and_idle_cost)
{
    start();
    auto c = connect_to(tcp_);
    ASSERT_TRUE(c);
    const uint32_t tok = round_trip(*c, 1);
    const bytes frame = channel_data(0x4000, 160, 3, true);
    const auto measure = [&](const char* what) {
        std::vector<double> us;
        for (int i = 0; i < 100; i++) {
            std::this_thread::sleep_for(std::chrono::microseconds(500 + 37 * (i % 13)));
            const auto t0 = std::chrono::steady_clock::now();
            EXPECT_TRUE(push_out(0, tok, frame));
            bytes got;
            EXPECT_TRUE(c->recv(got, frame.size()));
            us.push_back(std::chrono::duration<double, std::micro>(
                                 std::chrono::steady_clock::now() - t0)
                                 .count());
        }
        std::sort(us.begin(), us.end());
        printf("  worker frame -> client, %s: p50 %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us\n",
               what, us[50], us[90], us[99], us.back());
        return us[50];
    };
    // Idle: no allocation, no request for a while (after the linger).
    std::this_thread::sleep_for(std::chrono::nanoseconds(stream_busy_linger_ns) + 50ms);
    const double idle_p50 = measure("idle (no bound connection)");
    EXPECT_LT(idle_p50, 30000);
    bind_cmd(tok, 0, 50030);
    std::this_thread::sleep_for(20ms);
    const double busy_p50 = measure("busy (a bound connection)");
    EXPECT_LT(busy_p50, 5000);
    // The cost of waking every stream_busy_wait_ns with nothing to do.
    const double cpu0 = cpu_seconds();
    std::this_thread::sleep_for(1s);
    printf("  CPU while bound and silent: %.1f%% of a core (%u threads, one busy)\n",
           (cpu_seconds() - cpu0) * 100, threads_);
}

} // namespace
