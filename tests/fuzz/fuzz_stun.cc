// libFuzzer target for the STUN/TURN codec (turn/stun.h): parse, every typed
// reader on every attribute, MESSAGE-INTEGRITY, the fast-path framers, and a
// re-encode of whatever parsed whose output must parse again (abort if not).
// tools/fuzz.sh runs it; tests/fuzz/meson.build replays the corpus.
#include "turn/families.h"
#include "turn/stun.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

using namespace isar::turn;

namespace {

const uint8_t fuzz_key[16] = {'i', 's', 'a', 'r', '-', 'f', 'u', 'z',
                              'z', '-', 'k', 'e', 'y', '-', '1', '6'};
uint8_t out_buf[64 * 1024];
uint8_t aux_buf[64 * 1024];

// Keeps reads the compiler could drop: every byte a reader returns is used.
volatile uint32_t sink;

void check(bool cond)
{
    if (!cond) {
        std::abort();
    }
}

void touch(std::string_view s)
{
    uint32_t h = 0;
    for (char c : s) {
        h = h * 31 + static_cast<uint8_t>(c);
    }
    sink = h;
}

// Runs every typed reader on every attribute; re-encodes the decodable ones
// with the builder's typed adders and checks they read back the same.
void read_all(const message& m)
{
    // The address-family rules answer every message with a family or an error.
    for (bool have4 : {false, true}) {
        for (bool have6 : {false, true}) {
            const family_choice c = choose_families(m, have4, have6);
            check(c.error == 0 || c.error == 400 || c.error == 440);
            check(c.error != 0 || (c.first == 4 && have4) || (c.first == 6 && have6));
            check(c.second == 0 || (c.second == 6 && have6 && c.first == 4));
        }
    }
    builder b(aux_buf, sizeof aux_buf, m.type, m.txid);
    transport_addr want[message::max_attrs];
    unsigned naddr = 0;
    unsigned nadded = 1; // UNKNOWN-ATTRIBUTES
    for (unsigned i = 0; i < m.nattrs; i++) {
        const attr_view& a = m.attrs[i];
        transport_addr addr;
        if (read_xor_address(m, a, addr)) {
            b.add_xor_address(attr::xor_peer_address, addr);
            want[naddr++] = addr;
            nadded++;
        }
        if (read_address(a, addr)) {
            sink = addr.port + addr.ip[15];
        }
        uint32_t u32;
        uint16_t u16;
        uint8_t u8;
        bool flag;
        if (read_u32(a, u32)) {
            sink = u32;
        }
        if (read_channel_number(a, u16)) {
            sink = u16;
        }
        if (read_requested_transport(a, u8)) {
            sink = u8;
        }
        if (read_address_family(a, u8)) {
            check(u8 == 0 || u8 == 4 || u8 == 6);
        }
        if (read_even_port(a, flag)) {
            sink = flag;
        }
        if (read_error_code(a, u16)) {
            check(u16 >= 300 && u16 <= 699);
            b.add_error(u16);
            nadded++;
        }
        if (read_address_error_code(a, u8, u16)) {
            check(u16 >= 300 && u16 <= 699 && (u8 == 0 || u8 == 4 || u8 == 6));
        }
        touch(as_string(a));
        check(m.find(a.type) != nullptr);
    }
    b.add_unknown_attributes(m.unknown, m.nunknown);
    if (!b.ok() || nadded > message::max_attrs) {
        return;
    }
    message r;
    check(parse(aux_buf, b.size(), r) == parse_status::ok);
    unsigned k = 0;
    for (unsigned i = 0; i < r.nattrs; i++) {
        transport_addr got;
        if (r.attrs[i].type == attr::xor_peer_address) {
            check(read_xor_address(r, r.attrs[i], got) && k < naddr && got == want[k]);
            k++;
        }
    }
    check(k == naddr);
}

// Copies the parsed attributes into a new message (recomputing
// MESSAGE-INTEGRITY and FINGERPRINT); it must parse to the same list.
void reencode(const message& m)
{
    builder b(out_buf, sizeof out_buf, m.type, m.txid);
    bool has_integrity = false;
    for (unsigned i = 0; i < m.nattrs; i++) {
        const attr_view& a = m.attrs[i];
        if (static_cast<int>(i) == m.integrity) {
            b.add_integrity(fuzz_key, sizeof fuzz_key);
            has_integrity = true;
        } else if (a.type == attr::fingerprint) {
            b.add_fingerprint();
        } else {
            b.add(a.type, a.value, a.len);
        }
    }
    if (!b.ok()) {
        return; // a re-encoded MESSAGE-INTEGRITY may have grown past the limit
    }
    message r;
    check(parse(out_buf, b.size(), r) == parse_status::ok);
    check(r.type == m.type && r.nattrs == m.nattrs && r.nunknown == m.nunknown);
    for (unsigned i = 0; i < r.nattrs; i++) {
        check(r.attrs[i].type == m.attrs[i].type);
        if (r.attrs[i].type != attr::message_integrity && r.attrs[i].type != attr::fingerprint) {
            check(r.attrs[i].len == m.attrs[i].len &&
                  std::memcmp(r.attrs[i].value, m.attrs[i].value, r.attrs[i].len) == 0);
        }
    }
    check(!has_integrity || check_integrity(r, fuzz_key, sizeof fuzz_key));
}

void fast_path(const uint8_t* data, size_t size)
{
    uint16_t channel = 0;
    uint16_t len = 0;
    if (parse_channel_data(data, size, channel, len)) {
        check(channel >= isar::turn::channel_min && channel <= isar::turn::channel_max && size_t{4} + len <= size);
    }
    send_view v;
    if (!parse_send_indication(data, size, v)) {
        return;
    }
    check(v.peer.family == 4 || v.peer.family == 6);
    check(size_t{v.data_off} + v.data_len <= size);
    touch({reinterpret_cast<const char*>(data) + v.data_off, v.data_len});
    // Relay it back as a Data indication: that must parse, carrying the same.
    const size_t over = data_indication_overhead(v.peer.family);
    const size_t total = over + v.data_len + pad4(v.data_len);
    if (total > 65532) {
        return;
    }
    write_data_indication_header(out_buf, v.peer, v.data_len, data + 8);
    std::memcpy(out_buf + over, data + v.data_off, v.data_len);
    std::memset(out_buf + over + v.data_len, 0, pad4(v.data_len));
    message r;
    check(parse(out_buf, total, r) == parse_status::ok && r.nattrs == 2);
    transport_addr peer;
    check(read_xor_address(r, r.attrs[0], peer) && peer == v.peer);
    check(r.attrs[1].len == v.data_len);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    sink = looks_like_stun(data, size);
    message m;
    const parse_status s = parse(data, size, m);
    touch(parse_status_name(s));
    if (s == parse_status::ok) {
        check(m.len <= size && m.nattrs <= message::max_attrs);
        check(looks_like_stun(data, size));
        for (unsigned i = 0; i < m.nattrs; i++) {
            const attr_view& a = m.attrs[i];
            check(a.offset + 4u + a.len <= m.len && a.value == data + a.offset + 4);
        }
        read_all(m);
        sink = check_integrity(m, fuzz_key, sizeof fuzz_key);
        reencode(m);
    }
    fast_path(data, size);
    return 0;
}
