// TURN authentication: long-term credentials (RFC 8489 §9.2), the TURN REST
// API shared-secret scheme exactly as coturn's `use-auth-secret` checks it,
// and stateless nonces. Pure functions over BoringSSL; secrets and derived
// keys are the caller's, in buffers it wipes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "turn/stun.h"

namespace isar::turn {

constexpr size_t long_term_key_len = 16; // MD5

// key = MD5(username ":" realm ":" password) (RFC 8489 §9.2.2, no SASLprep:
// REST usernames and passwords are ASCII).
void long_term_key(std::string_view username, std::string_view realm, std::string_view password,
                   uint8_t key[long_term_key_len]) noexcept;

// TURN REST API password: base64(HMAC-SHA1(secret, username)), 28 characters.
std::string rest_password(std::string_view secret, std::string_view username);

// The expiry in a REST username: "EXPIRY", "EXPIRY:USER" or "USER:EXPIRY"
// (decimal Unix seconds; the separator is ':'). nullopt when no part is a
// plain decimal number that fits in 63 bits. A value in milliseconds (as
// BigBlueButton sends the issue time) is returned unchanged, as coturn reads
// it: a number that large lies far in the future, so such a credential does
// not expire (README: rotate the secret to revoke).
std::optional<int64_t> rest_expiry(std::string_view username) noexcept;
// The USER part ("" when the username is only a number).
std::string_view rest_user(std::string_view username) noexcept;

// Stateless nonces: "<16 hex: issue time in seconds><24 hex: HMAC-SHA1(
// server_key, issue time || client address) truncated to 12 bytes>", 40
// characters. No table of issued nonces is kept; a nonce names its client,
// so one copied to another address is refused.
constexpr size_t nonce_len = 40;
constexpr size_t nonce_key_len = 32;
std::string make_nonce(const uint8_t key[nonce_key_len], int64_t now_s,
                       const transport_addr& client);
enum class nonce_status : uint8_t { ok, stale, bad };
nonce_status check_nonce(const uint8_t key[nonce_key_len], std::string_view nonce, int64_t now_s,
                         int64_t max_age_s, const transport_addr& client) noexcept;

} // namespace isar::turn
