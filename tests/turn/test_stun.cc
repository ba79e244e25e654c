// STUN/TURN codec: RFC 5769 vectors, builder round trips, tamper and
// truncation, unknown attributes, ChannelData, Send/Data indications.
#include "turn/auth.h"
#include "turn/stun.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

using namespace isar::turn;

namespace {

using bytes = std::vector<uint8_t>;

bytes hex(const char* s)
{
    bytes out;
    int hi = -1;
    for (; *s != '\0'; s++) {
        const char c = *s;
        int v;
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        } else {
            continue;
        }
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<uint8_t>(hi << 4 | v));
            hi = -1;
        }
    }
    return out;
}

// RFC 5769 §2.1: Binding request, short-term credentials, MI + FINGERPRINT.
// USERNAME is padded with spaces, not zeros.
const bytes rfc5769_request = hex("00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
                                  "80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74"
                                  "00 24 00 04 6e 00 01 ff 80 29 00 08 93 2f f9 b1 51 26 3b 36"
                                  "00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20"
                                  "00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49"
                                  "c1 b5 71 a2 80 28 00 04 e5 7a 3b cf");
// §2.2: Binding success, IPv4 XOR-MAPPED-ADDRESS 192.0.2.1:32853.
const bytes rfc5769_response_v4 = hex("01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
                                      "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"
                                      "00 20 00 08 00 01 a1 47 e1 12 a6 43"
                                      "00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53"
                                      "f0 6b e7 d7 80 28 00 04 c0 7d 4c 96");
// §2.3: Binding success, IPv6 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
const bytes rfc5769_response_v6 = hex("01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae"
                                      "80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20"
                                      "00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79"
                                      "bc 25 f4 b5 be d2 b9 d9"
                                      "00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75"
                                      "bf e3 ed 41 80 28 00 04 c8 fb 0b 4c");
// §2.4: Binding request with long-term credentials (no FINGERPRINT).
const bytes rfc5769_long_term = hex("00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e"
                                    "00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3"
                                    "82 b9 00 00"
                                    "00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34"
                                    "6f 4c 39 46 53 54 76 79 36 34 73 41"
                                    "00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00"
                                    "00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2"
                                    "8c a8 96 66");

const std::string short_term_password = "VOkJxbRl1RmTxUk/WvJxBt";

const uint8_t* key_of(const std::string& s)
{
    return reinterpret_cast<const uint8_t*>(s.data());
}

const uint8_t txid[txid_len] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

transport_addr v4(const char* ip, uint16_t port)
{
    transport_addr a;
    a.family = 4;
    a.port = port;
    EXPECT_EQ(inet_pton(AF_INET, ip, a.ip), 1);
    return a;
}

transport_addr v6(const char* ip, uint16_t port)
{
    transport_addr a;
    a.family = 6;
    a.port = port;
    EXPECT_EQ(inet_pton(AF_INET6, ip, a.ip), 1);
    return a;
}

// Parses a copy of b[0..n) in a buffer of exactly n bytes, so that ASan
// (meson test --setup asan) catches any read past it.
parse_status parse_exact(const bytes& b, size_t n, message& m)
{
    std::unique_ptr<uint8_t[]> copy(new uint8_t[n == 0 ? 1 : n]);
    std::memcpy(copy.get(), b.data(), n);
    const parse_status s = parse(copy.get(), n, m);
    m.data = nullptr; // the copy dies here
    m.txid = nullptr;
    return s;
}

bytes build_allocate(const uint8_t* key, size_t key_len)
{
    bytes buf(1500);
    builder b(buf.data(), buf.size(), make_type(method::allocate, msg_class::request), txid);
    b.add_u32(attr::requested_transport, 17u << 24);
    b.add_u32(attr::lifetime, 600);
    b.add_string(attr::username, "1700000000:alice");
    b.add_string(attr::realm, "isar.example");
    b.add_string(attr::nonce, "0123456789abcdef");
    b.add(attr::even_port, "\x80", 1);
    b.add_xor_address(attr::xor_peer_address, v4("203.0.114.7", 40000));
    b.add_xor_address(attr::xor_peer_address, v6("2a00:1450::1234", 3478));
    b.add_string(attr::software, "isar");
    b.add_integrity(key, key_len);
    b.add_fingerprint();
    EXPECT_TRUE(b.ok());
    buf.resize(b.size());
    return buf;
}

bytes build_send(const transport_addr& peer, std::string_view payload, bool fingerprint,
                 uint16_t extra = 0)
{
    bytes buf(512);
    builder b(buf.data(), buf.size(), send_indication_type, txid);
    b.add_xor_address(attr::xor_peer_address, peer);
    if (extra != 0) {
        b.add(extra, "x", 1);
    }
    b.add(attr::data, payload.data(), payload.size());
    if (fingerprint) {
        b.add_fingerprint();
    }
    EXPECT_TRUE(b.ok());
    buf.resize(b.size());
    return buf;
}

} // namespace

