// STUN/TURN codec (RFC 8489, RFC 8656). Every read is bounds-checked against
// the message's own length, which parse() first checks against the buffer; no
// function here allocates, throws or keeps state.
#include "turn/stun.h"

#include <openssl/mem.h>
#include <openssl/sha.h>
#include <zlib.h>

namespace isar::turn {

namespace {

constexpr uint32_t fingerprint_xor = 0x5354554e; // "STUN"
constexpr size_t hmac_sha1_len = SHA_DIGEST_LENGTH;
// attr_view::offset and message::len are 16 bits, so a whole message (header
// included) is at most 65532 bytes, the largest multiple of 4 that fits. Over
// UDP nothing larger can arrive anyway (65507 bytes of IPv4 payload).
constexpr size_t max_total = 65532;

uint16_t be16(const uint8_t* p) noexcept
{
    return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

uint32_t be32(const uint8_t* p) noexcept
{
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3];
}

void put16(uint8_t* p, uint16_t v) noexcept
{
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}

void put32(uint8_t* p, uint32_t v) noexcept
{
    p[0] = static_cast<uint8_t>(v >> 24);
    p[1] = static_cast<uint8_t>(v >> 16);
    p[2] = static_cast<uint8_t>(v >> 8);
    p[3] = static_cast<uint8_t>(v);
}

// HMAC-SHA1 (RFC 2104) over SHA_CTX on the stack. BoringSSL's HMAC_CTX
// mallocs its digest states (three allocations per MAC in the Debian build),
// which the codec promises not to do; this streams the same way.
class hmac_sha1 {
public:
    hmac_sha1(const uint8_t* key, size_t key_len) noexcept
    {
        uint8_t k[SHA_CBLOCK] = {};
        if (key_len > SHA_CBLOCK) {
            SHA1(key, key_len, k);
        } else if (key_len > 0) {
            std::memcpy(k, key, key_len);
        }
        uint8_t pad[SHA_CBLOCK];
        for (size_t i = 0; i < SHA_CBLOCK; i++) {
            pad[i] = k[i] ^ 0x36;
        }
        SHA1_Init(&inner_);
        SHA1_Update(&inner_, pad, sizeof pad);
        for (size_t i = 0; i < SHA_CBLOCK; i++) {
            pad[i] = k[i] ^ 0x5c;
        }
        SHA1_Init(&outer_);
        SHA1_Update(&outer_, pad, sizeof pad);
        OPENSSL_cleanse(k, sizeof k);
        OPENSSL_cleanse(pad, sizeof pad);
    }
    ~hmac_sha1()
    {
        OPENSSL_cleanse(&inner_, sizeof inner_);
        OPENSSL_cleanse(&outer_, sizeof outer_);
    }
    hmac_sha1(const hmac_sha1&) = delete; // lint: control-only
    hmac_sha1& operator=(const hmac_sha1&) = delete; // lint: control-only

