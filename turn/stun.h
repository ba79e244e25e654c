// STUN (RFC 8489) and TURN (RFC 8656) message codec: pure functions over byte
// spans, no allocation, no exceptions, no DPDK. Used by the control lcore for
// the slow-path requests and by the workers for fast-path framing (Send
// indications, ChannelData). Every function is safe on any input: a
// malformed message is an error value, never a crash or an over-read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace isar::turn {

constexpr uint32_t magic_cookie = 0x2112A442;
constexpr size_t header_len = 20;
constexpr size_t txid_len = 12;
constexpr size_t max_message = 65535 + header_len;

// ---- message type: method and class (RFC 8489 §5) -------------------------
enum class method : uint16_t {
    binding = 0x001,
    allocate = 0x003,
    refresh = 0x004,
    send = 0x006,
    data = 0x007,
    create_permission = 0x008,
    channel_bind = 0x009,
};
enum class msg_class : uint8_t { request = 0, indication = 1, success = 2, error = 3 };

constexpr uint16_t make_type(uint16_t m, msg_class c) noexcept
{
    const uint16_t cl = static_cast<uint16_t>(c);
    return static_cast<uint16_t>((m & 0x000f) | ((m & 0x0070) << 1) | ((m & 0x0f80) << 2) |
                                 ((cl & 1) << 4) | ((cl & 2) << 7));
}
constexpr uint16_t make_type(method m, msg_class c) noexcept
{
    return make_type(static_cast<uint16_t>(m), c);
}
constexpr uint16_t type_method(uint16_t t) noexcept
{
    return static_cast<uint16_t>((t & 0x000f) | ((t & 0x00e0) >> 1) | ((t & 0x3e00) >> 2));
}
constexpr msg_class type_class(uint16_t t) noexcept
{
    return static_cast<msg_class>(((t >> 4) & 1) | ((t >> 7) & 2));
}
// Send indication: the one STUN message the worker relays itself.
constexpr uint16_t send_indication_type = make_type(method::send, msg_class::indication);
constexpr uint16_t data_indication_type = make_type(method::data, msg_class::indication);

// ---- attributes -----------------------------------------------------------
namespace attr {
constexpr uint16_t mapped_address = 0x0001;
constexpr uint16_t username = 0x0006;
constexpr uint16_t message_integrity = 0x0008;
constexpr uint16_t error_code = 0x0009;
constexpr uint16_t unknown_attributes = 0x000A;
constexpr uint16_t channel_number = 0x000C;
constexpr uint16_t lifetime = 0x000D;
constexpr uint16_t xor_peer_address = 0x0012;
constexpr uint16_t data = 0x0013;
constexpr uint16_t realm = 0x0014;
constexpr uint16_t nonce = 0x0015;
constexpr uint16_t xor_relayed_address = 0x0016;
constexpr uint16_t requested_address_family = 0x0017;
constexpr uint16_t even_port = 0x0018;
constexpr uint16_t requested_transport = 0x0019;
constexpr uint16_t dont_fragment = 0x001A;
constexpr uint16_t message_integrity_sha256 = 0x001C;
constexpr uint16_t password_algorithm = 0x001D;
constexpr uint16_t userhash = 0x001E;
constexpr uint16_t xor_mapped_address = 0x0020;
constexpr uint16_t reservation_token = 0x0022;
constexpr uint16_t priority = 0x0024;        // ICE (RFC 8445)
constexpr uint16_t use_candidate = 0x0025;   // ICE
constexpr uint16_t padding = 0x0026;         // RFC 5780
constexpr uint16_t response_port = 0x0027;   // RFC 5780
constexpr uint16_t connection_id = 0x002A;   // RFC 6062
constexpr uint16_t additional_address_family = 0x8000;
constexpr uint16_t address_error_code = 0x8001;
constexpr uint16_t password_algorithms = 0x8002;
constexpr uint16_t alternate_domain = 0x8003;
constexpr uint16_t icmp = 0x8004;
constexpr uint16_t software = 0x8022;
constexpr uint16_t alternate_server = 0x8023;
constexpr uint16_t transaction_transmit_counter = 0x8025;
constexpr uint16_t cache_timeout = 0x8027;
constexpr uint16_t fingerprint = 0x8028;
constexpr uint16_t ice_controlled = 0x8029;
constexpr uint16_t ice_controlling = 0x802A;
constexpr uint16_t response_origin = 0x802B;
constexpr uint16_t other_address = 0x802C;
constexpr uint16_t origin = 0x802F; // coturn's clients send it (draft-ietf-tram-stun-origin)
} // namespace attr

// Comprehension-required (type < 0x8000) attributes this codec understands;
// any other one in a request is answered with 420 (RFC 8489 §7.3.1).
bool known_required(uint16_t type) noexcept;

