// Which relayed address families an Allocate gets (RFC 8656 §7.2): the
// REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY rules, pure (the
// control plane says which families the client's interface can relay).
#pragma once

#include <cstdint>

#include "turn/stun.h"

namespace isar::turn {

struct family_choice {
    uint16_t error = 0;        // non-zero: the Allocate fails with it (400 or 440)
    uint8_t first = 4;         // family of the (first) relayed address
    uint8_t second = 0;        // dual allocation: the second family (6); 0 = none
    uint16_t second_error = 0; // dual allocation asked but family 6 cannot be had:
                               // ADDRESS-ERROR-CODE (440) in the success
};

// `have4`/`have6`: whether a relayed address of that family can be had.
//  - REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY together: 400.
//  - REQUESTED-ADDRESS-FAMILY malformed: 400; a family other than IPv4 or
//    IPv6, or one the server has no address of: 440.
//  - Neither: IPv4, or 440 without IPv4.
//  - ADDITIONAL-ADDRESS-FAMILY: malformed or not IPv6: 400; else IPv4 (440
//    without it) and IPv6, or IPv4 with second_error 440 without IPv6.
family_choice choose_families(const message& m, bool have4, bool have6) noexcept;

} // namespace isar::turn
