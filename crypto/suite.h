// SRTP protection suites and SDES key material.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace isar::crypto {

// How one direction of a leg is protected. `none` is plain RTP/RTCP.
enum class suite : uint8_t {
    none = 0,
    aes_cm_128_hmac_sha1_80,
    aes_cm_128_hmac_sha1_32,
    aead_aes_128_gcm,
    aead_aes_256_gcm,
};

// "AES_CM_128_HMAC_SHA1_80" ... "AEAD_AES_256_GCM"; "none" is not accepted here.
std::optional<suite> parse_suite(std::string_view name) noexcept;
std::string_view suite_name(suite s) noexcept;

constexpr size_t max_master_key_len = 32;
constexpr size_t max_master_salt_len = 14;

size_t suite_key_len(suite s) noexcept;   // 16 or 32
size_t suite_salt_len(suite s) noexcept;  // 14 (AES-CM) or 12 (GCM)
size_t suite_rtp_tag_len(suite s) noexcept; // 10, 4 or 16
size_t suite_rtcp_tag_len(suite s) noexcept; // 10, 10 or 16 (SRTCP with _32 still uses 80-bit tags)

// Master key and salt of one direction. Wiped on destruction and on move-from;
// never printed: there is deliberately no formatter or stream operator.
class key_material {
public:
    key_material() noexcept = default;
    key_material(const key_material&) noexcept;
    key_material& operator=(const key_material&) noexcept;
    key_material(key_material&&) noexcept;            // copies, then wipes the source
    key_material& operator=(key_material&&) noexcept; // copies, then wipes the source
    ~key_material();

    suite s = suite::none;
    uint8_t key[max_master_key_len] = {};
    uint8_t salt[max_master_salt_len] = {};

    size_t key_len() const noexcept { return suite_key_len(s); }
    size_t salt_len() const noexcept { return suite_salt_len(s); }
    void wipe() noexcept;
};

// Parses an SDES inline key (RFC 4568 `inline:` base64 key||salt, with any
// "|lifetime|MKI" suffix rejected) for `s`. On failure returns false and sets
// `err` to a message that never contains key bytes.
bool parse_sdes_inline(suite s, std::string_view base64, key_material& out, std::string& err);

// Parses "SUITE:BASE64" as used by the control protocol and isarctl.
bool parse_suite_key(std::string_view spec, key_material& out, std::string& err);

} // namespace isar::crypto
