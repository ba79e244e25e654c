// One STUN/TURN request on the control lcore (shared by turn_manager.cc and
// turn_requests.cc), and what an answer needs once the request's frame is
// gone (answers sent after a worker's acknowledgement).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

#include <openssl/mem.h>

#include "control/turn_manager.h"

namespace isar::ctl {

struct turn_reply_to {
    stun_origin to;
    uint16_t method = 0;
    uint8_t txid[turn::txid_len] = {};
    bool sign = false; // add MESSAGE-INTEGRITY with `key`
    uint8_t key[turn::long_term_key_len] = {};

    turn_reply_to() = default;
    turn_reply_to(const turn_reply_to& o) { *this = o; }
    turn_reply_to& operator=(const turn_reply_to& o)
    {
        if (this != &o) {
            to = o.to;
            method = o.method;
            std::memcpy(txid, o.txid, sizeof(txid));
            sign = o.sign;
            std::memcpy(key, o.key, sizeof(key));
        }
        return *this;
    }
    ~turn_reply_to() { OPENSSL_cleanse(key, sizeof(key)); }
};

struct turn_manager::request {
    turn::message msg;
    turn_reply_to reply;
    std::string username;
    uint64_t now_tsc = 0;
    int64_t now_s = 0; // wall clock (REST expiry, nonces)
};

// Builds and sends one answer: success (class 2) or error (class 3) with the
// attributes `fill` adds, then SOFTWARE, MESSAGE-INTEGRITY when signed, and
// FINGERPRINT. Returns the bytes sent (empty when it failed).
template <typename Fill>
std::basic_string<uint8_t> send_answer(const stun_out& out, const turn_reply_to& r, bool error,
                                       Fill&& fill)
{
    uint8_t buf[1200];
    turn::builder b(buf, sizeof(buf),
                    turn::make_type(r.method, error ? turn::msg_class::error
                                                    : turn::msg_class::success),
                    r.txid);
    fill(b);
    b.add_string(turn::attr::software, "Isar 0.1");
    if (r.sign)
        b.add_integrity(r.key, sizeof(r.key));
    b.add_fingerprint();
    if (!b.ok() || !out.send(r.to, buf, b.size()))
        return {};
    return std::basic_string<uint8_t>(buf, b.size());
}

} // namespace isar::ctl