// ---- addresses --------------------------------------------------------------
// A transport address of either family. IPv4 lives in ip[0..3] (network
// order); the rest of ip[] is zero.
struct transport_addr {
    uint8_t family = 0; // 4 or 6; 0 = none
    uint16_t port = 0;  // host order
    uint8_t ip[16] = {};

    static transport_addr v4(uint32_t ip_be, uint16_t port_host) noexcept
    {
        transport_addr a;
        a.family = 4;
        a.port = port_host;
        std::memcpy(a.ip, &ip_be, 4);
        return a;
    }
    static transport_addr v6(const uint8_t ip16[16], uint16_t port_host) noexcept
    {
        transport_addr a;
        a.family = 6;
        a.port = port_host;
        std::memcpy(a.ip, ip16, 16);
        return a;
    }
    uint32_t ip4_be() const noexcept
    {
        uint32_t v;
        std::memcpy(&v, ip, 4);
        return v;
    }
    bool operator==(const transport_addr& o) const noexcept
    {
        return family == o.family && port == o.port && std::memcmp(ip, o.ip, 16) == 0;
    }
};

// ---- parsing ------------------------------------------------------------------
enum class parse_status : uint8_t {
    ok,
    too_short,       // fewer than 20 bytes, or shorter than the header's length
    not_stun,        // top two bits set or no magic cookie
    bad_length,      // message length not a multiple of 4, or the whole message over
                     // 65532 bytes (attr_view/message lengths are 16 bits)
    bad_attribute,   // an attribute runs past the message
    too_many,        // more attributes than message::max_attrs
    bad_fingerprint, // FINGERPRINT present and wrong, misplaced or misshapen
};
const char* parse_status_name(parse_status s) noexcept;

struct attr_view {
    uint16_t type = 0;
    uint16_t len = 0;     // value length (without padding)
    uint16_t offset = 0;  // of the attribute header from the start of the message
    const uint8_t* value = nullptr;
};

struct message {
    static constexpr unsigned max_attrs = 40;

    uint16_t type = 0;
    uint16_t method = 0;
    msg_class cls = msg_class::request;
    const uint8_t* txid = nullptr; // 12 bytes inside the buffer
    const uint8_t* data = nullptr; // the whole message
    uint16_t len = 0;              // header + attributes
    attr_view attrs[max_attrs];
    unsigned nattrs = 0;
    // Index into attrs of MESSAGE-INTEGRITY / FINGERPRINT, -1 = absent.
    // Attributes after MESSAGE-INTEGRITY other than FINGERPRINT (and
    // MESSAGE-INTEGRITY-SHA256) are not listed (RFC 8489 §14.5: ignored).
    int integrity = -1;
    int fingerprint = -1;
    // The first comprehension-required attributes not understood (for 420).
    static constexpr unsigned max_unknown = 8;
    uint16_t unknown[max_unknown] = {};
    unsigned nunknown = 0;

    const attr_view* find(uint16_t t) const noexcept
    {
        for (unsigned i = 0; i < nattrs; i++)
            if (attrs[i].type == t)
                return &attrs[i];
        return nullptr;
    }
};

// Cheap test on the first bytes (the worker's demux and the control's entry):
// at least 20 bytes, top two bits zero, magic cookie, length % 4 == 0 and
// header length + message length <= len.
bool looks_like_stun(const uint8_t* p, size_t len) noexcept;

// Parses one message at p[0..len). Trailing bytes after the message's own
// length are ignored (a datagram may not carry any; a stream framer passes
// exactly one message). FINGERPRINT, when present, is verified here: it must
// be last and match.
parse_status parse(const uint8_t* p, size_t len, message& out) noexcept;

// Typed attribute readers: false when the attribute is malformed.
bool read_xor_address(const message& m, const attr_view& a, transport_addr& out) noexcept;
bool read_address(const attr_view& a, transport_addr& out) noexcept; // MAPPED-ADDRESS
bool read_u32(const attr_view& a, uint32_t& out) noexcept;           // LIFETIME etc.
// CHANNEL-NUMBER: the number (RFFU bytes ignored).
bool read_channel_number(const attr_view& a, uint16_t& out) noexcept;
// REQUESTED-TRANSPORT: the protocol number (17 = UDP).
bool read_requested_transport(const attr_view& a, uint8_t& proto) noexcept;
// REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY: 0x01 -> 4, 0x02 -> 6, else 0.
bool read_address_family(const attr_view& a, uint8_t& family) noexcept;
// EVEN-PORT: the R bit.
bool read_even_port(const attr_view& a, bool& reserve) noexcept;
bool read_error_code(const attr_view& a, uint16_t& code) noexcept;
// ADDRESS-ERROR-CODE (RFC 8656 §18.11): the family it is about (4 or 6; 0
// for an unknown family byte) and the code (300-699).
bool read_address_error_code(const attr_view& a, uint8_t& family, uint16_t& code) noexcept;
std::string_view as_string(const attr_view& a) noexcept;