TEST(stun_type, method_and_class)
{
    EXPECT_EQ(make_type(method::binding, msg_class::request), 0x0001);
    EXPECT_EQ(make_type(method::binding, msg_class::success), 0x0101);
    EXPECT_EQ(make_type(method::allocate, msg_class::error), 0x0113);
    EXPECT_EQ(send_indication_type, 0x0016);
    EXPECT_EQ(data_indication_type, 0x0017);
    for (uint16_t m = 0; m < 0x1000; m++) {
        for (uint8_t c = 0; c < 4; c++) {
            const uint16_t t = make_type(m, static_cast<msg_class>(c));
            EXPECT_EQ(type_method(t), m);
            EXPECT_EQ(static_cast<int>(type_class(t)), c);
        }
    }
}

TEST(stun_rfc5769, sample_request)
{
    message m;
    ASSERT_EQ(parse(rfc5769_request.data(), rfc5769_request.size(), m), parse_status::ok);
    EXPECT_EQ(m.type, 0x0001);
    EXPECT_EQ(m.method, static_cast<uint16_t>(method::binding));
    EXPECT_EQ(m.cls, msg_class::request);
    EXPECT_EQ(m.len, rfc5769_request.size());
    EXPECT_EQ(std::memcmp(m.txid, rfc5769_request.data() + 8, txid_len), 0);
    const uint16_t types[] = {attr::software, attr::priority,          attr::ice_controlled,
                              attr::username, attr::message_integrity, attr::fingerprint};
    ASSERT_EQ(m.nattrs, 6u);
    for (unsigned i = 0; i < m.nattrs; i++) {
        EXPECT_EQ(m.attrs[i].type, types[i]) << i;
    }
    EXPECT_EQ(m.integrity, 4);
    EXPECT_EQ(m.fingerprint, 5);
    EXPECT_EQ(m.nunknown, 0u);
    EXPECT_EQ(as_string(*m.find(attr::software)), "STUN test client");
    EXPECT_EQ(as_string(*m.find(attr::username)), "evtj:h6vY");
    uint32_t prio = 0;
    ASSERT_TRUE(read_u32(*m.find(attr::priority), prio));
    EXPECT_EQ(prio, 0x6e0001ffu);
    EXPECT_TRUE(check_integrity(m, key_of(short_term_password), short_term_password.size()));
    const std::string wrong = "VOkJxbRl1RmTxUk/WvJxBu";
    EXPECT_FALSE(check_integrity(m, key_of(wrong), wrong.size()));
    EXPECT_FALSE(check_integrity(m, nullptr, 0));
    EXPECT_EQ(fingerprint_of(rfc5769_request.data(), rfc5769_request.size() - 8), 0xe57a3bcfu);
    EXPECT_TRUE(looks_like_stun(rfc5769_request.data(), rfc5769_request.size()));
}

TEST(stun_rfc5769, ipv4_response)
{
    message m;
    ASSERT_EQ(parse(rfc5769_response_v4.data(), rfc5769_response_v4.size(), m), parse_status::ok);
    EXPECT_EQ(m.cls, msg_class::success);
    EXPECT_EQ(as_string(*m.find(attr::software)), "test vector"); // 11 bytes, space-padded
    transport_addr a;
    ASSERT_TRUE(read_xor_address(m, *m.find(attr::xor_mapped_address), a));
    EXPECT_EQ(a, v4("192.0.2.1", 32853));
    EXPECT_TRUE(check_integrity(m, key_of(short_term_password), short_term_password.size()));
    EXPECT_FALSE(check_integrity(m, key_of("x"), 1));
    EXPECT_EQ(m.fingerprint, 3);
}

TEST(stun_rfc5769, ipv6_response)
{
    message m;
    ASSERT_EQ(parse(rfc5769_response_v6.data(), rfc5769_response_v6.size(), m), parse_status::ok);
    transport_addr a;
    ASSERT_TRUE(read_xor_address(m, *m.find(attr::xor_mapped_address), a));
    EXPECT_EQ(a, v6("2001:db8:1234:5678:11:2233:4455:6677", 32853));
    EXPECT_TRUE(check_integrity(m, key_of(short_term_password), short_term_password.size()));
    // Read as a plain MAPPED-ADDRESS, the value is still well-formed.
    transport_addr plain;
    EXPECT_TRUE(read_address(*m.find(attr::xor_mapped_address), plain));
    EXPECT_NE(plain, a);
}

