// SRTP suites and SDES key material (control path only).
#include "crypto/suite.h"

#include <cstring>

#include <openssl/base64.h>
#include <openssl/mem.h>

namespace isar::crypto {

namespace {

struct suite_info {
    suite s;
    std::string_view name;
    size_t key_len;
    size_t salt_len;
    size_t rtp_tag_len;
    size_t rtcp_tag_len;
};

constexpr suite_info suites[] = {
        {suite::aes_cm_128_hmac_sha1_80, "AES_CM_128_HMAC_SHA1_80", 16, 14, 10, 10},
        {suite::aes_cm_128_hmac_sha1_32, "AES_CM_128_HMAC_SHA1_32", 16, 14, 4, 10},
        {suite::aead_aes_128_gcm, "AEAD_AES_128_GCM", 16, 12, 16, 16},
        {suite::aead_aes_256_gcm, "AEAD_AES_256_GCM", 32, 12, 16, 16},
};

const suite_info* find_info(suite s) noexcept
{
    for (const auto& i : suites) {
        if (i.s == s) {
            return &i;
        }
    }
    return nullptr;
}

// Wipes a stack buffer holding key bytes when it goes out of scope.
struct scoped_wipe {
    void* p;
    size_t n;
    ~scoped_wipe() { OPENSSL_cleanse(p, n); }
};

} // namespace

std::optional<suite> parse_suite(std::string_view name) noexcept
{
    for (const auto& i : suites) {
        if (i.name == name) {
            return i.s;
        }
    }
    return std::nullopt;
}

std::string_view suite_name(suite s) noexcept
{
    const suite_info* i = find_info(s);
    return i != nullptr ? i->name : std::string_view("none");
}

size_t suite_key_len(suite s) noexcept
{
    const suite_info* i = find_info(s);
    return i != nullptr ? i->key_len : 0;
}

size_t suite_salt_len(suite s) noexcept
{
    const suite_info* i = find_info(s);
    return i != nullptr ? i->salt_len : 0;
}

size_t suite_rtp_tag_len(suite s) noexcept
{
    const suite_info* i = find_info(s);
    return i != nullptr ? i->rtp_tag_len : 0;
}

size_t suite_rtcp_tag_len(suite s) noexcept
{
    const suite_info* i = find_info(s);
    return i != nullptr ? i->rtcp_tag_len : 0;
}

// ---- key_material -------------------------------------------------------------

key_material::key_material(const key_material& o) noexcept : s(o.s)
{
    std::memcpy(key, o.key, sizeof key);
    std::memcpy(salt, o.salt, sizeof salt);
}

key_material& key_material::operator=(const key_material& o) noexcept
{
    if (this != &o) {
        wipe();
        s = o.s;
        std::memcpy(key, o.key, sizeof key);
        std::memcpy(salt, o.salt, sizeof salt);
    }
    return *this;
}

key_material::key_material(key_material&& o) noexcept : key_material(o)
{
    o.wipe();
}

key_material& key_material::operator=(key_material&& o) noexcept
{
    if (this != &o) {
        *this = static_cast<const key_material&>(o);
        o.wipe();
    }
    return *this;
}

key_material::~key_material()
{
    wipe();
}

void key_material::wipe() noexcept
{
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(salt, sizeof salt);
    s = suite::none;
}

// ---- SDES ---------------------------------------------------------------------

bool parse_sdes_inline(suite s, std::string_view b64, key_material& out, std::string& err)
{
    const suite_info* info = find_info(s);
    if (info == nullptr) {
        err = "SDES key: no suite given (suite 'none' takes no key)";
        return false;
    }
    if (b64.substr(0, 7) == "inline:") {
        b64.remove_prefix(7);
    }
    if (b64.find('|') != std::string_view::npos) {
        err = "SDES key: lifetime/MKI parameters ('|...' after the key) are not supported; "
              "give the bare inline key";
        return false;
    }
    const size_t want = info->key_len + info->salt_len;
    std::string expect = std::string(info->name) + " needs " + std::to_string(want) +
                         " bytes of base64-encoded key||salt (" + std::to_string(info->key_len) +
                         "+" + std::to_string(info->salt_len) + ")";
    if (b64.empty()) {
        err = "SDES key: empty; " + expect;
        return false;
    }
    // Standard base64 (RFC 4648 §4). Some peers omit the '=' padding: add it back.
    char padded[128];
    scoped_wipe wipe_padded{padded, sizeof padded};
    size_t plen = b64.size();
    size_t pad = (4 - plen % 4) % 4;
    if (plen + pad > sizeof padded || pad == 3) {
        err = "SDES key: wrong length; " + expect;
        return false;
    }
    for (size_t i = 0; i < plen; ++i) {
        char c = b64[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || c == '=';
        if (!ok) {
            err = "SDES key: not base64 (character at offset " + std::to_string(i) +
                  " is not in the base64 alphabet)";
            return false;
        }
        padded[i] = c;
    }
    for (size_t i = 0; i < pad; ++i) {
        padded[plen + i] = '=';
    }
    plen += pad;

    uint8_t raw[96];
    scoped_wipe wipe_raw{raw, sizeof raw};
    size_t max_len = 0;
    if (!EVP_DecodedLength(&max_len, plen) || max_len > sizeof raw) {
        err = "SDES key: wrong length; " + expect;
        return false;
    }
    size_t got = 0;
    if (!EVP_DecodeBase64(raw, &got, sizeof raw, reinterpret_cast<const uint8_t*>(padded), plen)) {
        err = "SDES key: invalid base64 (bad padding or trailing bits)";
        return false;
    }
    if (got != want) {
        err = "SDES key: decodes to " + std::to_string(got) + " bytes; " + expect;
        return false;
    }
    out.wipe();
    out.s = s;
    std::memcpy(out.key, raw, info->key_len);
    std::memcpy(out.salt, raw + info->key_len, info->salt_len);
    return true;
}

bool parse_suite_key(std::string_view spec, key_material& out, std::string& err)
{
    size_t colon = spec.find(':');
    if (colon == std::string_view::npos) {
        err = "crypto spec: expected SUITE:BASE64 (e.g. AES_CM_128_HMAC_SHA1_80:<base64 key>)";
        return false;
    }
    std::string_view name = spec.substr(0, colon);
    std::optional<suite> s = parse_suite(name);
    if (!s) {
        // Echo the suite name only when it cannot be key material in disguise.
        bool printable = name.size() <= 32;
        for (char c : name) {
            printable = printable && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                      (c >= '0' && c <= '9') || c == '_');
        }
        err = "crypto spec: unknown suite" +
              (printable ? " '" + std::string(name) + "'" : std::string()) +
              "; expected AES_CM_128_HMAC_SHA1_80, AES_CM_128_HMAC_SHA1_32, AEAD_AES_128_GCM "
              "or AEAD_AES_256_GCM";
        return false;
    }
    return parse_sdes_inline(*s, spec.substr(colon + 1), out, err);
}

} // namespace isar::crypto