// MESSAGE-INTEGRITY (HMAC-SHA1, RFC 8489 §14.5) of a parsed message with
// `key` (long-term: MD5(user:realm:password), see auth.h). False when absent
// or wrong. Constant-time compare.
bool check_integrity(const message& m, const uint8_t* key, size_t key_len) noexcept;

// ---- building ---------------------------------------------------------------
// Writes a message into a caller's buffer; every add_* is a no-op once the
// buffer is full, and ok() says whether everything fitted.
class builder {
public:
    builder(uint8_t* buf, size_t cap, uint16_t type, const uint8_t* txid) noexcept;

    void add(uint16_t type, const void* value, size_t len) noexcept;
    void add_u32(uint16_t type, uint32_t v) noexcept;
    void add_string(uint16_t type, std::string_view s) noexcept { add(type, s.data(), s.size()); }
    void add_xor_address(uint16_t type, const transport_addr& a) noexcept;
    // ERROR-CODE with the RFC's reason phrase for `code` (reason_phrase()).
    void add_error(uint16_t code) noexcept;
    // REQUESTED-ADDRESS-FAMILY / ADDITIONAL-ADDRESS-FAMILY: family 4 or 6.
    void add_address_family(uint16_t type, uint8_t family) noexcept;
    // ADDRESS-ERROR-CODE for `family` (4 or 6) with reason_phrase(code).
    void add_address_error(uint8_t family, uint16_t code) noexcept;
    void add_unknown_attributes(const uint16_t* types, unsigned n) noexcept;
    // MESSAGE-INTEGRITY over everything so far; then FINGERPRINT if wanted.
    void add_integrity(const uint8_t* key, size_t key_len) noexcept;
    void add_fingerprint() noexcept;

    bool ok() const noexcept { return ok_; }
    size_t size() const noexcept { return len_; } // bytes written (header + attributes)

private:
    uint8_t* hdr(uint16_t type, size_t len) noexcept; // room for an attribute, or nullptr
    void set_length(size_t body) noexcept;
    uint8_t* buf_;
    size_t cap_;
    size_t len_ = 0;
    bool ok_ = true;
};

const char* reason_phrase(uint16_t code) noexcept;

// The FINGERPRINT value of msg[0..len) (CRC-32 XOR 0x5354554e).
uint32_t fingerprint_of(const uint8_t* msg, size_t len) noexcept;

// ---- fast-path framing (the worker) --------------------------------------------
// Channel numbers: RFC 8656 narrowed them to 0x4000-0x4fff, but RFC 5766
// allowed 0x4000-0x7fff and coturn (server and turnutils_uclient, which picks
// numbers up to 0x7ffe) still uses that range: Isar accepts it as coturn does.
constexpr uint16_t channel_min = 0x4000;
constexpr uint16_t channel_max = 0x7fff;

// ChannelData (RFC 8656 §12.4): first byte 0x40-0x7f. Returns false unless
// p[0..len) holds a channel number in channel_min-channel_max and at least `length`
// bytes after the 4-byte header (over UDP the rest is padding, ignored).
bool parse_channel_data(const uint8_t* p, size_t len, uint16_t& channel,
                        uint16_t& data_len) noexcept;

// A Send indication's XOR-PEER-ADDRESS and DATA (offset of the value from
// p, and its length), without building a full message view. False when it is
// not a well-formed Send indication carrying both, or carries a
// comprehension-required attribute this codec does not know (RFC 8489: an
// indication with one is discarded).
struct send_view {
    transport_addr peer;
    uint16_t data_off = 0;
    uint16_t data_len = 0;
    bool dont_fragment = false;
};
bool parse_send_indication(const uint8_t* p, size_t len, send_view& out) noexcept;

// Length of the Data indication header the worker writes before the peer's
// payload, and of the padding after it: 20 (header) + 4 + 8 or 20
// (XOR-PEER-ADDRESS, IPv4 or IPv6) + 4 (DATA header).
constexpr size_t data_indication_overhead(uint8_t family) noexcept
{
    return header_len + 4 + (family == 6 ? 20 : 8) + 4;
}
constexpr size_t pad4(size_t n) noexcept { return (4 - (n & 3)) & 3; }
// Writes that header into out[0..data_indication_overhead(peer.family)) for a
// payload of `data_len` bytes (which the caller places right after it,
// followed by pad4(data_len) zero bytes). `txid` is any 12 bytes (random per
// allocation is fine: indications are not transactions that get answers).
void write_data_indication_header(uint8_t* out, const transport_addr& peer, uint16_t data_len,
                                  const uint8_t* txid) noexcept;

} // namespace isar::turn