TEST(stun_rfc5769, long_term_credentials)
{
    message m;
    ASSERT_EQ(parse(rfc5769_long_term.data(), rfc5769_long_term.size(), m), parse_status::ok);
    EXPECT_EQ(m.fingerprint, -1);
    const std::string_view user = as_string(*m.find(attr::username));
    EXPECT_EQ(user, "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9");
    EXPECT_EQ(as_string(*m.find(attr::realm)), "example.org");
    EXPECT_EQ(as_string(*m.find(attr::nonce)), "f//499k954d6OL34oL9FSTvy64sA");
    uint8_t key[long_term_key_len];
    long_term_key(user, "example.org", "TheMatrIX", key);
    const bytes want = hex("e8ca7ad59d5eb0518e312911d2dab2a9");
    EXPECT_EQ(bytes(key, key + sizeof key), want);
    EXPECT_TRUE(check_integrity(m, key, sizeof key));
    long_term_key(user, "example.org", "thematrix", key);
    EXPECT_FALSE(check_integrity(m, key, sizeof key));
}

TEST(stun_parse, header_errors)
{
    message m;
    bytes b = rfc5769_request;
    EXPECT_EQ(parse(b.data(), 19, m), parse_status::too_short);
    EXPECT_EQ(parse(nullptr, 0, m), parse_status::too_short);
    b[0] |= 0x80;
    EXPECT_EQ(parse(b.data(), b.size(), m), parse_status::not_stun);
    b = rfc5769_request;
    b[4] ^= 1;
    EXPECT_EQ(parse(b.data(), b.size(), m), parse_status::not_stun);
    EXPECT_FALSE(looks_like_stun(b.data(), b.size()));
    b = rfc5769_request;
    b[3] = 0x57; // not a multiple of 4
    EXPECT_EQ(parse(b.data(), b.size(), m), parse_status::bad_length);
    b = rfc5769_request;
    b[3] = 0x5c; // 4 bytes past the buffer
    EXPECT_EQ(parse(b.data(), b.size(), m), parse_status::too_short);
    EXPECT_FALSE(looks_like_stun(b.data(), b.size()));
}

TEST(stun_parse, attribute_past_the_end)
{
    // Header with length 8, one attribute claiming 8 bytes of value.
    bytes b = hex("00 01 00 08 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 00"
                  "80 22 00 08 61 62 63 64");
    message m;
    EXPECT_EQ(parse(b.data(), b.size(), m), parse_status::bad_attribute);
    b[23] = 0x05; // 5 bytes + 3 padding: still past
    EXPECT_EQ(parse(b.data(), b.size(), m), parse_status::bad_attribute);
    b[23] = 0x04;
    EXPECT_EQ(parse(b.data(), b.size(), m), parse_status::ok);
}

TEST(stun_parse, trailing_bytes_ignored)
{
    bytes b = rfc5769_request;
    b.insert(b.end(), {0xde, 0xad, 0xbe, 0xef});
    message m;
    ASSERT_EQ(parse(b.data(), b.size(), m), parse_status::ok);
    EXPECT_EQ(m.len, rfc5769_request.size());
}

TEST(stun_parse, too_many_attributes)
{
    bytes buf(1024);
    builder b(buf.data(), buf.size(), 0x0001, txid);
    for (unsigned i = 0; i < message::max_attrs; i++) {
        b.add_u32(attr::priority, i);
    }
    ASSERT_TRUE(b.ok());
    message m;
    ASSERT_EQ(parse(buf.data(), b.size(), m), parse_status::ok);
    EXPECT_EQ(m.nattrs, message::max_attrs);
    b.add_u32(attr::priority, 99);
    EXPECT_EQ(parse(buf.data(), b.size(), m), parse_status::too_many);
}

TEST(stun_parse, fingerprint_rules)
{
    bytes b = rfc5769_request;
    b.back() ^= 1;
    message m;
    EXPECT_EQ(parse(b.data(), b.size(), m), parse_status::bad_fingerprint);

    // FINGERPRINT followed by another attribute.
    bytes buf(256);
    builder bl(buf.data(), buf.size(), 0x0001, txid);
    bl.add_fingerprint();
    bl.add_u32(attr::priority, 1);
    EXPECT_EQ(parse(buf.data(), bl.size(), m), parse_status::bad_fingerprint);

    // FINGERPRINT of the wrong size.
    builder b2(buf.data(), buf.size(), 0x0001, txid);
    b2.add(attr::fingerprint, "\0\0\0\0\0\0\0\0", 8);
    EXPECT_EQ(parse(buf.data(), b2.size(), m), parse_status::bad_fingerprint);

    // A correct one on a built message.
    builder b3(buf.data(), buf.size(), 0x0001, txid);
    b3.add_string(attr::software, "x");
    b3.add_fingerprint();
    ASSERT_EQ(parse(buf.data(), b3.size(), m), parse_status::ok);
    EXPECT_EQ(m.fingerprint, 1);
}

