// The stream threads' tests (test_stream_server.cc: what they serve;
// test_stream_server_limits.cc: what they bound, refuse and count): the
// fixture plays control (the stream_hub) and the workers (its own rings and
// mempool) around a stream_server on 127.0.0.1 with ephemeral TCP and TLS
// ports, and the test clients (plain TCP and BoringSSL TLS).
#pragma once

#include "control/stream_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
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

namespace isar_stream_test {

using namespace isar;
using namespace isar::ctl;
using namespace std::chrono_literals;


using bytes = std::vector<uint8_t>;
constexpr unsigned nworkers = 2;

inline bytes stun_msg(uint16_t type, uint8_t tag)
{
    // Type, length 8, cookie, txid, REQUESTED-TRANSPORT (UDP).
    bytes m = {uint8_t(type >> 8), uint8_t(type), 0, 8, 0x21, 0x12, 0xa4, 0x42};
    for (int i = 0; i < 12; i++)
        m.push_back(uint8_t(tag + i));
    bytes a = {0x00, 0x19, 0x00, 0x04, 17, 0, 0, 0};
    m.insert(m.end(), a.begin(), a.end());
    return m;
}

inline bytes channel_data(uint16_t ch, size_t len, uint8_t fill, bool pad)
{
    bytes m = {uint8_t(ch >> 8), uint8_t(ch), uint8_t(len >> 8), uint8_t(len)};
    m.insert(m.end(), len, fill);
    if (pad)
        m.resize((m.size() + 3) & ~size_t{3}, 0);
    return m;
}

inline bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds max = 3000ms)
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

inline bool write_cert(const std::string& dir, const std::string& cn, std::string& cert,
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
        if (ssl != nullptr) {
            int r;
            do {
                errno = 0;
                r = SSL_write(ssl, b.data(), int(b.size()));
            } while (r <= 0 && errno == EINTR);
            return r == int(b.size());
        }
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

inline std::unique_ptr<client> connect_to(uint16_t port, int rcvbuf = 0)
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
inline std::unique_ptr<client> connect_tls(uint16_t port, uint16_t version, const std::string& alpn,
                                           std::string* peer_cn = nullptr, int rcvbuf = 0)
{
    auto c = connect_to(port, rcvbuf);
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
    // A signal to the test process (EINTR) interrupts the blocking read
    // under SSL_connect: try again, as for recv().
    int rc;
    do {
        errno = 0;
        rc = SSL_connect(c->ssl);
    } while (rc != 1 && errno == EINTR &&
             (SSL_get_error(c->ssl, rc) == SSL_ERROR_WANT_READ ||
              SSL_get_error(c->ssl, rc) == SSL_ERROR_WANT_WRITE));
    if (rc != 1) {
        // Some callers expect a refusal; say why for those that do not.
        const int e = errno;
        fprintf(stderr, "connect_tls(%u): SSL_connect %d, SSL error %d, %s, errno %s\n", port,
                rc, SSL_get_error(c->ssl, rc), ERR_reason_error_string(ERR_peek_last_error()),
                strerror(e));
        return nullptr;
    }
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
        prefix_ = "st" + std::to_string(seq);
        pool_ = rte_pktmbuf_pool_create((prefix_ + "pool").c_str(), 8191, 32, 0,
                                        RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
        ASSERT_NE(pool_, nullptr);
        dp_.pool = pool_;
        dp_.nworkers = nworkers;
        cfg_.listen_tcp = {0};
        cfg_.listen_tls = {0};
        cfg_.tls_cert = cert_;
        cfg_.tls_key = key_;
    }

    // The rings between threads_ stream threads and the workers.
    void make_rings()
    {
        for (unsigned t = 0; t < threads_; t++)
            for (unsigned w = 0; w < nworkers; w++) {
                const std::string n = prefix_ + "_" + std::to_string(t) + std::to_string(w);
                dp_.in.push_back(rte_ring_create((n + "i").c_str(), 1024, SOCKET_ID_ANY,
                                                 RING_F_SP_ENQ | RING_F_SC_DEQ));
                dp_.out.push_back(rte_ring_create((n + "o").c_str(), 1024, SOCKET_ID_ANY,
                                                  RING_F_SP_ENQ | RING_F_SC_DEQ));
                ASSERT_NE(dp_.in.back(), nullptr);
                ASSERT_NE(dp_.out.back(), nullptr);
            }
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

    // Starts the server with cfg_ and threads_ threads (set them before).
    void start()
    {
        ASSERT_NO_FATAL_FAILURE(make_rings());
        cfg_.stream_threads = threads_;
        hub_ = std::make_unique<stream_hub>(threads_, hub_max_events_);
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

    unsigned threads_ = 2;
    size_t hub_max_events_ = stream_hub_max_events;
    std::string prefix_;
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

} // namespace isar_stream_test
