// TURN over TLS: the BoringSSL server context (tls_context.h).
#include "control/tls_context.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

namespace isar::ctl {

namespace {

std::string ssl_error()
{
    const uint32_t e = ERR_get_error();
    ERR_clear_error();
    if (e == 0)
        return "unknown error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

int select_alpn(SSL* ssl, const uint8_t** out, uint8_t* out_len, const uint8_t* in,
                unsigned in_len, void*)
{
    // `in` is the client's list of length-prefixed names, already checked
    // well-formed by BoringSSL.
    const size_t want = sizeof(tls_alpn_turn) - 1;
    for (unsigned i = 0; i < in_len;) {
        const unsigned n = in[i];
        if (i + 1 + n > in_len)
            break;
        if (n == want && std::memcmp(in + i + 1, tls_alpn_turn, want) == 0) {
            *out = in + i + 1;
            *out_len = static_cast<uint8_t>(n);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    if (auto* refused = static_cast<bool*>(SSL_get_app_data(ssl)); refused != nullptr)
        *refused = true;
    return SSL_TLSEXT_ERR_ALERT_FATAL; // no_application_protocol
}

} // namespace

EVP_PKEY* load_private_key(const std::string& path, std::string& err)
{
    // Open first, then check the mode of what is open (no window between a
    // stat() and the open()), and read exactly its size into one buffer that
    // is wiped afterwards (a growing buffer would leave unwiped copies).
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        err = path + ": " + strerror(errno);
        return nullptr;
    }
    struct stat st{};
    if (::fstat(fd, &st) != 0) {
        err = path + ": " + strerror(errno);
        ::close(fd);
        return nullptr;
    }
    if (!S_ISREG(st.st_mode)) {
        err = path + ": not a regular file";
        ::close(fd);
        return nullptr;
    }
    if ((st.st_mode & (S_IRWXO | S_IWGRP | S_IXGRP)) != 0) {
        err = path + ": others may read or write it (mode " +
              std::to_string((st.st_mode >> 6) & 7) + std::to_string((st.st_mode >> 3) & 7) +
              std::to_string(st.st_mode & 7) + "); chmod 600 (or 640) it";
        ::close(fd);
        return nullptr;
    }
    constexpr off_t max_key = 1 << 20;
    if (st.st_size <= 0 || st.st_size > max_key) {
        err = path + ": " + (st.st_size <= 0 ? "empty" : "larger than 1 MiB: not a key");
        ::close(fd);
        return nullptr;
    }
    const auto size = static_cast<size_t>(st.st_size);
    std::unique_ptr<uint8_t[]> pem(new uint8_t[size]);
    size_t got = 0;
    while (got < size) {
        const ssize_t r = ::read(fd, pem.get() + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += static_cast<size_t>(r);
    }
    const int read_errno = errno;
    ::close(fd);
    EVP_PKEY* key = nullptr;
    if (got == size) {
        if (BIO* bio = BIO_new_mem_buf(pem.get(), size); bio != nullptr) {
            key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
            BIO_free(bio);
        }
    }
    OPENSSL_cleanse(pem.get(), size);
    if (got != size)
        err = path + ": short read (" + strerror(read_errno) + ")";
    else if (key == nullptr)
        err = path + ": no PEM private key in it (" + ssl_error() + ")";
    return key;
}

tls_context::tls_context(std::string cert_path, std::string key_path)
    : cert_(std::move(cert_path)), key_(std::move(key_path))
{
}

tls_context::~tls_context()
{
    SSL_CTX_free(ctx_);
}

int tls_context::reload(std::string& err)
{
    ERR_clear_error();
    bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) {
        err = "SSL_CTX_new: " + ssl_error();
        return -ENOMEM;
    }
    if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION) != 1) {
        err = "cannot set TLS 1.2-1.3: " + ssl_error();
        return -EINVAL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_.c_str()) != 1) {
        err = cert_ + ": no PEM certificate chain in it (" + ssl_error() + ")";
        return -EINVAL;
    }
    bssl::UniquePtr<EVP_PKEY> key(load_private_key(key_, err));
    if (!key)
        return -EINVAL;
    if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 ||
        SSL_CTX_check_private_key(ctx.get()) != 1) {
        err = key_ + ": the key does not match the certificate in " + cert_;
        ERR_clear_error();
        return -EINVAL;
    }
    // No resumption: TURN connections are long-lived, and without tickets
    // there is no ticket key to keep, rotate or leak (forward secrecy).
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, nullptr);
    std::lock_guard<std::mutex> g(mu_);
    SSL_CTX_free(ctx_);
    ctx_ = ctx.release();
    gen_++;
    return 0;
}

SSL* tls_context::new_ssl(bool* alpn_refused)
{
    SSL* ssl = nullptr;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (ctx_ == nullptr)
            return nullptr;
        ssl = SSL_new(ctx_); // holds its own reference to ctx_
    }
    if (ssl != nullptr) {
        SSL_set_accept_state(ssl);
        SSL_set_app_data(ssl, alpn_refused);
    }
    return ssl;
}

uint64_t tls_context::generation() const
{
    std::lock_guard<std::mutex> g(mu_);
    return gen_;
}

namespace detail {

namespace {
struct probe {
    const void* addr;
    const char* name;
};
const probe probes[] = {
        {reinterpret_cast<const void*>(&SSL_CTX_new), "SSL_CTX_new"},
        {reinterpret_cast<const void*>(&TLS_server_method), "TLS_server_method"},
        {reinterpret_cast<const void*>(&SSL_CTX_use_certificate_chain_file),
         "SSL_CTX_use_certificate_chain_file"},
        {reinterpret_cast<const void*>(&SSL_CTX_use_PrivateKey), "SSL_CTX_use_PrivateKey"},
        {reinterpret_cast<const void*>(&SSL_CTX_set_alpn_select_cb), "SSL_CTX_set_alpn_select_cb"},
        {reinterpret_cast<const void*>(&SSL_new), "SSL_new"},
        {reinterpret_cast<const void*>(&SSL_set_bio), "SSL_set_bio"},
        {reinterpret_cast<const void*>(&SSL_do_handshake), "SSL_do_handshake"},
        {reinterpret_cast<const void*>(&SSL_read), "SSL_read"},
        {reinterpret_cast<const void*>(&SSL_write), "SSL_write"},
        {reinterpret_cast<const void*>(&SSL_free), "SSL_free"},
};
} // namespace

const void* tls_symbol_probe(int i) noexcept
{
    return i >= 0 && i < static_cast<int>(std::size(probes)) ? probes[i].addr : nullptr;
}
const char* tls_symbol_probe_name(int i) noexcept
{
    return i >= 0 && i < static_cast<int>(std::size(probes)) ? probes[i].name : nullptr;
}

} // namespace detail

} // namespace isar::ctl