TEST(stun_parse, attributes_after_integrity_ignored)
{
    bytes buf(256);
    builder b(buf.data(), buf.size(), 0x0001, txid);
    b.add_string(attr::username, "u");
    b.add_integrity(key_of("k"), 1);
    b.add_string(attr::software, "after"); // ignored by a receiver
    b.add(attr::message_integrity_sha256, std::string(32, 'x').data(), 32);
    b.add(0x0031, "zz", 2); // unknown, but ignored: after MI
    b.add_fingerprint();
    ASSERT_TRUE(b.ok());
    message m;
    ASSERT_EQ(parse(buf.data(), b.size(), m), parse_status::ok);
    ASSERT_EQ(m.nattrs, 4u);
    EXPECT_EQ(m.attrs[0].type, attr::username);
    EXPECT_EQ(m.attrs[1].type, attr::message_integrity);
    EXPECT_EQ(m.attrs[2].type, attr::message_integrity_sha256);
    EXPECT_EQ(m.attrs[3].type, attr::fingerprint);
    EXPECT_EQ(m.nunknown, 0u);
    EXPECT_EQ(m.find(attr::software), nullptr);
    // MI covers only what precedes it, with the length as if it were last.
    EXPECT_TRUE(check_integrity(m, key_of("k"), 1));
}

TEST(stun_parse, unknown_comprehension_required)
{
    bytes buf(512);
    builder b(buf.data(), buf.size(), make_type(method::allocate, msg_class::request), txid);
    b.add_u32(attr::requested_transport, 17u << 24);
    b.add(0x0031, "abc", 3);
    b.add(0xc001, "optional", 8); // comprehension-optional: not reported
    b.add(0x7fff, nullptr, 0);
    b.add(0x0031, "again", 5); // reported once
    for (uint16_t t = 0x0040; t < 0x0050; t++) {
        b.add(t, nullptr, 0);
    }
    ASSERT_TRUE(b.ok());
    message m;
    ASSERT_EQ(parse(buf.data(), b.size(), m), parse_status::ok);
    ASSERT_EQ(m.nunknown, message::max_unknown);
    EXPECT_EQ(m.unknown[0], 0x0031);
    EXPECT_EQ(m.unknown[1], 0x7fff);
    EXPECT_EQ(m.unknown[2], 0x0040);
}

TEST(stun_parse, known_required_covers_the_registry)
{
    const uint16_t known[] = {
            attr::mapped_address,
            attr::username,
            attr::message_integrity,
            attr::error_code,
            attr::unknown_attributes,
            attr::channel_number,
            attr::lifetime,
            attr::xor_peer_address,
            attr::data,
            attr::realm,
            attr::nonce,
            attr::xor_relayed_address,
            attr::requested_address_family,
            attr::even_port,
            attr::requested_transport,
            attr::dont_fragment,
            attr::message_integrity_sha256,
            attr::password_algorithm,
            attr::userhash,
            attr::xor_mapped_address,
            attr::reservation_token,
            attr::priority,
            attr::use_candidate,
            attr::padding,
            attr::response_port,
            attr::connection_id,
    };
    unsigned n = 0;
    for (uint32_t t = 0; t < 0x8000; t++) {
        n += known_required(static_cast<uint16_t>(t)) ? 1 : 0;
    }
    EXPECT_EQ(n, std::size(known));
    for (uint16_t t : known) {
        EXPECT_TRUE(known_required(t)) << t;
    }
    EXPECT_FALSE(known_required(attr::software));
    EXPECT_FALSE(known_required(attr::fingerprint));
}

