// TURN authentication helpers: long-term keys, TURN REST API passwords as
// coturn's use-auth-secret computes them, and stateless HMAC nonces.
#include "turn/auth.h"

#include <limits>
#include <openssl/base64.h>
#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/md5.h>
#include <openssl/mem.h>

namespace isar::turn {

namespace {

constexpr size_t sha1_len = 20;
constexpr size_t nonce_time_hex = 16;
constexpr size_t nonce_mac_len = 12; // bytes; 24 hex characters
constexpr int64_t nonce_future_slack_s = 60;
constexpr char hex_digits[] = "0123456789abcdef";

// A non-empty run of ASCII digits that fits in 63 bits.
std::optional<int64_t> parse_decimal(std::string_view s) noexcept
{
    if (s.empty()) {
        return std::nullopt;
    }
    int64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        const int d = c - '0';
        if (v > (std::numeric_limits<int64_t>::max() - d) / 10) {
            return std::nullopt;
        }
        v = v * 10 + d;
    }
    return v;
}

bool all_digits(std::string_view s) noexcept
{
    if (s.empty()) {
        return false;
    }
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    return true;
}

// HMAC-SHA1(key, time || family || port || ip), the nonce's authenticator.
// Returns false only if BoringSSL fails.
bool nonce_mac(const uint8_t key[nonce_key_len], uint64_t t, const transport_addr& client,
               uint8_t out[sha1_len]) noexcept
{
    uint8_t in[8 + 1 + 2 + 16];
    for (int i = 0; i < 8; i++) {
        in[i] = static_cast<uint8_t>(t >> (56 - 8 * i));
    }
    in[8] = client.family;
    in[9] = static_cast<uint8_t>(client.port >> 8);
    in[10] = static_cast<uint8_t>(client.port);
    std::memcpy(in + 11, client.ip, 16);
    unsigned out_len = 0;
    return HMAC(EVP_sha1(), key, nonce_key_len, in, sizeof in, out, &out_len) != nullptr &&
           out_len == sha1_len;
}

int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1; // uppercase is refused: make_nonce() never writes it
}

} // namespace

void long_term_key(std::string_view username, std::string_view realm, std::string_view password,
                   uint8_t key[long_term_key_len]) noexcept
{
    MD5_CTX md5;
    MD5_Init(&md5);
    MD5_Update(&md5, username.data(), username.size());
    MD5_Update(&md5, ":", 1);
    MD5_Update(&md5, realm.data(), realm.size());
    MD5_Update(&md5, ":", 1);
    MD5_Update(&md5, password.data(), password.size());
    MD5_Final(key, &md5);
    OPENSSL_cleanse(&md5, sizeof md5);
}

std::string rest_password(std::string_view secret, std::string_view username)
{
    uint8_t mac[sha1_len];
    unsigned mac_len = 0;
    if (HMAC(EVP_sha1(), secret.data(), secret.size(),
             reinterpret_cast<const uint8_t*>(username.data()), username.size(), mac,
             &mac_len) == nullptr) {
        return {};
    }
    uint8_t b64[4 * ((sha1_len + 2) / 3) + 1]; // 28 characters and the NUL
    const size_t n = EVP_EncodeBlock(b64, mac, mac_len);
    std::string out(reinterpret_cast<const char*>(b64), n);
    OPENSSL_cleanse(mac, sizeof mac);
    OPENSSL_cleanse(b64, sizeof b64);
    return out;
}

std::optional<int64_t> rest_expiry(std::string_view username) noexcept
{
    // coturn (use-auth-secret): the part before the first ':' when it is all
    // digits, else the part after the separator.
    const size_t first = username.find(':');
    if (first == std::string_view::npos) {
        return parse_decimal(username);
    }
    const std::string_view head = username.substr(0, first);
    if (all_digits(head)) {
        return parse_decimal(head);
    }
    return parse_decimal(username.substr(username.rfind(':') + 1));
}

std::string_view rest_user(std::string_view username) noexcept
{
    const size_t first = username.find(':');
    if (first == std::string_view::npos) {
        return all_digits(username) ? std::string_view{} : username;
    }
    if (all_digits(username.substr(0, first))) {
        return username.substr(first + 1);
    }
    const size_t last = username.rfind(':');
    if (all_digits(username.substr(last + 1))) {
        return username.substr(0, last);
    }
    return username;
}

std::string make_nonce(const uint8_t key[nonce_key_len], int64_t now_s,
                       const transport_addr& client)
{
    const uint64_t t = static_cast<uint64_t>(now_s);
    uint8_t mac[sha1_len] = {};
    nonce_mac(key, t, client, mac);
    std::string out(nonce_len, '0');
    for (size_t i = 0; i < nonce_time_hex; i++) {
        out[i] = hex_digits[(t >> (60 - 4 * i)) & 0xf];
    }
    for (size_t i = 0; i < nonce_mac_len; i++) {
        out[nonce_time_hex + 2 * i] = hex_digits[mac[i] >> 4];
        out[nonce_time_hex + 2 * i + 1] = hex_digits[mac[i] & 0xf];
    }
    OPENSSL_cleanse(mac, sizeof mac);
    return out;
}

nonce_status check_nonce(const uint8_t key[nonce_key_len], std::string_view nonce, int64_t now_s,
                         int64_t max_age_s, const transport_addr& client) noexcept
{
    if (nonce.size() != nonce_len) {
        return nonce_status::bad;
    }
    uint64_t t = 0;
    for (size_t i = 0; i < nonce_time_hex; i++) {
        const int d = hex_value(nonce[i]);
        if (d < 0) {
            return nonce_status::bad;
        }
        t = (t << 4) | static_cast<uint64_t>(d);
    }
    uint8_t got[nonce_mac_len];
    for (size_t i = 0; i < nonce_mac_len; i++) {
        const int hi = hex_value(nonce[nonce_time_hex + 2 * i]);
        const int lo = hex_value(nonce[nonce_time_hex + 2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return nonce_status::bad;
        }
        got[i] = static_cast<uint8_t>((hi << 4) | lo);
    }
    // Authenticity first, so that only a nonce this server issued to this
    // client can be called stale (and earn a fresh one without a 401 loop).
    uint8_t want[sha1_len];
    const bool mac_ok =
            nonce_mac(key, t, client, want) && CRYPTO_memcmp(want, got, nonce_mac_len) == 0;
    OPENSSL_cleanse(want, sizeof want);
    if (!mac_ok || t > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return nonce_status::bad;
    }
    const int64_t issued = static_cast<int64_t>(t);
    if (issued - nonce_future_slack_s > now_s) {
        return nonce_status::bad; // from the future: a clock jump or a forgery
    }
    // issued >= 0 and now_s >= issued - 60, so this cannot overflow.
    if (now_s - issued > max_age_s) {
        return nonce_status::stale;
    }
    return nonce_status::ok;
}

} // namespace isar::turn
