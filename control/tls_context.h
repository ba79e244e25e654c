// TURN over TLS (TURNS): the BoringSSL server context of the stream threads.
// TLS 1.2 and 1.3, the certificate chain and private key from PEM files, ALPN
// `stun.turn` (RFC 7443), no session resumption. `reload()` (SIGHUP) builds a
// new context from the files and swaps it in for connections accepted from
// then on; a connection keeps the context it started with (SSL_new holds a
// reference), so no connection is dropped. A failed reload keeps the old one.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include <openssl/base.h>

namespace isar::ctl {

// ALPN (RFC 7301): what Isar's TLS listeners accept.
// - The client offers "stun.turn": selected.
// - The client sends no ALPN extension (browsers' TURNS, coturn's clients,
//   turnutils): accepted without ALPN.
// - The client offers only other protocols ("h2", "http/1.1": a web browser
//   that reached port 443): refused with the no_application_protocol alert
//   (RFC 7301 §3.2), so it fails at once and clearly instead of sending HTTP
//   into the TURN framing; counted by the stream threads (tls_alpn_refused).
inline constexpr char tls_alpn_turn[] = "stun.turn";

class tls_context {
public:
    tls_context(std::string cert_path, std::string key_path);
    ~tls_context();
    tls_context(const tls_context&) = delete;
    tls_context& operator=(const tls_context&) = delete;

    // Loads the files into a new SSL_CTX and makes it current. 0, or -errno
    // and `err` (naming the file; never the key material); on error the
    // current context (if any) stays.
    int reload(std::string& err);
    // A new server SSL on the current context (nullptr before a successful
    // reload() or when out of memory). `alpn_refused` (may be null) is set to
    // true if the handshake fails because the client offered only other
    // protocols; it must outlive the SSL.
    SSL* new_ssl(bool* alpn_refused);
    // How many times a context was loaded (1 after the first reload()).
    uint64_t generation() const;

    const std::string& cert_path() const { return cert_; }
    const std::string& key_path() const { return key_; }

private:
    const std::string cert_, key_;
    mutable std::mutex mu_;
    SSL_CTX* ctx_ = nullptr; // owned (one reference); SSLs hold their own
    uint64_t gen_ = 0;
};

// Reads a PEM private key from `path`, refusing a file others may read or
// write (the group may read it: root:isar 0640). The file's bytes are wiped
// from memory once parsed. nullptr and `err` on failure.
EVP_PKEY* load_private_key(const std::string& path, std::string& err);

namespace detail {
// Test hook (tests/crypto/test_boringssl_binding.cc): the addresses of the
// libssl functions the stream threads call, taken here, so a test can prove
// they resolve into BoringSSL's libssl, not OpenSSL's. nullptr past the last.
const void* tls_symbol_probe(int i) noexcept;
const char* tls_symbol_probe_name(int i) noexcept;
} // namespace detail

} // namespace isar::ctl