TEST(stun_readers, malformed_values)
{
    const uint8_t v[20] = {0, 0x01, 0x12, 0x34, 1, 2, 3, 4, 5, 6, 7, 8};
    transport_addr a;
    EXPECT_TRUE(read_address({attr::mapped_address, 8, 20, v}, a));
    EXPECT_EQ(a, v4("1.2.3.4", 0x1234));
    EXPECT_FALSE(read_address({attr::mapped_address, 20, 20, v}, a)); // IPv4 of 20 bytes
    EXPECT_FALSE(read_address({attr::mapped_address, 7, 20, v}, a));
    EXPECT_FALSE(read_address({attr::mapped_address, 8, 20, nullptr}, a));
    uint8_t fam3[8] = {0, 0x03};
    EXPECT_FALSE(read_address({attr::mapped_address, 8, 20, fam3}, a));
    message m; // no txid
    EXPECT_FALSE(read_xor_address(m, {attr::xor_mapped_address, 8, 20, v}, a));

    uint32_t u = 0;
    EXPECT_FALSE(read_u32({attr::lifetime, 3, 20, v}, u));
    EXPECT_FALSE(read_u32({attr::lifetime, 8, 20, v}, u));
    uint16_t ch = 0;
    const uint8_t chv[4] = {0x40, 0x01, 0xff, 0xff};
    EXPECT_TRUE(read_channel_number({attr::channel_number, 4, 20, chv}, ch));
    EXPECT_EQ(ch, 0x4001);
    EXPECT_FALSE(read_channel_number({attr::channel_number, 2, 20, chv}, ch));
    uint8_t proto = 0;
    const uint8_t udp[4] = {17, 0, 0, 0};
    EXPECT_TRUE(read_requested_transport({attr::requested_transport, 4, 20, udp}, proto));
    EXPECT_EQ(proto, 17);
    uint8_t fam = 9;
    const uint8_t f6[4] = {0x02, 0, 0, 0};
    const uint8_t f7[4] = {0x07, 0, 0, 0};
    EXPECT_TRUE(read_address_family({attr::requested_address_family, 4, 20, f6}, fam));
    EXPECT_EQ(fam, 6);
    EXPECT_TRUE(read_address_family({attr::requested_address_family, 4, 20, f7}, fam));
    EXPECT_EQ(fam, 0);
    EXPECT_FALSE(read_address_family({attr::requested_address_family, 1, 20, f6}, fam));
    bool r = false;
    const uint8_t ep = 0x80;
    EXPECT_TRUE(read_even_port({attr::even_port, 1, 20, &ep}, r));
    EXPECT_TRUE(r);
    EXPECT_FALSE(read_even_port({attr::even_port, 0, 20, &ep}, r));
    uint16_t code = 0;
    const uint8_t e438[6] = {0, 0, 4, 38, 'x', 'y'};
    const uint8_t e299[4] = {0, 0, 2, 99};
    const uint8_t e4100[4] = {0, 0, 4, 100};
    EXPECT_TRUE(read_error_code({attr::error_code, 6, 20, e438}, code));
    EXPECT_EQ(code, 438);
    EXPECT_FALSE(read_error_code({attr::error_code, 4, 20, e299}, code));
    EXPECT_FALSE(read_error_code({attr::error_code, 4, 20, e4100}, code));
    EXPECT_FALSE(read_error_code({attr::error_code, 3, 20, e438}, code));
    EXPECT_EQ(as_string({attr::software, 0, 20, nullptr}), "");
}

TEST(stun_builder, round_trip)
{
    const std::string key = "round-trip-key";
    const bytes b = build_allocate(key_of(key), key.size());
    message m;
    ASSERT_EQ(parse(b.data(), b.size(), m), parse_status::ok);
    EXPECT_EQ(m.type, make_type(method::allocate, msg_class::request));
    EXPECT_EQ(std::memcmp(m.txid, txid, txid_len), 0);
    ASSERT_EQ(m.nattrs, 11u);
    uint8_t proto = 0;
    ASSERT_TRUE(read_requested_transport(*m.find(attr::requested_transport), proto));
    EXPECT_EQ(proto, 17);
    uint32_t lifetime = 0;
    ASSERT_TRUE(read_u32(*m.find(attr::lifetime), lifetime));
    EXPECT_EQ(lifetime, 600u);
    EXPECT_EQ(as_string(*m.find(attr::username)), "1700000000:alice");
    EXPECT_EQ(as_string(*m.find(attr::realm)), "isar.example");
    bool reserve = false;
    ASSERT_TRUE(read_even_port(*m.find(attr::even_port), reserve));
    EXPECT_TRUE(reserve);
    transport_addr a4, a6;
    ASSERT_TRUE(read_xor_address(m, m.attrs[6], a4));
    ASSERT_TRUE(read_xor_address(m, m.attrs[7], a6));
    EXPECT_EQ(a4, v4("203.0.114.7", 40000));
    EXPECT_EQ(a6, v6("2a00:1450::1234", 3478));
    EXPECT_EQ(m.integrity, 9);
    EXPECT_EQ(m.fingerprint, 10);
    EXPECT_TRUE(check_integrity(m, key_of(key), key.size()));
    EXPECT_FALSE(check_integrity(m, key_of(key), key.size() - 1));
    // Padding is zeros.
    const attr_view& even = *m.find(attr::even_port);
    EXPECT_EQ(b[even.offset + 5], 0);
    EXPECT_EQ(b[even.offset + 7], 0);
}

TEST(stun_builder, long_key_is_hashed_first)
{
    const std::string key(100, 'k'); // longer than the SHA-1 block
    const bytes b = build_allocate(key_of(key), key.size());
    message m;
    ASSERT_EQ(parse(b.data(), b.size(), m), parse_status::ok);
    EXPECT_TRUE(check_integrity(m, key_of(key), key.size()));
    EXPECT_FALSE(check_integrity(m, key_of(key), 64));
}