    void update(const uint8_t* p, size_t n) noexcept { SHA1_Update(&inner_, p, n); }
    void final(uint8_t out[hmac_sha1_len]) noexcept
    {
        uint8_t ih[hmac_sha1_len];
        SHA1_Final(ih, &inner_);
        SHA1_Update(&outer_, ih, sizeof ih);
        SHA1_Final(out, &outer_);
        OPENSSL_cleanse(ih, sizeof ih);
    }

private:
    SHA_CTX inner_;
    SHA_CTX outer_;
};

// The MAC of msg[0..mi_off) with the header's length field patched to cover
// the message up to and including a 24-byte MESSAGE-INTEGRITY at mi_off.
void integrity_of(const uint8_t* msg, size_t mi_off, const uint8_t* key, size_t key_len,
                  uint8_t out[hmac_sha1_len]) noexcept
{
    uint8_t hdr[header_len];
    std::memcpy(hdr, msg, header_len);
    put16(hdr + 2, static_cast<uint16_t>(mi_off - header_len + 24));
    hmac_sha1 h(key, key_len);
    h.update(hdr, header_len);
    h.update(msg + header_len, mi_off - header_len);
    h.final(out);
}

// Header checks shared by looks_like_stun() and parse(); the message length
// field on success.
parse_status check_header(const uint8_t* p, size_t len, uint16_t& msg_len) noexcept
{
    if (p == nullptr || len < header_len) {
        return parse_status::too_short;
    }
    if ((p[0] & 0xc0) != 0 || be32(p + 4) != magic_cookie) {
        return parse_status::not_stun;
    }
    msg_len = be16(p + 2);
    if (msg_len % 4 != 0) {
        return parse_status::bad_length;
    }
    if (header_len + msg_len > len) {
        return parse_status::too_short;
    }
    return parse_status::ok;
}

// Walks the attributes of a message whose header passed check_header(), once.
// Calls f(type, value_len, offset) for each attribute that counts: none after
// MESSAGE-INTEGRITY except MESSAGE-INTEGRITY-SHA256 and FINGERPRINT. Verifies
// FINGERPRINT (last, 4 bytes, CRC matches) before handing it to f.
template <class F>
parse_status walk_attrs(const uint8_t* p, size_t end, F&& f) noexcept
{
    if (end > max_total) {
        return parse_status::bad_length;
    }
    size_t off = header_len;
    bool after_integrity = false;
    while (off < end) {
        if (end - off < 4) {
            return parse_status::bad_attribute;
        }
        const uint16_t t = be16(p + off);
        const uint16_t alen = be16(p + off + 2);
        const size_t next = off + 4 + alen + pad4(alen);
        if (next > end) {
            return parse_status::bad_attribute;
        }
        if (t == attr::fingerprint &&
            (alen != 4 || next != end || be32(p + off + 4) != fingerprint_of(p, off))) {
            return parse_status::bad_fingerprint;
        }
        if (!after_integrity || t == attr::message_integrity_sha256 || t == attr::fingerprint) {
            const parse_status s = f(t, alen, off);
            if (s != parse_status::ok) {
                return s;
            }
        }
        if (t == attr::message_integrity) {
            after_integrity = true;
        }
        off = next;
    }
    return parse_status::ok;
}

// Decodes the (X)OR-ed address value v[0..len); `mask` is the 16 bytes to XOR
// with (cookie || txid), or nullptr for a plain MAPPED-ADDRESS.
bool decode_address(const uint8_t* v, size_t len, const uint8_t* mask, transport_addr& out) noexcept
{
    if (v == nullptr || len < 4) {
        return false;
    }
    size_t n;
    if (v[1] == 0x01 && len == 8) {
        n = 4;
    } else if (v[1] == 0x02 && len == 20) {
        n = 16;
    } else {
        return false;
    }
    transport_addr a;
    a.family = n == 4 ? 4 : 6;
    a.port = be16(v + 2);
    if (mask != nullptr) {
        a.port ^= static_cast<uint16_t>(magic_cookie >> 16);
    }
    for (size_t i = 0; i < n; i++) {
        a.ip[i] = static_cast<uint8_t>(v[4 + i] ^ (mask != nullptr ? mask[i] : 0));
    }
    out = a;
    return true;
}

// The XOR mask of RFC 8489 §14.2: the magic cookie, then the transaction ID.
void xor_mask(const uint8_t* txid, uint8_t mask[16]) noexcept
{
    put32(mask, magic_cookie);
    std::memcpy(mask + 4, txid, txid_len);
}

// Writes an XOR-address value for `a` (8 or 20 bytes); its length, 0 if the
// family is neither 4 nor 6.
size_t encode_xor_address(uint8_t* v, const transport_addr& a, const uint8_t* txid) noexcept
{
    const size_t n = a.family == 4 ? 4 : a.family == 6 ? 16 : 0;
    if (n == 0) {
        return 0;
    }
    uint8_t mask[16];
    xor_mask(txid, mask);
    v[0] = 0;
    v[1] = n == 4 ? 0x01 : 0x02;
    put16(v + 2, static_cast<uint16_t>(a.port ^ (magic_cookie >> 16)));
    for (size_t i = 0; i < n; i++) {
        v[4 + i] = a.ip[i] ^ mask[i];
    }
    return 4 + n;
}

} // namespace

bool known_required(uint16_t type) noexcept
{
    switch (type) {
    case attr::mapped_address:
    case attr::username:
    case attr::message_integrity:
    case attr::error_code:
    case attr::unknown_attributes:
    case attr::channel_number:
    case attr::lifetime:
    case attr::xor_peer_address:
    case attr::data:
    case attr::realm:
    case attr::nonce:
    case attr::xor_relayed_address:
    case attr::requested_address_family:
    case attr::even_port:
    case attr::requested_transport:
    case attr::dont_fragment:
    case attr::message_integrity_sha256:
    case attr::password_algorithm:
    case attr::userhash:
    case attr::xor_mapped_address:
    case attr::reservation_token:
    case attr::priority:
    case attr::use_candidate:
    case attr::padding:
    case attr::response_port:
    case attr::connection_id:
        return true;
    default:
        return false;
    }
}

const char* parse_status_name(parse_status s) noexcept
{
    switch (s) {
    case parse_status::ok:
        return "ok";
    case parse_status::too_short:
        return "too_short";
    case parse_status::not_stun:
        return "not_stun";
    case parse_status::bad_length:
        return "bad_length";
    case parse_status::bad_attribute:
        return "bad_attribute";
    case parse_status::too_many:
        return "too_many";
    case parse_status::bad_fingerprint:
        return "bad_fingerprint";
    }
    return "unknown";
}

bool looks_like_stun(const uint8_t* p, size_t len) noexcept
{
    uint16_t msg_len = 0;
    return check_header(p, len, msg_len) == parse_status::ok;
}

parse_status parse(const uint8_t* p, size_t len, message& out) noexcept
{
    out.nattrs = 0;
    out.integrity = -1;
    out.fingerprint = -1;
    out.nunknown = 0;
    uint16_t msg_len = 0;
    if (const parse_status s = check_header(p, len, msg_len); s != parse_status::ok) {
        return s;
    }
    const size_t end = header_len + msg_len;
    out.type = be16(p);
    out.method = type_method(out.type);
    out.cls = type_class(out.type);
    out.txid = p + 8;
    out.data = p;
    out.len = static_cast<uint16_t>(end); // end <= max_total is checked by walk_attrs()
    return walk_attrs(p, end, [&](uint16_t t, uint16_t alen, size_t off) {
        if (out.nattrs >= message::max_attrs) {
            return parse_status::too_many;
        }
        const int idx = static_cast<int>(out.nattrs);
        out.attrs[out.nattrs++] = {t, alen, static_cast<uint16_t>(off), p + off + 4};
        if (t == attr::message_integrity && out.integrity < 0) {
            out.integrity = idx;
        } else if (t == attr::fingerprint) {
            out.fingerprint = idx;
        } else if (t < 0x8000 && !known_required(t) && out.nunknown < message::max_unknown) {
            bool seen = false;
            for (unsigned i = 0; i < out.nunknown; i++) {
                seen = seen || out.unknown[i] == t;
            }
            if (!seen) {
                out.unknown[out.nunknown++] = t;
            }
        }
        return parse_status::ok;
    });
}

bool read_xor_address(const message& m, const attr_view& a, transport_addr& out) noexcept
{
    if (m.txid == nullptr) {
        return false;
    }
    uint8_t mask[16];
    xor_mask(m.txid, mask);
    return decode_address(a.value, a.len, mask, out);
}

bool read_address(const attr_view& a, transport_addr& out) noexcept
{
    return decode_address(a.value, a.len, nullptr, out);
}

bool read_u32(const attr_view& a, uint32_t& out) noexcept
{
    if (a.value == nullptr || a.len != 4) {
        return false;
    }
    out = be32(a.value);
    return true;
}

bool read_channel_number(const attr_view& a, uint16_t& out) noexcept
{
    if (a.value == nullptr || a.len != 4) {
        return false;
    }
    out = be16(a.value);
    return true;
}

bool read_requested_transport(const attr_view& a, uint8_t& proto) noexcept
{
    if (a.value == nullptr || a.len != 4) {
        return false;
    }
    proto = a.value[0];
    return true;
}

bool read_address_family(const attr_view& a, uint8_t& family) noexcept
{
    if (a.value == nullptr || a.len != 4) {
        return false;
    }
    family = a.value[0] == 0x01 ? 4 : a.value[0] == 0x02 ? 6 : 0;
    return true;
}

bool read_even_port(const attr_view& a, bool& reserve) noexcept
{
    if (a.value == nullptr || a.len != 1) {
        return false;
    }
    reserve = (a.value[0] & 0x80) != 0;
    return true;
}

bool read_error_code(const attr_view& a, uint16_t& code) noexcept
{
    if (a.value == nullptr || a.len < 4) {
        return false;
    }
    const unsigned cls = a.value[2] & 0x07;
    const unsigned number = a.value[3];
    if (cls < 3 || cls > 6 || number > 99) {
        return false;
    }
    code = static_cast<uint16_t>(cls * 100 + number);
    return true;
}

bool read_address_error_code(const attr_view& a, uint8_t& family, uint16_t& code) noexcept
{
    if (a.value == nullptr || a.len < 4) {
        return false;
    }
    const unsigned cls = a.value[2] & 0x07;
    const unsigned number = a.value[3];
    if (cls < 3 || cls > 6 || number > 99) {
        return false;
    }
    family = a.value[0] == 0x01 ? 4 : a.value[0] == 0x02 ? 6 : 0;
    code = static_cast<uint16_t>(cls * 100 + number);
    return true;
}

std::string_view as_string(const attr_view& a) noexcept
{
    if (a.value == nullptr) {
        return {};
    }
    return {reinterpret_cast<const char*>(a.value), a.len};
}

bool check_integrity(const message& m, const uint8_t* key, size_t key_len) noexcept
{
    if (m.integrity < 0 || static_cast<unsigned>(m.integrity) >= m.nattrs || m.data == nullptr) {
        return false;
    }
    const attr_view& a = m.attrs[m.integrity];
    if (a.len != hmac_sha1_len || a.offset < header_len || a.offset + 24u > m.len) {
        return false;
    }
    uint8_t mac[hmac_sha1_len];
    integrity_of(m.data, a.offset, key, key_len, mac);
    return CRYPTO_memcmp(mac, a.value, hmac_sha1_len) == 0;
}

uint32_t fingerprint_of(const uint8_t* msg, size_t len) noexcept
{
    // zlib's crc32 takes a uInt length; STUN messages are far below 4 GiB.
    const uLong crc = crc32(0L, msg, static_cast<uInt>(len));
    return static_cast<uint32_t>(crc) ^ fingerprint_xor;
}

// ---- builder ------------------------------------------------------------------

builder::builder(uint8_t* buf, size_t cap, uint16_t type, const uint8_t* txid) noexcept
    : buf_(buf), cap_(cap)
{
    if (buf == nullptr || cap < header_len) {
        ok_ = false;
        return;
    }
    put16(buf_, static_cast<uint16_t>(type & 0x3fff));
    put16(buf_ + 2, 0);
    put32(buf_ + 4, magic_cookie);
    if (txid != nullptr) {
        std::memcpy(buf_ + 8, txid, txid_len);
    } else {
        std::memset(buf_ + 8, 0, txid_len);
    }
    len_ = header_len;
}

uint8_t* builder::hdr(uint16_t type, size_t len) noexcept
{
    if (!ok_) {
        return nullptr;
    }
    const size_t need = 4 + len + pad4(len);
    if (len > 0xffff || len_ + need > cap_ || len_ + need > max_total) {
        ok_ = false;
        return nullptr;
    }
    uint8_t* a = buf_ + len_;
    put16(a, type);
    put16(a + 2, static_cast<uint16_t>(len));
    std::memset(a + 4 + len, 0, pad4(len));
    len_ += need;
    set_length(len_ - header_len);
    return a + 4;
}

void builder::set_length(size_t body) noexcept
{
    put16(buf_ + 2, static_cast<uint16_t>(body));
}

void builder::add(uint16_t type, const void* value, size_t len) noexcept
{
    if (value == nullptr && len != 0) {
        ok_ = false;
        return;
    }
    if (uint8_t* v = hdr(type, len); v != nullptr && len != 0) {
        std::memcpy(v, value, len);
    }
}

void builder::add_u32(uint16_t type, uint32_t v) noexcept
{
    uint8_t b[4];
    put32(b, v);
    add(type, b, sizeof b);
}

void builder::add_xor_address(uint16_t type, const transport_addr& a) noexcept
{
    if (!ok_) {
        return;
    }
    uint8_t v[20];
    const size_t n = encode_xor_address(v, a, buf_ + 8);
    if (n == 0) {
        ok_ = false;
        return;
    }
    add(type, v, n);
}

void builder::add_error(uint16_t code) noexcept
{
    if (code < 300 || code > 699) {
        ok_ = false;
        return;
    }
    const char* reason = reason_phrase(code);
    const size_t rlen = std::strlen(reason);
    uint8_t* v = hdr(attr::error_code, 4 + rlen);
    if (v == nullptr) {
        return;
    }
    v[0] = 0;
    v[1] = 0;
    v[2] = static_cast<uint8_t>(code / 100);
    v[3] = static_cast<uint8_t>(code % 100);
    std::memcpy(v + 4, reason, rlen);
}

void builder::add_address_family(uint16_t type, uint8_t family) noexcept
{
    if (family != 4 && family != 6) {
        ok_ = false;
        return;
    }
    const uint8_t v[4] = {static_cast<uint8_t>(family == 4 ? 0x01 : 0x02), 0, 0, 0};
    add(type, v, sizeof(v));
}

void builder::add_address_error(uint8_t family, uint16_t code) noexcept
{
    if ((family != 4 && family != 6) || code < 300 || code > 699) {
        ok_ = false;
        return;
    }
    const char* reason = reason_phrase(code);
    const size_t rlen = std::strlen(reason);
    uint8_t* v = hdr(attr::address_error_code, 4 + rlen);
    if (v == nullptr) {
        return;
    }
    v[0] = family == 4 ? 0x01 : 0x02;
    v[1] = 0;
    v[2] = static_cast<uint8_t>(code / 100);
    v[3] = static_cast<uint8_t>(code % 100);
    std::memcpy(v + 4, reason, rlen);
}

void builder::add_unknown_attributes(const uint16_t* types, unsigned n) noexcept
{
    if (types == nullptr && n != 0) {
        ok_ = false;
        return;
    }
    uint8_t* v = hdr(attr::unknown_attributes, size_t{n} * 2);
    if (v == nullptr) {
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        put16(v + 2 * i, types[i]);
    }
}

void builder::add_integrity(const uint8_t* key, size_t key_len) noexcept
{
    // hdr() already set the length field to cover the MESSAGE-INTEGRITY
    // attribute, as the MAC requires.
    uint8_t* v = hdr(attr::message_integrity, hmac_sha1_len);
    if (v == nullptr) {
        return;
    }
    integrity_of(buf_, len_ - 24, key, key_len, v);
}

void builder::add_fingerprint() noexcept
{
    uint8_t* v = hdr(attr::fingerprint, 4);
    if (v == nullptr) {
        return;
    }
    put32(v, fingerprint_of(buf_, len_ - 8));
}

const char* reason_phrase(uint16_t code) noexcept
{
    switch (code) {
    case 300:
        return "Try Alternate";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthenticated";
    case 403:
        return "Forbidden";
    case 420:
        return "Unknown Attribute";
    case 437:
        return "Allocation Mismatch";
    case 438:
        return "Stale Nonce";
    case 440:
        return "Address Family not Supported";
    case 441:
        return "Wrong Credentials";
    case 442:
        return "Unsupported Transport Protocol";
    case 443:
        return "Peer Address Family Mismatch";
    case 446:
        return "Connection Already Exists";
    case 447:
        return "Connection Timeout or Failure";
    case 486:
        return "Allocation Quota Reached";
    case 500:
        return "Server Error";
    case 508:
        return "Insufficient Capacity";
    default:
        return "";
    }
}

// ---- fast-path framing ----------------------------------------------------------

bool parse_channel_data(const uint8_t* p, size_t len, uint16_t& channel,
                        uint16_t& data_len) noexcept
{
    if (p == nullptr || len < 4) {
        return false;
    }
    const uint16_t ch = be16(p);
    const uint16_t n = be16(p + 2);
    if (ch < channel_min || ch > channel_max || size_t{4} + n > len) {
        return false;
    }
    channel = ch;
    data_len = n;
    return true;
}

bool parse_send_indication(const uint8_t* p, size_t len, send_view& out) noexcept
{
    uint16_t msg_len = 0;
    if (check_header(p, len, msg_len) != parse_status::ok || be16(p) != send_indication_type) {
        return false;
    }
    uint8_t mask[16];
    xor_mask(p + 8, mask);
    bool have_peer = false;
    bool have_data = false;
    send_view v;
    auto on_attr = [&](uint16_t t, uint16_t alen, size_t off) {
        const uint8_t* value = p + off + 4;
        if (t == attr::xor_peer_address && !have_peer) {
            // The first occurrence counts (RFC 8489 §14); a malformed one
            // makes the indication unusable.
            if (!decode_address(value, alen, mask, v.peer)) {
                return parse_status::bad_attribute;
            }
            have_peer = true;
        } else if (t == attr::data && !have_data) {
            v.data_off = static_cast<uint16_t>(off + 4);
            v.data_len = alen;
            have_data = true;
        } else if (t == attr::dont_fragment) {
            v.dont_fragment = true;
        } else if (t < 0x8000 && !known_required(t)) {
            return parse_status::bad_attribute; // stop: the indication is discarded
        }
        return parse_status::ok;
    };
    if (walk_attrs(p, header_len + msg_len, on_attr) != parse_status::ok || !have_peer ||
        !have_data) {
        return false;
    }
    out = v;
    return true;
}

void write_data_indication_header(uint8_t* out, const transport_addr& peer, uint16_t data_len,
                                  const uint8_t* txid) noexcept
{
    // A peer family other than 4/6 is a caller bug; it is framed as IPv4 so
    // the written size still matches data_indication_overhead().
    transport_addr a = peer;
    if (a.family != 4 && a.family != 6) {
        a.family = 4;
    }
    const size_t addr_len = a.family == 6 ? 20 : 8;
    // The caller keeps the payload within the 16-bit length field (a peer
    // datagram of up to ~65.4 kB; the worker never sees jumbo ones).
    const size_t body = 4 + addr_len + 4 + data_len + pad4(data_len);
    put16(out, data_indication_type);
    put16(out + 2, static_cast<uint16_t>(body));
    put32(out + 4, magic_cookie);
    std::memcpy(out + 8, txid, txid_len);
    uint8_t* q = out + header_len;
    put16(q, attr::xor_peer_address);
    put16(q + 2, static_cast<uint16_t>(addr_len));
    encode_xor_address(q + 4, a, txid);
    q += 4 + addr_len;
    put16(q, attr::data);
    put16(q + 2, data_len);
}

} // namespace isar::turn