TEST(stun_builder, every_flipped_byte_is_caught)
{
    const std::string key = "tamper";
    const bytes good = build_allocate(key_of(key), key.size());
    for (size_t i = 0; i < good.size(); i++) {
        for (uint8_t flip : {0x01, 0x80, 0xff}) {
            bytes b = good;
            b[i] ^= flip;
            message m;
            const parse_status s = parse(b.data(), b.size(), m);
            // A flip in FINGERPRINT's type turns it into an attribute after
            // MESSAGE-INTEGRITY, which is ignored: the message stays authentic
            // and simply has no FINGERPRINT any more.
            EXPECT_TRUE(s != parse_status::ok || !check_integrity(m, key_of(key), key.size()) ||
                        m.fingerprint < 0)
                    << "byte " << i << " flip " << int(flip);
        }
    }
}

TEST(stun_builder, error_and_unknown_attributes)
{
    bytes buf(256);
    builder b(buf.data(), buf.size(), make_type(method::allocate, msg_class::error), txid);
    b.add_error(420);
    const uint16_t unknown[] = {0x0031, 0x7fff, 0x0040};
    b.add_unknown_attributes(unknown, 3);
    ASSERT_TRUE(b.ok());
    message m;
    ASSERT_EQ(parse(buf.data(), b.size(), m), parse_status::ok);
    uint16_t code = 0;
    const attr_view& e = *m.find(attr::error_code);
    ASSERT_TRUE(read_error_code(e, code));
    EXPECT_EQ(code, 420);
    EXPECT_EQ(as_string(e).substr(4), "Unknown Attribute");
    const attr_view& u = *m.find(attr::unknown_attributes);
    ASSERT_EQ(u.len, 6);
    EXPECT_EQ(u.value[0], 0x00);
    EXPECT_EQ(u.value[1], 0x31);
    EXPECT_EQ(u.value[2], 0x7f);
    EXPECT_EQ(u.value[5], 0x40);
    EXPECT_EQ(buf[u.offset + 10], 0); // padding
    EXPECT_EQ(buf[u.offset + 11], 0);

    for (uint16_t c :
         {300, 400, 401, 403, 420, 437, 438, 440, 441, 442, 443, 446, 447, 486, 500, 508}) {
        EXPECT_STRNE(reason_phrase(c), "") << c;
    }
    EXPECT_STREQ(reason_phrase(438), "Stale Nonce");
    EXPECT_STREQ(reason_phrase(401), "Unauthenticated");
    builder bad(buf.data(), buf.size(), 0x0111, txid);
    bad.add_error(200);
    EXPECT_FALSE(bad.ok());
}

// RFC 8656 §18.8, §18.11, §18.12: the address-family attributes and a dual
// allocation's answer (two XOR-RELAYED-ADDRESSes, one of each family).
TEST(stun_builder, address_family_attributes)
{
    bytes buf(256);
    builder b(buf.data(), buf.size(), make_type(method::allocate, msg_class::success), txid);
    b.add_address_family(attr::requested_address_family, 6);
    b.add_address_family(attr::additional_address_family, 4);
    b.add_address_error(6, 440);
    b.add_xor_address(attr::xor_relayed_address, v4("198.18.0.1", 50000));
    b.add_xor_address(attr::xor_relayed_address, v6("2001:2::1", 50002));
    ASSERT_TRUE(b.ok());
    message m;
    ASSERT_EQ(parse(buf.data(), b.size(), m), parse_status::ok);
    const attr_view& raf = *m.find(attr::requested_address_family);
    ASSERT_EQ(raf.len, 4);
    EXPECT_EQ(raf.value[0], 0x02); // IPv6 on the wire, RFFU zero
    EXPECT_EQ(raf.value[1] | raf.value[2] | raf.value[3], 0);
    uint8_t fam = 0;
    ASSERT_TRUE(read_address_family(raf, fam));
    EXPECT_EQ(fam, 6);
    ASSERT_TRUE(read_address_family(*m.find(attr::additional_address_family), fam));
    EXPECT_EQ(fam, 4);
    const attr_view& ae = *m.find(attr::address_error_code);
    EXPECT_EQ(ae.value[0], 0x02);
    EXPECT_EQ(ae.value[2], 4);
    EXPECT_EQ(ae.value[3], 40);
    EXPECT_EQ(as_string(ae).substr(4), "Address Family not Supported");
    uint16_t code = 0;
    ASSERT_TRUE(read_address_error_code(ae, fam, code));
    EXPECT_EQ(fam, 6);
    EXPECT_EQ(code, 440);
    transport_addr r[2];
    unsigned n = 0;
    for (unsigned i = 0; i < m.nattrs; i++) {
        if (m.attrs[i].type == attr::xor_relayed_address && n < 2) {
            ASSERT_TRUE(read_xor_address(m, m.attrs[i], r[n++]));
        }
    }
    ASSERT_EQ(n, 2u);
    EXPECT_EQ(r[0], v4("198.18.0.1", 50000));
    EXPECT_EQ(r[1], v6("2001:2::1", 50002));
    EXPECT_EQ(transport_addr::v6(r[1].ip, 50002), r[1]);

    const uint8_t bad_class[4] = {0x01, 0, 2, 40};
    const uint8_t odd_family[4] = {0x03, 0, 4, 40};
    EXPECT_FALSE(read_address_error_code({attr::address_error_code, 4, 20, bad_class}, fam, code));
    EXPECT_FALSE(read_address_error_code({attr::address_error_code, 3, 20, odd_family}, fam, code));
    ASSERT_TRUE(read_address_error_code({attr::address_error_code, 4, 20, odd_family}, fam, code));
    EXPECT_EQ(fam, 0);
    builder bad(buf.data(), buf.size(), 0x0113, txid);
    bad.add_address_family(attr::requested_address_family, 5);
    EXPECT_FALSE(bad.ok());
    builder bad2(buf.data(), buf.size(), 0x0113, txid);
    bad2.add_address_error(6, 200);
    EXPECT_FALSE(bad2.ok());
}

TEST(stun_builder, overflow_is_sticky)
{
    uint8_t buf[32];
    builder b(buf, sizeof buf, 0x0001, txid);
    b.add_u32(attr::priority, 1); // 28 bytes
    EXPECT_TRUE(b.ok());
    b.add_u32(attr::priority, 2); // 36 > 32
    EXPECT_FALSE(b.ok());
    EXPECT_EQ(b.size(), 28u);
    b.add(attr::software, nullptr, 0); // would fit, but the builder has failed
    EXPECT_EQ(b.size(), 28u);
    builder tiny(buf, 19, 0x0001, txid);
    EXPECT_FALSE(tiny.ok());
    EXPECT_EQ(tiny.size(), 0u);
    transport_addr none;
    builder nofam(buf, sizeof buf, 0x0001, txid);
    nofam.add_xor_address(attr::xor_peer_address, none);
    EXPECT_FALSE(nofam.ok());
}

TEST(stun_builder, never_exceeds_the_16_bit_limits)
{
    std::vector<uint8_t> big(max_message + 64);
    builder b(big.data(), big.size(), 0x0001, txid);
    const std::vector<uint8_t> chunk(4000, 0xab); // 16 attributes fill 64 KiB
    while (b.ok()) {
        b.add(attr::padding, chunk.data(), chunk.size());
    }
    EXPECT_LE(b.size(), 65532u);
    message m;
    EXPECT_EQ(parse(big.data(), b.size(), m), parse_status::ok);
    // A hand-made header claiming 65532 bytes of body is refused: the whole
    // message would not fit the 16-bit lengths of the message view.
    std::vector<uint8_t> huge(header_len + 65532, 0);
    builder h(huge.data(), huge.size(), 0x0001, txid);
    huge[2] = 0xff;
    huge[3] = 0xfc;
    huge[header_len + 1] = 0x26; // PADDING
    huge[header_len + 2] = 0xff;
    huge[header_len + 3] = 0xf8;
    EXPECT_EQ(parse(huge.data(), huge.size(), m), parse_status::bad_length);
}

TEST(stun_truncation, never_ok_and_never_over_reads)
{
    const std::string key = "trunc";
    const bytes samples[] = {rfc5769_request,
                             rfc5769_response_v4,
                             rfc5769_response_v6,
                             rfc5769_long_term,
                             build_allocate(key_of(key), key.size()),
                             build_send(v6("2001:db8::1", 7), "payload", true)};
    for (const bytes& s : samples) {
        for (size_t n = 0; n < s.size(); n++) {
            message m;
            EXPECT_NE(parse_exact(s, n, m), parse_status::ok) << n;
            std::unique_ptr<uint8_t[]> copy(new uint8_t[n == 0 ? 1 : n]);
            std::memcpy(copy.get(), s.data(), n);
            EXPECT_FALSE(looks_like_stun(copy.get(), n));
            send_view v;
            EXPECT_FALSE(parse_send_indication(copy.get(), n, v));
            uint16_t ch, dl;
            EXPECT_FALSE(parse_channel_data(copy.get(), n, ch, dl));
        }
        message m;
        EXPECT_EQ(parse_exact(s, s.size(), m), parse_status::ok);
    }
}

TEST(stun_fast_path, channel_data)
{
    const uint8_t cd[] = {0x40, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0};
    uint16_t ch = 0, n = 0;
    ASSERT_TRUE(parse_channel_data(cd, sizeof cd, ch, n));
    EXPECT_EQ(ch, 0x4001);
    EXPECT_EQ(n, 5);
    EXPECT_TRUE(parse_channel_data(cd, 9, ch, n)); // unpadded
    EXPECT_FALSE(parse_channel_data(cd, 8, ch, n));
    EXPECT_FALSE(parse_channel_data(cd, 3, ch, n));
    uint8_t bad[sizeof cd];
    std::memcpy(bad, cd, sizeof cd);
    bad[0] = 0x3f;
    bad[1] = 0xff;
    EXPECT_FALSE(parse_channel_data(bad, sizeof bad, ch, n));
    bad[0] = 0x80;
    bad[1] = 0x00;
    EXPECT_FALSE(parse_channel_data(bad, sizeof bad, ch, n));
    bad[0] = 0x4f;
    bad[1] = 0xff;
    EXPECT_TRUE(parse_channel_data(bad, sizeof bad, ch, n));
    EXPECT_EQ(ch, 0x4fff);
    bad[0] = 0x7f; // RFC 5766's range, as coturn's clients use it
    bad[1] = 0xfe;
    EXPECT_TRUE(parse_channel_data(bad, sizeof bad, ch, n));
    EXPECT_EQ(ch, 0x7ffe);
}

TEST(stun_fast_path, send_indication)
{
    const transport_addr peer = v4("203.0.114.9", 5004);
    bytes b = build_send(peer, "hello", false);
    send_view v;
    ASSERT_TRUE(parse_send_indication(b.data(), b.size(), v));
    EXPECT_EQ(v.peer, peer);
    EXPECT_EQ(v.data_len, 5);
    EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(b.data()) + v.data_off, 5), "hello");
    EXPECT_FALSE(v.dont_fragment);

    const transport_addr peer6 = v6("2a00:1450:4001::5", 443);
    b = build_send(peer6, "", true, attr::dont_fragment);
    ASSERT_TRUE(parse_send_indication(b.data(), b.size(), v));
    EXPECT_EQ(v.peer, peer6);
    EXPECT_EQ(v.data_len, 0);
    EXPECT_TRUE(v.dont_fragment);
    b[b.size() - 1] ^= 1; // bad FINGERPRINT
    EXPECT_FALSE(parse_send_indication(b.data(), b.size(), v));

    // Unknown comprehension-required: discarded; unknown optional: fine.
    b = build_send(peer, "x", false, 0x0031);
    EXPECT_FALSE(parse_send_indication(b.data(), b.size(), v));
    b = build_send(peer, "x", false, 0x8050);
    EXPECT_TRUE(parse_send_indication(b.data(), b.size(), v));

    // Not a Send indication.
    b = build_send(peer, "x", false);
    b[1] = 0x17;
    EXPECT_FALSE(parse_send_indication(b.data(), b.size(), v));

    // Missing DATA or XOR-PEER-ADDRESS.
    bytes buf(128);
    builder nodata(buf.data(), buf.size(), send_indication_type, txid);
    nodata.add_xor_address(attr::xor_peer_address, peer);
    EXPECT_FALSE(parse_send_indication(buf.data(), nodata.size(), v));
    builder nopeer(buf.data(), buf.size(), send_indication_type, txid);
    nopeer.add(attr::data, "x", 1);
    EXPECT_FALSE(parse_send_indication(buf.data(), nopeer.size(), v));
    // Malformed XOR-PEER-ADDRESS.
    builder badpeer(buf.data(), buf.size(), send_indication_type, txid);
    badpeer.add(attr::xor_peer_address, "\0\x01\0\0", 4);
    badpeer.add(attr::data, "x", 1);
    EXPECT_FALSE(parse_send_indication(buf.data(), badpeer.size(), v));
}

TEST(stun_fast_path, data_indication_header_round_trips)
{
    for (const transport_addr& peer : {v4("198.51.100.20", 61000), v6("2001:db8::20", 9)}) {
        for (std::string_view payload :
             {std::string_view(""), std::string_view("abcde"), std::string_view("12345678")}) {
            const size_t over = data_indication_overhead(peer.family);
            EXPECT_EQ(over, peer.family == 4 ? 36u : 48u);
            bytes buf(over + payload.size() + pad4(payload.size()), 0xee);
            write_data_indication_header(buf.data(), peer, static_cast<uint16_t>(payload.size()),
                                         txid);
            std::memcpy(buf.data() + over, payload.data(), payload.size());
            std::memset(buf.data() + over + payload.size(), 0, pad4(payload.size()));
            message m;
            ASSERT_EQ(parse(buf.data(), buf.size(), m), parse_status::ok);
            EXPECT_EQ(m.type, data_indication_type);
            EXPECT_EQ(m.method, static_cast<uint16_t>(method::data));
            EXPECT_EQ(m.cls, msg_class::indication);
            EXPECT_EQ(m.len, buf.size());
            ASSERT_EQ(m.nattrs, 2u);
            transport_addr got;
            ASSERT_TRUE(read_xor_address(m, m.attrs[0], got));
            EXPECT_EQ(got, peer);
            EXPECT_EQ(as_string(m.attrs[1]), payload);
            EXPECT_EQ(m.attrs[1].offset + 4u, over);
        }
    }
}
